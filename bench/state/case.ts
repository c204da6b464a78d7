/**
 * One case of the state benchmark, in its own process (so heap figures are
 * its own): one backend, one job type, N users on P partitions of one worker.
 * Prints one JSON line with every figure. Run through bench/state.bench.ts.
 *
 *   node --expose-gc --import tsx bench/state/case.ts --backend baseline --job churn --users 1000000
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { EventType, UserEvent } from '../../workers/events/types.js';
import { Random } from '../../workers/events/random.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../workers/features/time.js';
import { bundledModelPath } from '../../workers/models/bundled.js';
import { Scorer } from '../../workers/models/scorer.js';
import { CART_FEATURES } from '../../workers/jobs/cart/features.js';
import { CHURN_FEATURES } from '../../workers/jobs/churn/features.js';
import type { BackendOptions, BackendUnderTest, BenchModel, JobKind } from './backend.js';
import { BASELINE_REV, baselineBackend, baselineTree } from './baseline.js';
import { currentBackend } from './current.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const BACKEND = arg('--backend', 'memory');
const JOB = arg('--job', 'churn') as JobKind;
const USERS = Number(arg('--users', '100000'));
const PARTITIONS = Number(arg('--partitions', '4'));
const REPEAT = Number(arg('--repeat', '3'));
const LIVE_SECONDS = Number(arg('--live-seconds', '30'));
const INTERVAL_MS = Number(arg('--interval-seconds', '10')) * 1000;
const TMP = arg('--tmp', process.env.TMPDIR ?? '/tmp');
/** Most active days of a generated user's history (1 to this many). */
const DAYS_MAX = Number(arg('--days-max', '10'));
const repoRoot = join(import.meta.dirname, '..', '..');
/** Every second, memory (the process's and, in a container, its cgroup's) on stderr, with the phase. */
const TRACE = process.argv.includes('--trace-memory');
let phase = 'start';
/**
 * Each event-loop stall over 8 ms during a checkpoint, on stderr: how long the
 * main thread ran and how long it waited for a CPU meanwhile (its schedstat),
 * and the garbage collections inside it: a stall that is mostly waiting is
 * the machine's load, not the code.
 */
const TRACE_STALLS = process.argv.includes('--trace-stalls');
/** A third live run at half load without checkpoints. */
const NO_CHECKPOINT_RUN = process.argv.includes('--no-checkpoint-run');

/** "Now" in event time: noon, so that a live run of minutes never crosses midnight (churn's rescoring of everyone). */
const T0 = Date.UTC(2026, 2, 15, 12);
const BATCH = 500;
const LATENCY_BLOCK = 1 << 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mib = (b: number): number => b / 1048576;

/** The model slot: zeros while state is generated (the model is not what is measured), the bundled ONNX model live. */
class SwitchModel implements BenchModel {
  live: BenchModel | undefined;
  get version(): string {
    return this.live?.version ?? 'bench';
  }
  score(features: Float32Array, rows: number): Promise<Float32Array> {
    return this.live ? this.live.score(features, rows) : Promise.resolve(new Float32Array(rows));
  }
}

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const s = statSync(join(dir, name), { throwIfNoEntry: false });
    if (s?.isFile()) total += s.size;
  }
  return total;
}

/** One user's history over the 28 days before T0: a session on 1-10 days, with views, carts, purchases, support. */
function history(rnd: Random, i: number, out: UserEvent[]): void {
  const userId = `u${i}`;
  const days = 1 + Math.floor(rnd.next() * DAYS_MAX);
  let carts = 0;
  let cart: string | undefined;
  for (let d = 0; d < days; d++) {
    let t = T0 - Math.floor(rnd.next() * 27 * DAY_MS) - HOUR_MS;
    const push = (eventType: EventType, extra?: Partial<UserEvent>): void => {
      out.push({ userId, eventType, eventTime: t, ...extra });
      t += 20_000 + Math.floor(rnd.next() * 60_000);
    };
    push('session_start');
    const views = 1 + Math.floor(rnd.next() * 5);
    for (let v = 0; v < views; v++) {
      const r = rnd.next();
      push(r < 0.6 ? 'product_view' : r < 0.85 ? 'page_view' : 'search');
    }
    if (rnd.chance(0.3)) {
      if (!cart || rnd.chance(0.5)) cart = `${userId}-c${carts++}`;
      push('add_to_cart', { cartId: cart, price: 5 + Math.round(rnd.next() * 9500) / 100, quantity: 1 + (rnd.chance(0.2) ? 1 : 0) });
      if (rnd.chance(0.1)) push('remove_from_cart', { cartId: cart, quantity: 1 });
      if (rnd.chance(0.3)) push('checkout_start', { cartId: cart });
      if (rnd.chance(0.35)) {
        push('purchase', { cartId: cart, price: 5 + Math.round(rnd.next() * 9500) / 100, quantity: 1 });
        cart = undefined;
      }
    }
    if (rnd.chance(0.03)) push('support_contact');
    push('session_end');
  }
}

const LIVE_TYPES: EventType[] = ['page_view', 'product_view', 'product_view', 'search', 'add_to_cart', 'session_start', 'session_end', 'checkout_start', 'purchase', 'support_contact'];

/** A live event of a random user at event time `t`. */
function liveEvent(rnd: Random, t: number): UserEvent {
  const i = Math.floor(rnd.next() * USERS);
  const userId = `u${i}`;
  const eventType = LIVE_TYPES[Math.floor(rnd.next() * LIVE_TYPES.length)];
  const cart = eventType === 'add_to_cart' || eventType === 'checkout_start' || eventType === 'purchase';
  return { userId, eventType, eventTime: t, ...(cart ? { cartId: `${userId}-live`, price: 19.99, quantity: 1 } : {}) };
}

async function build(b: BackendUnderTest, offsets: number[]): Promise<number> {
  const rnd = new Random(7);
  const pending: UserEvent[][] = Array.from({ length: PARTITIONS }, () => []);
  let events = 0;
  const flush = async (p: number): Promise<void> => {
    if (pending[p].length === 0) return;
    await b.process(p, pending[p]);
    offsets[p] += pending[p].length;
    events += pending[p].length;
    pending[p] = [];
  };
  // The partition's event time is "now" first, so history neither crosses a midnight nor leaves carts open for hours.
  for (let p = 0; p < PARTITIONS; p++) {
    pending[p].push({ userId: `u${p}`, eventType: 'page_view', eventTime: T0 });
    await flush(p);
  }
  for (let i = 0; i < USERS; i++) {
    const p = i % PARTITIONS;
    history(rnd, i, pending[p]);
    if (pending[p].length >= 20_000) await flush(p);
  }
  for (let p = 0; p < PARTITIONS; p++) await flush(p);
  return events;
}

/** [ns on CPU, ns waiting for a CPU] of the main thread. */
function schedstat(): [number, number] {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return [run, wait];
  } catch {
    return [NaN, NaN];
  }
}

/** The longest stall seen by a tracer: its length, the main thread's time on a CPU in it, and its time waiting for one. */
interface Stall {
  ms: number;
  ranMs: number;
  waitedMs: number;
}

function stallTracer(label: string): () => Stall | undefined {
  if (!TRACE_STALLS) return () => undefined;
  const gcs: Array<{ at: number; ms: number; kind: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ at: e.startTime, ms: e.duration, kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0 });
  });
  obs.observe({ entryTypes: ['gc'] });
  let last = performance.now();
  let lastSched = schedstat();
  const stalls: Array<[number, string]> = [];
  let longest: Stall = { ms: 0, ranMs: 0, waitedMs: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    const sched = schedstat();
    const gap = now - last;
    if (gap > longest.ms) longest = { ms: gap, ranMs: (sched[0] - lastSched[0]) / 1e6, waitedMs: (sched[1] - lastSched[1]) / 1e6 };
    if (gap > 8) {
      const inGap = gcs.filter((g) => g.at >= last - 1 && g.at <= now).map((g) => `gc${g.kind}:${g.ms.toFixed(1)}`);
      stalls.push([gap, `${gap.toFixed(1)}ms (ran ${((sched[0] - lastSched[0]) / 1e6).toFixed(1)}, waited for a CPU ${((sched[1] - lastSched[1]) / 1e6).toFixed(1)}${inGap.length ? `, ${inGap.join(' ')}` : ''})`]);
    }
    last = now;
    lastSched = sched;
  }, 1);
  return () => {
    clearInterval(timer);
    obs.disconnect();
    const gcMs = gcs.reduce((n, g) => n + g.ms, 0);
    const worst = stalls.sort((a, b) => b[0] - a[0]).slice(0, 12).map((x) => x[1]);
    process.stderr.write(`stalls ${label}: ${stalls.length} over 8 ms${worst.length ? `, the longest: ${worst.join('; ')}` : ''}; gc ${gcs.length} × ${gcMs.toFixed(1)} ms\n`);
    return longest;
  };
}

interface Timed {
  ms: number;
  bytes: number;
  /** Time the main thread (the event loop) spent on a CPU meanwhile, and the whole process (every thread). */
  loopCpuMs: number;
  cpuMs: number;
  longest?: Stall;
  stallMs: number;
}

/** Checkpoints every partition (in turn, as a worker's partitions do after their batches) and waits until all are durable. */
async function checkpointAll(b: BackendUnderTest, offsets: number[], full: boolean): Promise<Timed> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  // The monitor's timer must be running before the checkpoint starts, and fire once after it ends.
  await sleep(5);
  const stop = stallTracer(`${full ? 'full' : '1%'} checkpoint`);
  const start = performance.now();
  const [loop0] = schedstat();
  const cpu0 = process.cpuUsage();
  const results = [];
  for (let p = 0; p < PARTITIONS; p++) results.push(b.checkpoint(p, offsets[p], full));
  const done = await Promise.all(results);
  const ms = performance.now() - start;
  const loopCpuMs = (schedstat()[0] - loop0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  await sleep(5);
  h.disable();
  const longest = stop();
  return { ms, bytes: done.reduce((n, r) => n + r.bytes, 0), loopCpuMs, cpuMs, stallMs: h.max / 1e6, longest };
}

async function idleStall(ms: number): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await sleep(ms);
  h.disable();
  return h.max / 1e6;
}

async function touchOnePercent(b: BackendUnderTest, offsets: number[], round: number): Promise<void> {
  const pending: UserEvent[][] = Array.from({ length: PARTITIONS }, () => []);
  const step = 100;
  for (let i = (round * 37) % step; i < USERS; i += step) {
    const userId = `u${i}`;
    // Events that change the job's state: any for churn, a cart event for cart.
    const t = T0 + round * MINUTE_MS;
    const second: UserEvent = JOB === 'cart' ? { userId, eventType: 'add_to_cart', eventTime: t + 1000, cartId: `${userId}-r${round}`, price: 9.5, quantity: 1 } : { userId, eventType: 'product_view', eventTime: t + 1000 };
    pending[i % PARTITIONS].push({ userId, eventType: 'session_start', eventTime: t }, second);
  }
  for (let p = 0; p < PARTITIONS; p++) {
    for (let k = 0; k < pending[p].length; k += 5_000) await b.process(p, pending[p].slice(k, k + 5_000));
    offsets[p] += pending[p].length;
  }
}

interface LiveResult {
  events: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  checkpoints: number;
}

/**
 * A worker's loop over a live stream: events arrive at `rate` per second
 * (Infinity: as fast as the worker takes them), each poll takes what has
 * arrived (up to BATCH per partition), each partition's batch is processed and
 * scored, and a partition checkpoints after its batch once `INTERVAL_MS` has
 * passed, as the Kafka worker does. Latency: arrival to scored.
 */
async function live(b: BackendUnderTest, offsets: number[], rate: number, seconds: number, eventTime0: number, intervalMs = INTERVAL_MS): Promise<LiveResult> {
  const rnd = new Random(11);
  // In blocks of 1M, not one array sized for the highest rate: its memory would count in the worker's peak RSS.
  const blocks: Float64Array[] = [];
  let block = new Float64Array(0);
  let n = 0;
  let taken = 0;
  const lastCheckpoint = Array.from({ length: PARTITIONS }, () => performance.now());
  const inFlight = new Set<Promise<unknown>>();
  let checkpoints = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const now = performance.now();
    const arrived = Number.isFinite(rate) ? Math.floor(((now - start) / 1000) * rate) : taken + BATCH * PARTITIONS;
    const count = Math.min(arrived - taken, BATCH * PARTITIONS);
    if (count <= 0) {
      await sleep(1);
      continue;
    }
    const byPartition: UserEvent[][] = Array.from({ length: PARTITIONS }, () => []);
    const arrival: number[][] = Array.from({ length: PARTITIONS }, () => []);
    for (let k = 0; k < count; k++) {
      const at = Number.isFinite(rate) ? start + ((taken + k) * 1000) / rate : now;
      const e = liveEvent(rnd, eventTime0 + Math.floor(at - start));
      const p = Number(e.userId.slice(1)) % PARTITIONS;
      byPartition[p].push(e);
      arrival[p].push(at);
    }
    taken += count;
    for (let p = 0; p < PARTITIONS; p++) {
      if (byPartition[p].length === 0) continue;
      await b.process(p, byPartition[p]);
      offsets[p] += byPartition[p].length;
      const done = performance.now();
      for (const at of arrival[p]) {
        if (n % LATENCY_BLOCK === 0) blocks.push((block = new Float64Array(LATENCY_BLOCK)));
        block[n++ % LATENCY_BLOCK] = done - at;
      }
      if (done - lastCheckpoint[p] >= intervalMs) {
        lastCheckpoint[p] = done;
        checkpoints++;
        const c = b.checkpoint(p, offsets[p]);
        inFlight.add(c);
        void c.finally(() => inFlight.delete(c));
      }
    }
    // Let I/O callbacks (and a checkpoint's background steps) run, as between two Kafka batches.
    await yieldLoop();
  }
  const elapsed = (performance.now() - start) / 1000;
  await Promise.all(inFlight);
  const lat = new Float64Array(n);
  blocks.forEach((b, i) => lat.set(b.subarray(0, Math.min(LATENCY_BLOCK, n - i * LATENCY_BLOCK)), i * LATENCY_BLOCK));
  lat.sort();
  const q = (f: number): number => (n ? lat[Math.min(n - 1, Math.floor(f * n))] : NaN);
  return { events: taken, seconds: elapsed, rate: taken / elapsed, p50: q(0.5), p99: q(0.99), max: n ? lat[n - 1] : NaN, checkpoints };
}

/** The peak memory of the process's cgroup (a container's limit counts this, page cache included); undefined outside one. */
function cgroupPeakMiB(): number | undefined {
  // Outside a container these files are the whole machine's.
  if (!existsSync('/.dockerenv')) return undefined;
  for (const file of ['/sys/fs/cgroup/memory/memory.max_usage_in_bytes', '/sys/fs/cgroup/memory.peak']) {
    try {
      return mib(Number(readFileSync(file, 'utf8')));
    } catch {
      // Not this cgroup version.
    }
  }
  return undefined;
}

function cgroupMemory(): Record<string, number> | undefined {
  for (const [usage, stat] of [
    ['/sys/fs/cgroup/memory/memory.usage_in_bytes', '/sys/fs/cgroup/memory/memory.stat'],
    ['/sys/fs/cgroup/memory.current', '/sys/fs/cgroup/memory.stat'],
  ]) {
    try {
      const out: Record<string, number> = { usage: mib(Number(readFileSync(usage, 'utf8'))) };
      for (const line of readFileSync(stat, 'utf8').split('\n')) {
        const [k, v] = line.split(' ');
        if (['cache', 'rss', 'dirty', 'writeback', 'mapped_file', 'file', 'anon', 'file_dirty', 'file_writeback'].includes(k)) out[k] = mib(Number(v));
      }
      return out;
    } catch {
      // Not this cgroup version.
    }
  }
  return undefined;
}

function traceMemory(): void {
  if (!TRACE) return;
  const started = performance.now();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const line = { s: Math.round((performance.now() - started) / 100) / 10, phase, rss: mib(m.rss), heap: mib(m.heapUsed), arrayBuffers: mib(m.arrayBuffers), cgroup: cgroupMemory() };
    process.stderr.write(`${JSON.stringify(line, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}\n`);
  }, 1000);
  timer.unref();
}

async function main(): Promise<void> {
  traceMemory();
  const work = mkdtempSync(join(TMP, 'sluice-state-bench-'));
  const checkpointDir = join(work, 'checkpoints');
  const localDir = join(work, 'local');
  const model = new SwitchModel();
  const real = await Scorer.load(bundledModelPath(JOB), JOB === 'churn' ? CHURN_FEATURES : CART_FEATURES);
  const options: BackendOptions = { job: JOB, partitions: PARTITIONS, checkpointDir, localDir, model };
  const b = BACKEND === 'baseline' ? await baselineBackend(baselineTree(repoRoot, arg('--rev', BASELINE_REV)), options) : await currentBackend(BACKEND, options);
  const offsets = new Array<number>(PARTITIONS).fill(0);
  const out: Record<string, unknown> = { backend: b.label, job: JOB, users: USERS, partitions: PARTITIONS };
  try {
    gcNow();
    const before = process.memoryUsage();
    let t = performance.now();
    phase = 'build';
    out.buildEvents = await build(b, offsets);
    out.buildSeconds = (performance.now() - t) / 1000;
    gcNow();
    const after = process.memoryUsage();
    out.heapMiB = mib(after.heapUsed - before.heapUsed);
    out.arrayBuffersMiB = mib(after.arrayBuffers - before.arrayBuffers);
    out.rssMiB = mib(after.rss);
    out.bytesPerUser = (after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / USERS;
    out.usersHeld = b.users();

    // The noise floor: the longest event-loop delay over two seconds with nothing to do (a loaded machine delays timers too).
    out.idleStallMs = await idleStall(2_000);
    phase = 'full checkpoints';
    const full: Timed[] = [];
    for (let r = 0; r < REPEAT; r++) full.push(await checkpointAll(b, offsets, true));
    gcNow();
    const steady = process.memoryUsage();
    // After a checkpoint: what a running worker holds (the list of users changed since the last one is short again).
    out.steadyBytesPerUser = (steady.heapUsed - before.heapUsed + steady.arrayBuffers - before.arrayBuffers) / USERS;
    out.localDiskBytesPerUser = b.localDiskBytes() / USERS;
    out.steadyHeapMiB = mib(steady.heapUsed - before.heapUsed + steady.arrayBuffers - before.arrayBuffers);
    out.fullCheckpoint = { ms: median(full.map((x) => x.ms)), loopCpuMs: median(full.map((x) => x.loopCpuMs)), cpuMs: median(full.map((x) => x.cpuMs)), MiB: mib(median(full.map((x) => x.bytes))), stallMs: median(full.map((x) => x.stallMs)), maxStallMs: Math.max(...full.map((x) => x.stallMs)), longest: full.map((x) => x.longest) };
    phase = 'incremental checkpoints';
    const incremental: Timed[] = [];
    for (let r = 0; r < REPEAT; r++) {
      await touchOnePercent(b, offsets, r + 1);
      incremental.push(await checkpointAll(b, offsets, false));
    }
    out.incrementalCheckpoint = { ms: median(incremental.map((x) => x.ms)), loopCpuMs: median(incremental.map((x) => x.loopCpuMs)), cpuMs: median(incremental.map((x) => x.cpuMs)), MiB: mib(median(incremental.map((x) => x.bytes))), stallMs: median(incremental.map((x) => x.stallMs)), maxStallMs: Math.max(...incremental.map((x) => x.stallMs)), longest: incremental.map((x) => x.longest) };
    out.checkpointDirMiB = mib(dirBytes(checkpointDir));

    phase = 'restore';
    const restores: number[] = [];
    for (let r = 0; r < REPEAT; r++) {
      gcNow();
      t = performance.now();
      await b.restore();
      restores.push(performance.now() - t);
    }
    out.restoreMs = median(restores);
    out.restoredUsers = b.users();
    if (b.users() !== out.usersHeld) throw new Error(`restored ${b.users()} users, held ${String(out.usersHeld)}`);

    model.live = real;
    phase = 'live, max rate';
    const max = await live(b, offsets, Infinity, LIVE_SECONDS, T0 + HOUR_MS);
    out.maxRate = { eventsPerSecond: max.rate, checkpoints: max.checkpoints };
    phase = 'live, half load';
    const stopTrace = stallTracer('at half load');
    const half = await live(b, offsets, max.rate / 2, LIVE_SECONDS, T0 + 2 * HOUR_MS);
    out.halfLoad = { target: max.rate / 2, achieved: half.rate, p50Ms: half.p50, p99Ms: half.p99, maxMs: half.max, checkpoints: half.checkpoints, longest: stopTrace() };
    if (NO_CHECKPOINT_RUN) {
      // The same load without checkpoints: what of the latency is theirs, what the machine's.
      phase = 'live, half load, no checkpoints';
      const quiet = await live(b, offsets, max.rate / 2, LIVE_SECONDS, T0 + 3 * HOUR_MS, Infinity);
      out.halfLoadNoCheckpoints = { achieved: quiet.rate, p50Ms: quiet.p50, p99Ms: quiet.p99, maxMs: quiet.max };
    }
    gcNow();
    out.rssEndMiB = mib(process.memoryUsage().rss);
    out.peakRssMiB = mib(process.resourceUsage().maxRSS * 1024);
    out.cgroupPeakMiB = cgroupPeakMiB();
  } finally {
    await b.close();
    await real.close();
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
