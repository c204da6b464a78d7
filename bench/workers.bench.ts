/**
 * End-to-end worker benchmark on the real Kafka and Redis of hack/infra.sh.
 *   npx tsx bench/workers.bench.ts [--events N] [--users U] [--runs R] [--latency-seconds S]
 *
 * 1. Throughput: N generated events are put on a 4-partition topic first; one
 *    worker process (`sluice worker`, as a pod runs it) then consumes them
 *    from a new consumer group, Kafka -> features -> ONNX -> Redis, for each
 *    job type. Events/s = N / (time from the first to the last event counted
 *    by its /metrics). Median of R runs.
 * 2. Latency: a caught-up worker while events are produced at a fixed rate of
 *    half the measured throughput; event-to-score latency (record timestamp
 *    to result written) p50/p99 from the worker's histogram, interpolated
 *    within buckets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { JobType, WorkerDocument } from '../lib/worker-config/config.js';
import { EventGenerator } from '../workers/events/generator.js';
import type { UserEvent } from '../workers/events/types.js';
import { toWire } from '../workers/events/wire.js';
import { createTopic, RecordProducer } from '../lib/kafka/client.js';
import { kafka, redis, repoRoot, uniqueName } from '../test/support/infra.js';
import { freePort } from '../test/support/ports.js';
import { jobTypes } from '../workers/jobs/registry.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const EVENTS = arg('--events', 200_000);
const RUNS = arg('--runs', 3);
const LATENCY_SECONDS = arg('--latency-seconds', 10);
const USERS = arg('--users', 10_000);
const PARTITIONS = 4;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}


function events(n: number, seed: number): UserEvent[] {
  const out: UserEvent[] = [];
  for (const e of new EventGenerator({ seed, users: USERS, days: 30 })) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

async function produce(topic: string, list: UserEvent[]): Promise<void> {
  const producer = await RecordProducer.connect({ brokers: kafka().brokers });
  for (let i = 0; i < list.length; i += 5_000) {
    await producer.send(topic, list.slice(i, i + 5_000).map((e) => ({ key: e.userId, value: toWire(e) })));
  }
  await producer.disconnect();
}

interface Worker {
  child: ChildProcess;
  port: number;
}

async function startWorker(type: JobType, topic: string, dir: string): Promise<Worker> {
  const port = await freePort();
  const name = uniqueName(`bench-${type}`);
  const config: WorkerDocument = {
    job: { name, type },
    kafka: { bootstrapServers: kafka().brokers, topic, consumerGroup: name, startFrom: 'earliest', deadLetterTopic: `${topic}.dlq` },
    redis: { host: redis().host, port: redis().port, keyPrefix: `${name}:`, ttlSeconds: 600 },
    model: {},
    checkpoint: { dir, intervalSeconds: 5 },
    metrics: { port },
  };
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'workers', 'bin.ts'), 'worker', '--config', file, '--metrics-host', '127.0.0.1'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env },
  });
  return { child, port };
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.child.exitCode !== null) return;
  const done = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  await done;
}

async function scrape(port: number): Promise<string | undefined> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return undefined;
  }
}

function counter(metrics: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

function histogram(metrics: string, name: string): Array<[number, number]> {
  const rows: Array<[number, number]> = [];
  const re = new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm');
  for (let m = re.exec(metrics); m; m = re.exec(metrics)) rows.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  return rows.sort((a, b) => a[0] - b[0]);
}

/** Quantile of the observations between two cumulative-bucket snapshots, linear within a bucket. */
function quantile(before: Array<[number, number]>, after: Array<[number, number]>, q: number): number {
  const counts = after.map(([le, c], i) => [le, c - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = counts.at(-1)?.[1] ?? 0;
  const rank = q * total;
  let lower = 0;
  let prevCount = 0;
  for (const [le, c] of counts) {
    if (c >= rank) {
      if (le === Infinity) return lower;
      return lower + ((le - lower) * (rank - prevCount)) / Math.max(1, c - prevCount);
    }
    lower = le;
    prevCount = c;
  }
  return lower;
}

interface RunStats {
  rate: number;
  /** Mean ms per model call and rows per call; mean checkpoint ms and total bytes of the last checkpoints. */
  inferenceMs: number;
  rowsPerCall: number;
  checkpointMs: number;
  checkpointBytes: number;
}

function sumOf(metrics: string, name: string): number {
  let total = 0;
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm');
  for (let m = re.exec(metrics); m; m = re.exec(metrics)) total += Number(m[1]);
  return total;
}

async function throughputRun(type: JobType, topic: string, n: number, dir: string): Promise<RunStats> {
  const w = await startWorker(type, topic, dir);
  let first = 0;
  let last = 0;
  let final = '';
  const deadline = Date.now() + 600_000;
  try {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${type} worker did not consume ${n} events in 10 minutes`);
      const m = await scrape(w.port);
      const seen = m ? counter(m, 'sluice_events_in_total') : 0;
      const now = performance.now();
      if (seen > 0 && !first) first = now;
      if (seen >= n) {
        last = now;
        // One more interval, so the checkpoint figures include a checkpoint of the full state.
        await sleep(5_500);
        final = (await scrape(w.port)) ?? '';
        break;
      }
      await sleep(20);
    }
  } finally {
    await stopWorker(w);
  }
  const calls = sumOf(final, 'sluice_inference_seconds_count');
  const checkpoints = sumOf(final, 'sluice_checkpoint_seconds_count');
  return {
    rate: (n * 1000) / (last - first),
    inferenceMs: calls ? (sumOf(final, 'sluice_inference_seconds_sum') * 1000) / calls : 0,
    rowsPerCall: calls ? sumOf(final, 'sluice_inference_rows_total') / calls : 0,
    checkpointMs: checkpoints ? (sumOf(final, 'sluice_checkpoint_seconds_sum') * 1000) / checkpoints : 0,
    checkpointBytes: sumOf(final, 'sluice_checkpoint_bytes'),
  };
}

/** Sends `records` at `rate` per second (up to 4 sends in flight); returns how many were sent. */
async function producePaced(producer: RecordProducer, topic: string, records: Array<{ key: string; value: string }>, rate: number, maxMs: number): Promise<number> {
  const start = performance.now();
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  while (sent < records.length && performance.now() - start < maxMs) {
    const due = Math.min(records.length, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due && inFlight.size < 4) {
      const chunk = records.slice(sent, Math.min(due, sent + 2_000));
      sent += chunk.length;
      const p: Promise<void> = producer.send(topic, chunk).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (inFlight.size >= 4) await Promise.race(inFlight);
    else await sleep(10);
  }
  await Promise.all(inFlight);
  return sent;
}

async function latencyRun(type: JobType, rate: number, dir: string): Promise<{ p50: number; p99: number; count: number; achieved: number }> {
  const topic = uniqueName(`bench-lat-${type}`);
  await createTopic({ brokers: kafka().brokers }, topic, PARTITIONS);
  const w = await startWorker(type, topic, dir);
  const producer = await RecordProducer.connect({ brokers: kafka().brokers });
  try {
    // Ready and caught up on an empty topic before the clock starts.
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${w.port}/readyz`).catch(() => undefined);
      if (r?.status === 200) break;
      await sleep(100);
    }
    // Encoded before the clock starts, so the producer side spends its time sending.
    const total = Math.ceil(rate * LATENCY_SECONDS);
    const records: Array<{ key: string; value: string }> = [];
    for (const e of new EventGenerator({ seed: 99, users: USERS, days: 60, start: Date.now() - 60 * 86_400_000 })) {
      records.push({ key: e.userId, value: toWire(e) });
      if (records.length === total) break;
    }
    const before = histogram((await scrape(w.port)) ?? '', 'sluice_event_to_score_seconds');
    const start = performance.now();
    const sent = await producePaced(producer, topic, records, rate, LATENCY_SECONDS * 1000 * 1.5);
    const achieved = (sent * 1000) / (performance.now() - start);
    await sleep(2_000);
    const after = histogram((await scrape(w.port)) ?? '', 'sluice_event_to_score_seconds');
    const count = (after.at(-1)?.[1] ?? 0) - (before.at(-1)?.[1] ?? 0);
    return { p50: quantile(before, after, 0.5) * 1000, p99: quantile(before, after, 0.99) * 1000, count, achieved };
  } finally {
    await producer.disconnect();
    await stopWorker(w);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  try {
    await measure(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(dir: string): Promise<void> {
  const topic = uniqueName('bench-events');
  await createTopic({ brokers: kafka().brokers }, topic, PARTITIONS);
  const list = events(EVENTS, 1);
  await produce(topic, list);
  console.log(`worker benchmark: ${fmt(list.length)} events of ${fmt(USERS)} users on ${PARTITIONS} partitions, one worker process per job, ${RUNS} runs (median)`);
  for (const type of jobTypes.types()) {
    const runs: RunStats[] = [];
    for (let r = 0; r < RUNS; r++) runs.push(await throughputRun(type, topic, list.length, dir));
    const rates = runs.map((r) => r.rate);
    const rate = median(rates);
    console.log(`${type.padEnd(5)} throughput Kafka->Redis: ${fmt(rate)} events/s (runs: ${rates.map(fmt).join(', ')})`);
    console.log(
      `${type.padEnd(5)} model call ${median(runs.map((r) => r.inferenceMs)).toFixed(2)} ms for ${fmt(median(runs.map((r) => r.rowsPerCall)))} rows; ` +
        `checkpoint ${median(runs.map((r) => r.checkpointMs)).toFixed(1)} ms per partition, ${fmt(median(runs.map((r) => r.checkpointBytes)) / 1024)} KiB for all ${PARTITIONS} partitions`,
    );
    const lat = await latencyRun(type, rate / 2, dir);
    console.log(
      `${type.padEnd(5)} latency, target ${fmt(rate / 2)} events/s (produced ${fmt(lat.achieved)}/s) for ${LATENCY_SECONDS}s, ${fmt(lat.count)} events: p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms`,
    );
  }
}

await main();
