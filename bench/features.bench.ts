/**
 * Cost of the per-event work the workers do, and model throughput.
 *   npx tsx bench/features.bench.ts [--events N]
 * Prints medians of several runs: generator and parser throughput, feature
 * update cost per event (including the per-user state lookup a worker does),
 * feature extraction cost per row, and ONNX scoring rows/s for batches of
 * 1, 64 and 1024.
 */
import { EventGenerator } from '../workers/events/generator.js';
import type { UserEvent } from '../workers/events/types.js';
import { parseEvent } from '../workers/events/validate.js';
import { toWire } from '../workers/events/wire.js';
import { CART_FEATURES, cartFeatures, newCartState, updateCart, type CartState } from '../workers/jobs/cart/features.js';
import { CHURN_FEATURES, churnFeatures, newChurnState, updateChurn, type ChurnState } from '../workers/jobs/churn/features.js';
import { bundledModelPath } from '../workers/models/bundled.js';
import { Scorer } from '../workers/models/scorer.js';

const RUNS = 5;
const eventsArg = process.argv.indexOf('--events');
const target = eventsArg > 0 ? Number(process.argv[eventsArg + 1]) : 1_000_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeRuns(run: () => number): { ms: number; n: number } {
  run(); // warm-up: let the JIT settle
  const times: number[] = [];
  let n = 0;
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    n = run();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), n };
}

const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
const users = Math.max(100, Math.round(target / 350));
console.log(`sluice feature benchmark: ~${fmt(target)} events from ${fmt(users)} users, median of ${RUNS} runs, node ${process.version}`);

const gen = new EventGenerator({ seed: 1, users, days: 60 });
const g = timeRuns(() => {
  let n = 0;
  const it = gen[Symbol.iterator]();
  while (!it.next().done) n++;
  return n;
});
console.log(`generator          ${fmt((g.n / g.ms) * 1000)} events/s (${fmt(g.n)} events)`);

const events: UserEvent[] = [...gen];
const wire = events.slice(0, 300_000).map(toWire);
const p = timeRuns(() => {
  let ok = 0;
  for (const w of wire) if (parseEvent(w).ok) ok++;
  return ok;
});
console.log(`parseEvent         ${fmt((p.ms * 1e6) / p.n)} ns/event (${fmt((p.n / p.ms) * 1000)} events/s)`);

function updateCost<S>(name: string, fresh: () => S, update: (s: S, e: UserEvent) => void): Map<string, S> {
  let states = new Map<string, S>();
  const r = timeRuns(() => {
    states = new Map<string, S>();
    for (const e of events) {
      let s = states.get(e.userId);
      if (s === undefined) states.set(e.userId, (s = fresh()));
      update(s, e);
    }
    return events.length;
  });
  console.log(`${name.padEnd(18)} ${((r.ms * 1e6) / r.n).toFixed(0)} ns/event incl. state lookup (${fmt((r.n / r.ms) * 1000)} events/s)`);
  return states;
}

function extractCost<S>(name: string, states: Map<string, S>, width: number, extract: (s: S, asOf: number, out: Float32Array, o: number) => void): void {
  const list = [...states.values()];
  const out = new Float32Array(width);
  const asOf = gen.end;
  const r = timeRuns(() => {
    for (let k = 0; k < 10; k++) for (const s of list) extract(s, asOf, out, 0);
    return list.length * 10;
  });
  console.log(`${name.padEnd(18)} ${((r.ms * 1e6) / r.n).toFixed(0)} ns/row (${width} features)`);
}

const churnStates = updateCost<ChurnState>('updateChurn', newChurnState, updateChurn);
const cartStates = updateCost<CartState>('updateCart', newCartState, updateCart);
extractCost('churnFeatures', churnStates, CHURN_FEATURES.length, churnFeatures);
extractCost('cartFeatures', cartStates, CART_FEATURES.length, cartFeatures);
const avgChurn = [...churnStates.values()].slice(0, 1000).reduce((a, s) => a + JSON.stringify(s).length, 0) / Math.min(1000, churnStates.size);
const avgCart = [...cartStates.values()].slice(0, 1000).reduce((a, s) => a + JSON.stringify(s).length, 0) / Math.min(1000, cartStates.size);
console.log(`state size         churn ${fmt(avgChurn)} B/user, cart ${fmt(avgCart)} B/user (JSON, as checkpointed)`);

for (const [job, names] of [['churn', CHURN_FEATURES], ['cart', CART_FEATURES]] as const) {
  const scorer = await Scorer.load(bundledModelPath(job), names);
  const width = names.length;
  const pool = new Float32Array(1024 * width);
  for (let i = 0; i < pool.length; i++) pool[i] = (i * 7919) % 13;
  const cells: string[] = [];
  for (const batch of [1, 64, 1024]) {
    const calls = Math.max(20, Math.round(40_000 / batch));
    const x = pool.subarray(0, batch * width);
    for (let i = 0; i < 20; i++) await scorer.score(x, batch);
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await scorer.score(x, batch);
      times.push(performance.now() - t0);
    }
    const ms = median(times);
    cells.push(`batch ${String(batch).padStart(4)}: ${fmt(((calls * batch) / ms) * 1000).padStart(10)} rows/s (${((ms * 1000) / calls).toFixed(1)} us/call)`);
  }
  console.log(`score ${job.padEnd(12)} ${cells.join('   ')}`);
  await scorer.close();
}
