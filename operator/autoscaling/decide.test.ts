import { describe, expect, it } from 'vitest';
import { decide, nextHistory, type DecisionInput, type Observation, type Policy } from './decide.js';
import { amount, rounded } from './format.js';
import { defaultPolicy } from './simulate.js';

const policy: Policy = defaultPolicy;

interface Load {
  /** Events/s into the topic. */
  input: number;
  /** Events/s each worker processes, and the share of each second it is busy doing it. */
  processed: number;
  busy: number;
  lag?: number;
}

/** Observations every 5 s for `seconds`, of `n` workers under a constant load. */
function window(n: number, seconds: number, load: Load, at0 = 0): Observation[] {
  const out: Observation[] = [];
  for (let t = 0; t <= seconds; t += 5) {
    out.push({
      at: (at0 + t) * 1000,
      endOffsets: 1_000_000 + load.input * (at0 + t),
      lag: load.lag ?? 0,
      replicas: n,
      rollingOut: false,
      workers: Array.from({ length: n }, (_, i) => ({ pod: `churn-worker-${i}`, ready: true, processed: load.processed * (at0 + t), busySeconds: load.busy * (at0 + t) })),
    });
  }
  return out;
}

const input = (observations: Observation[], extra: Partial<DecisionInput> = {}): DecisionInput => ({
  policy,
  partitions: 8,
  current: observations.at(-1)?.replicas ?? 2,
  observations,
  history: {},
  now: observations.at(-1)?.at ?? 0,
  ...extra,
});

describe('decide: sizing', () => {
  it("measures a worker's true rate per second of busy time, not what it happens to process", () => {
    // Each worker processes 250 events/s and is busy a quarter of the time: it could do 1000/s.
    const d = decide(input(window(2, 60, { input: 500, processed: 250, busy: 0.25 })));
    expect(d.signals!.ratePerWorker).toBeCloseTo(1000);
    expect(d.signals!.inputRate).toBeCloseTo(500);
    expect(d.signals!.needed).toBeCloseTo(500 / 800);
    expect(d.recommended).toBe(1);
  });

  it('plans for the input plus the lag worked off within the catch-up target, at the target utilisation', () => {
    // 3000/s in + 300k behind / 300 s = 4000/s; one worker does 1000/s; at 80% that is 5 workers.
    const d = decide(input(window(5, 60, { input: 3000, processed: 800, busy: 0.8, lag: 300_000 })));
    expect(d.signals!.demand).toBeCloseTo(4000);
    expect(d.signals!.needed).toBeCloseTo(5);
    expect(d.recommended).toBe(5);
    expect(d.signals!.lagSeconds).toBeCloseTo(100);
    expect(d.action).toBe('Steady');
    expect(d.reason).toBe(
      '5 workers fit the load: input 3k/s + lag 300k / 300 s catch-up = 4k/s to handle; one worker does 1k/s of busy time; at 80% that is 5.00 workers (load 80% of the 5 workers)',
    );
  });

  it('scales up at once to the whole need once the scale-up window agrees, and says so for an Event', () => {
    const d = decide(input(window(2, 60, { input: 38_000, processed: 11_000, busy: 1, lag: 3_420_000 })));
    expect(d.action).toBe('ScaleUp');
    expect(d.desired).toBe(6);
    expect(d.summary).toBe('input 38k/s, one worker does 11k/s, lag 90 s');
    expect(d.reason).toMatch(/^scaling up from 2 to 6: input 38k\/s \+ lag 3\.4M \/ 300 s catch-up = 49k\/s to handle; one worker does 11k\/s of busy time; at 80% that is 5\.61 workers$/);
  });

  it('waits for the scale-up window before adding workers', () => {
    const d = decide(input(window(2, 35, { input: 2500, processed: 1000, busy: 1, lag: 10_000 })));
    expect(d.action).toBe('Steady');
    expect(d.desired).toBe(2);
    expect(d.recommended).toBe(4);
    expect(d.reason).toMatch(/scaling up once the whole 30 s scale-up window agrees \(20 s so far\)$/);
  });

  it('does not scale up under the threshold halfway between the target utilisation and saturation', () => {
    // Load 85%: more than the 80% target, less than the 90% threshold.
    const d = decide(input(window(4, 120, { input: 3400, processed: 850, busy: 0.85 })));
    expect(d.recommended).toBe(5);
    expect(d.action).toBe('Steady');
    expect(d.desired).toBe(4);
  });

  it('scales down only after a whole window without a scale, to the most the window asked for', () => {
    const quiet = window(4, 400, { input: 1200, processed: 300, busy: 0.3 });
    expect(decide(input(quiet.slice(0, 40))).action).toBe('Steady');
    const d = decide(input(quiet));
    expect(d.action).toBe('ScaleDown');
    expect(d.desired).toBe(2);
    expect(d.reason).toMatch(/the most any recommendation of the last 300 s asked for is 2$/);
    const justScaled = decide(input(quiet, { history: { lastScaleAt: 200_000, lastDirection: 'Up' } }));
    expect(justScaled.action).toBe('Steady');
    expect(justScaled.reason).toContain('scaling down only after a 300 s scale-down window that agrees');
  });

  it('runs the minimum for a job with no input and no lag, idle workers and all', () => {
    const d = decide(input(window(3, 400, { input: 0, processed: 0, busy: 0 }), { policy: { ...policy, minParallelism: 1 } }));
    expect(d.action).toBe('ScaleDown');
    expect(d.desired).toBe(1);
  });

  it('never recommends more than the partitions, or than maxParallelism', () => {
    const heavy = window(2, 60, { input: 20_000, processed: 1000, busy: 1, lag: 1e6 });
    expect(decide(input(heavy, { partitions: 6 })).desired).toBe(6);
    expect(decide(input(heavy, { partitions: 6, policy: { ...policy, maxParallelism: 4 } })).desired).toBe(4);
    expect(decide(input(heavy, { partitions: 6, policy: { ...policy, maxParallelism: 12 } })).desired).toBe(6);
  });

  it('moves a job outside its bounds back inside at once, naming the bound', () => {
    const w = window(8, 60, { input: 100, processed: 100, busy: 0.1 });
    expect(decide(input(w, { partitions: 6 }))).toMatchObject({ action: 'ScaleDown', desired: 6, reason: "scaling down from 8 to 6: never more workers than the topic's 6 partitions" });
    expect(decide(input(w, { policy: { ...policy, maxParallelism: 3 } }))).toMatchObject({ desired: 3, reason: 'scaling down from 8 to 3: never more workers than spec.autoscaling.maxParallelism (3)' });
    expect(decide(input(window(1, 60, { input: 100, processed: 100, busy: 0.1 }), { policy: { ...policy, minParallelism: 2 } }))).toMatchObject({ action: 'ScaleUp', desired: 2 });
  });

  it('keeps out of the rates a worker whose counters went back to zero (it restarted)', () => {
    const w = window(2, 60, { input: 1000, processed: 500, busy: 0.5 });
    w[8].workers[1].processed = 10;
    w[8].workers[1].busySeconds = 0.01;
    const d = decide(input(w));
    expect(d.signals!.ratePerWorker).toBeCloseTo(1000);
  });
});

describe('decide: holds instead of guessing', () => {
  const steady = () => window(3, 60, { input: 2000, processed: 700, busy: 0.7 });
  const holdReason = (w: Observation[], extra: Partial<DecisionInput> = {}) => {
    const d = decide(input(w, extra));
    expect(d.action).toBe('Hold');
    expect(d.desired).toBe(extra.current ?? 3);
    return d.reason;
  };

  it('while the partition count is unknown', () => {
    expect(holdReason(steady(), { partitions: undefined })).toBe("the topic's partition count is not known yet");
  });

  it('during a rollout', () => {
    const w = steady();
    w[w.length - 1] = { ...w[w.length - 1], rollingOut: true };
    expect(holdReason(w)).toBe('holding at 3 workers: a rollout of the workers is in progress');
  });

  it('while a worker is not ready', () => {
    const w = steady();
    w[w.length - 1].workers[2].ready = false;
    expect(holdReason(w)).toBe('holding at 3 workers: worker churn-worker-2 is not ready');
  });

  it('while a worker serves no metrics', () => {
    const w = steady();
    w[w.length - 1].workers[0].processed = undefined;
    expect(holdReason(w)).toBe('holding at 3 workers: no metrics from worker churn-worker-0');
  });

  it('while Kafka does not answer, or a partition has no position (a rebalance)', () => {
    const a = steady();
    a[a.length - 1].endOffsets = undefined;
    expect(holdReason(a)).toBe("holding at 3 workers: the topic's end offsets could not be read from Kafka");
    const b = steady();
    b[b.length - 1].lag = undefined;
    expect(holdReason(b)).toMatch(/do not report a position for every partition/);
  });

  it('while the Deployment has not reached the new size, and until a rate can be measured after it', () => {
    expect(holdReason(steady(), { current: 4 })).toBe('holding at 4 workers: the Deployment is moving from 3 to 4 workers');
    const after = [...steady(), ...window(4, 10, { input: 2000, processed: 500, busy: 0.5 }, 65)];
    expect(holdReason(after, { current: 4, history: { lastScaleAt: 61_000, lastDirection: 'Up' } })).toBe('holding at 4 workers: collecting observations (10 s of the 15 s a rate needs)');
  });

  it('when events arrive but no worker reports busy time', () => {
    expect(holdReason(window(3, 60, { input: 2000, processed: 0, busy: 0 }))).toBe('holding at 3 workers: events arrive but the workers report no busy time (are they consuming?)');
  });
});

describe('decide: at most one change of direction per scale-down window', () => {
  const quiet = window(4, 400, { input: 1200, processed: 300, busy: 0.3 });

  it('blocks a scale-down that would be the second change of direction within the window', () => {
    const history = { lastScaleAt: 0, lastDirection: 'Up' as const, lastReversalAt: 200_000 };
    const d = decide(input(quiet, { history }));
    expect(d.action).toBe('Hold');
    expect(d.recommended).toBe(2);
    expect(d.reason).toMatch(/^would scale down from 4 to 2, but the last change of direction was 200 s ago/);
    expect(decide(input(quiet, { history: { ...history, lastReversalAt: 90_000 } })).action).toBe('ScaleDown');
  });

  it('records a change of direction in the history', () => {
    const up = { action: 'ScaleUp', desired: 4, recommended: 4, reason: '' } as const;
    const down = { ...up, action: 'ScaleDown', desired: 2 } as const;
    const h1 = nextHistory({}, up, 1000);
    expect(h1).toEqual({ lastScaleAt: 1000, lastDirection: 'Up', lastReversalAt: undefined });
    const h2 = nextHistory(nextHistory(h1, up, 2000), down, 9000);
    expect(h2).toEqual({ lastScaleAt: 9000, lastDirection: 'Down', lastReversalAt: 9000 });
    expect(nextHistory(h2, { ...up, action: 'Steady' }, 10_000)).toBe(h2);
  });
});

describe('figures for people', () => {
  it('reads like 950, 3.8k, 38k, 1.2M', () => {
    expect([950, 999.6, 3800, 38_000, 1_234_567, 12_000_000].map(amount)).toEqual(['950', '1k', '3.8k', '38k', '1.2M', '12M']);
  });

  it('rounds status figures to two significant digits, so they do not change on every look', () => {
    expect([0, 7, 38_123, 11_490, 0.5].map(rounded)).toEqual([0, 7, 38_000, 11_000, 1]);
  });
});
