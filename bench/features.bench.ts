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
import { CART_FEATURES, cartFeatures, CartTable, updateCart } from '../workers/jobs/cart/features.js';
import { CHURN_FEATURES, churnFeatures, ChurnTable, updateChurn } from '../workers/jobs/churn/features.js';
import type { UserTable } from '../workers/state/table.js';
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

function updateCost<T extends UserTable>(name: string, fresh: () => T, update: (t: T, slot: number, e: UserEvent) => void): T {
  let table = fresh();
  const r = timeRuns(() => {
    table = fresh();
    for (const e of events) update(table, table.slot(e.userId), e);
    return events.length;
  });
  console.log(`${name.padEnd(18)} ${((r.ms * 1e6) / r.n).toFixed(0)} ns/event incl. state lookup (${fmt((r.n / r.ms) * 1000)} events/s)`);
  return table;
}

function extractCost<T extends UserTable>(name: string, table: T, width: number, extract: (t: T, slot: number, asOf: number, out: Float32Array, o: number) => void): void {
  const out = new Float32Array(width);
  const asOf = gen.end;
  const r = timeRuns(() => {
    for (let k = 0; k < 10; k++) for (let slot = 0; slot < table.size; slot++) extract(table, slot, asOf, out, 0);
    return table.size * 10;
  });
  console.log(`${name.padEnd(18)} ${((r.ms * 1e6) / r.n).toFixed(0)} ns/row (${width} features)`);
}

const churnStates = updateCost('updateChurn', () => new ChurnTable(), updateChurn);
const cartStates = updateCost('updateCart', () => new CartTable(), updateCart);
extractCost('churnFeatures', churnStates, CHURN_FEATURES.length, churnFeatures);
extractCost('cartFeatures', cartStates, CART_FEATURES.length, cartFeatures);
const perUser = (t: UserTable): number => {
  let bytes = 0;
  for (let s = 0; s < t.size; s++) bytes += t.valueBytes(s) + t.index.idBytes(s).length + 4;
  return bytes / t.size;
};
console.log(`state size         churn ${fmt(churnStates.bytes / churnStates.size)} B/user in memory, ${fmt(perUser(churnStates))} B/user encoded; cart ${fmt(cartStates.bytes / cartStates.size)} B/user in memory, ${fmt(perUser(cartStates))} B/user encoded`);

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
