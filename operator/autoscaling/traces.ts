/**
 * The synthetic traces the decision function is tested on (traces.test.ts).
 * `npx tsx operator/autoscaling/traces.ts` prints each one's scales.
 * One worker does 1000 events/s of busy time unless a trace says otherwise.
 */
import { pathToFileURL } from 'node:url';
import { seeded, simulate, type Trace } from './simulate.js';

const C = 1000;
/** Input that keeps n workers at the default target utilisation (80%). */
const fits = (n: number): number => n * C * 0.8;

export const traces: Record<string, Trace> = {
  steady: { name: 'steady load', seconds: 1200, partitions: 8, initialWorkers: 3, capacity: () => C, input: () => fits(2.6) },
  rampUp: {
    name: 'ramp up',
    seconds: 1500,
    partitions: 8,
    initialWorkers: 1,
    capacity: () => C,
    // From what one worker handles to what needs four, over ten minutes, then flat.
    input: (t) => fits(0.8) + (fits(4) - fits(0.8)) * Math.min(1, Math.max(0, (t - 60) / 600)),
  },
  spike: {
    name: 'sudden spike',
    seconds: 1800,
    partitions: 8,
    initialWorkers: 2,
    capacity: () => C,
    input: (t) => (t >= 122 && t < 722 ? fits(4.5) : fits(1.5)),
  },
  burst: { name: 'short burst', seconds: 900, partitions: 8, initialWorkers: 3, capacity: () => C, input: (t) => (t >= 300 && t < 320 ? fits(6) : fits(2.5)) },
  drain: { name: 'drain a backlog', seconds: 1800, partitions: 8, initialWorkers: 1, initialLag: 600_000, capacity: () => C, input: () => 500 },
  noisy: (() => {
    const r1 = seeded(7);
    const r2 = seeded(11);
    return {
      name: 'noisy rates',
      seconds: 1800,
      partitions: 8,
      initialWorkers: 3,
      // Input ±40% and the workers' rate ±15% around their means, every step.
      input: () => fits(2.4) * (0.6 + 0.8 * r1()),
      capacity: () => C * (0.85 + 0.3 * r2()),
    };
  })(),
  notReady: {
    name: 'a worker not ready',
    seconds: 900,
    partitions: 8,
    initialWorkers: 3,
    capacity: () => C,
    input: () => fits(2.5),
    outage: { pod: 1, from: 300, to: 360 },
  },
  partitionCap: { name: 'the partition cap', seconds: 600, partitions: 6, initialWorkers: 2, capacity: () => C, input: () => fits(10) },
  oscillating: {
    name: 'load that swings faster than the scale-down window',
    seconds: 1800,
    partitions: 8,
    initialWorkers: 2,
    capacity: () => C,
    // Busy and quiet in turns of 200 s: one scale-up, then no scale-down can ever gather a quiet 300 s window.
    input: (t) => (Math.floor(t / 200) % 2 === 0 ? fits(1.5) : fits(3.6)),
  },
  reversal: {
    name: 'busy again right after a scale-down',
    seconds: 1800,
    partitions: 8,
    initialWorkers: 2,
    capacity: () => C,
    // Busy (a scale-up), quiet for 7 minutes (a scale-down: the first change of direction), busy again soon
    // after: scaling up now would be a second change of direction within 300 s, so it waits.
    input: (t) => (t < 400 ? fits(3.6) : t < 820 ? fits(1.5) : fits(3.6)),
  },
  comeback: {
    name: 'load back soon after a scale-down',
    seconds: 2100,
    partitions: 8,
    initialWorkers: 4,
    capacity: () => C,
    // Quiet for 6 minutes (a scale-down), then busy again 100 s after it, then quiet.
    input: (t) => (t < 360 ? fits(1.5) : t < 900 ? fits(3.6) : fits(1.5)),
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const trace of Object.values(traces)) {
    const r = simulate(trace);
    console.log(`${trace.name}: parallelism ${r.sequence.join(' -> ')}; max lag ${r.maxLag}, final lag ${r.finalLag}`);
    for (const s of r.scales) console.log(`  t=${s.t}s ${s.from} -> ${s.to}: ${s.reason}`);
  }
}
