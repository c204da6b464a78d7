/**
 * Shared by the worker integration tests (test/integration/worker-*.test.ts):
 * producing generated events, building a worker config, waiting for a worker
 * to consume everything, and reading what landed in Redis and the mailbox.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import type { RunningWorker } from '../../workers/main.js';
import type { JobType, WorkerConfig } from '../../lib/worker-config/config.js';
import { EventGenerator, type GeneratorOptions } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { toWire } from '../../workers/events/wire.js';
import { createTopic, RecordProducer, topicEndOffsets, type KafkaConnectionOptions } from '../../lib/kafka/client.js';
import { checkpointPartitionDirOf } from '../../lib/worker-config/names.js';
import { latestManifest } from '../../workers/state/checkpoints.js';
import { resolveWorkerConfig } from '../../workers/config.js';
import { jobTypes } from '../../workers/jobs/registry.js';
import type { CartSettings } from '../../workers/jobs/cart/config.js';
import { stringify as stringifyYaml } from 'yaml';
import { kafka, receivedMails, redis, repoRoot, smtp, uniqueName } from './infra.js';
import { waitFor } from './wait.js';

const tempDirs: string[] = [];

/** A temporary directory removed after the file's tests, unless one failed (its worker logs are kept). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Call once at the top of a test file: removes its temporary directories when all its tests passed. */
export function removeTempDirsAfterAll(): void {
  let failed = false;
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });
  afterAll(() => {
    if (failed) {
      console.log(`kept for inspection: ${tempDirs.join(' ')}`);
      return;
    }
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

export interface WorkerTestFile {
  /** Silent unless SLUICE_TEST_LOG names a level. */
  quiet: Logger;
  /** A client of the shared Redis. */
  redis: Redis;
  /** In-process workers, stopped after the file. */
  running: RunningWorker[];
  /** Worker processes, killed (SIGKILL) after the file. */
  children: ChildProcess[];
}

/**
 * The preamble of a worker test file: temporary directories removed when all
 * its tests passed; after the file, worker processes killed, in-process
 * workers stopped, `cleanup` run, Redis disconnected.
 */
export function workerTestFile(cleanup?: () => Promise<void>): WorkerTestFile {
  removeTempDirsAfterAll();
  const file: WorkerTestFile = { quiet: pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' }), redis: redisClient(), running: [], children: [] };
  afterAll(async () => {
    for (const c of file.children) await killHard(c);
    for (const w of file.running) await w.stop();
    await cleanup?.();
    file.redis.disconnect();
  });
  return file;
}

export function connection(): KafkaConnectionOptions {
  return { brokers: kafka().brokers };
}

export interface TestJob {
  name: string;
  topic: string;
  group: string;
  prefix: string;
  checkpointDir: string;
}

export async function newTestJob(base: string, partitions: number): Promise<TestJob> {
  const name = uniqueName(base);
  const job = { name, topic: `${name}.events`, group: `${name}-group`, prefix: `${name}:`, checkpointDir: tempDir(`${name}-cp-`) };
  await createTopic(connection(), job.topic, partitions);
  await createTopic(connection(), `${job.topic}.dlq`, 1);
  return job;
}

export function workerConfigFor(
  job: TestJob,
  type: JobType,
  extra: { cart?: Partial<CartSettings>; alerts?: boolean; redisPort?: number; intervalSeconds?: number; prefix?: string; group?: string } = {},
): WorkerConfig {
  const r = redis();
  const s = smtp();
  return resolveWorkerConfig(
    {
      job: { name: job.name, type },
      kafka: { bootstrapServers: kafka().brokers, topic: job.topic, consumerGroup: extra.group ?? job.group, startFrom: 'earliest', sessionTimeoutSeconds: 6 },
      redis: { host: r.host, port: extra.redisPort ?? r.port, keyPrefix: extra.prefix ?? job.prefix },
      checkpoint: { dir: job.checkpointDir, intervalSeconds: extra.intervalSeconds ?? 0.2 },
      metrics: { port: 0 },
      // Only a type that has a cart section takes one (a test may run the same settings for every type).
      ...(extra.cart && jobTypes.get(type).config.sections?.cart ? { cart: extra.cart } : {}),
      ...(extra.alerts ? { alerts: { smtp: { host: s.host, port: s.port, secure: false }, from: 'sluice@test.local', to: ['ops@test.local'] } } : {}),
    },
    {},
    { source: `test config of ${job.name}` },
  );
}

/** Events with user and cart ids unique to a test (`tag`), so the shared Redis and mailbox hold nothing else like them. */
export function taggedEvents(tag: string, events: Iterable<UserEvent>): UserEvent[] {
  return [...events].map((e) => ({ ...e, userId: `${tag}-${e.userId}`, ...(e.cartId ? { cartId: `${tag}-${e.cartId}` } : {}) }));
}

/** The first `count` events of the generator: what `sluice produce --count --users --seed` writes. */
export function firstEvents(count: number, options: GeneratorOptions): UserEvent[] {
  const events: UserEvent[] = [];
  for (const e of new EventGenerator(options)) {
    events.push(e);
    if (events.length === count) break;
  }
  return events;
}

/** Produces events keyed by user (so one user's events stay in order on one partition). */
export async function produceEvents(topic: string, events: Iterable<UserEvent>, extra: Array<{ partition: number; value: string; key?: string }> = []): Promise<number> {
  const producer = await RecordProducer.connect(connection());
  let n = 0;
  try {
    let chunk: Array<{ key: string; value: string }> = [];
    for (const e of events) {
      chunk.push({ key: e.userId, value: toWire(e) });
      if (chunk.length === 5_000) {
        await producer.send(topic, chunk);
        n += chunk.length;
        chunk = [];
      }
    }
    await producer.send(topic, chunk);
    n += chunk.length;
    if (extra.length) await producer.send(topic, extra);
    return n + extra.length;
  } finally {
    await producer.disconnect();
  }
}

/** Sends one record to every partition (for events that must reach each partition's clock). */
export async function producePerPartition(topic: string, partitions: number, value: (p: number) => string): Promise<void> {
  const producer = await RecordProducer.connect(connection());
  try {
    await producer.send(topic, Array.from({ length: partitions }, (_, p) => ({ partition: p, key: `clock-${p}`, value: value(p) })));
  } finally {
    await producer.disconnect();
  }
}

export { waitFor } from './wait.js';

/** The next offset each partition's checkpoint resumes from (-1 without a checkpoint). */
export function checkpointOffsets(job: TestJob, partitions: number, group = job.group): number[] {
  return Array.from({ length: partitions }, (_, p) => latestManifest(checkpointPartitionDirOf(job.checkpointDir, group, job.topic, p))?.nextOffset ?? -1);
}

/** Waits until every partition's checkpoint has reached the end of the topic. */
export async function waitCheckpointedToEnd(job: TestJob, partitions: number, timeoutMs: number, group = job.group): Promise<void> {
  const ends = await topicEndOffsets(connection(), job.topic);
  await waitFor(`checkpoints of ${group} on ${job.topic} at the end offsets ${JSON.stringify([...ends])}`, timeoutMs, () => {
    const offsets = checkpointOffsets(job, partitions, group);
    return offsets.every((o, p) => o >= (ends.get(p) ?? 0)) ? true : undefined;
  }, 250);
}

export function redisClient(port?: number): Redis {
  const r = redis();
  const client = new Redis({ host: r.host, port: port ?? r.port, lazyConnect: false, maxRetriesPerRequest: 2 });
  client.on('error', () => undefined); // reconnects by itself; a command that fails still throws
  return client;
}

/** Every hash under `<prefix><pattern>`, by the rest of the key. */
export async function readHashes(client: Redis, prefix: string, pattern: string): Promise<Map<string, Record<string, string>>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}${pattern}`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out = new Map<string, Record<string, string>>();
  // Pipelines of at most 2000 keys: a run of many users does not build one huge reply.
  for (let i = 0; i < keys.length; i += 2000) {
    const slice = keys.slice(i, i + 2000);
    const p = client.pipeline();
    for (const k of slice) p.hgetall(k);
    const results = (await p.exec()) ?? [];
    slice.forEach((k, j) => out.set(k.slice(prefix.length), results[j][1] as Record<string, string>));
  }
  return out;
}

/** Mails of this test: the cart ids they alert about, one entry per mail received. */
export function alertMailCartIds(prefixOfCartIds: (cartId: string) => boolean): string[] {
  const ids: string[] = [];
  for (const mail of receivedMails()) {
    // The body is quoted-printable: a long line is broken with a soft break ("=" at its end).
    const m = /^cart_id: (.+)$/m.exec(mail.replace(/\r\n/g, '\n').replace(/=\n/g, ''));
    if (m && prefixOfCartIds(m[1].trim())) ids.push(m[1].trim());
  }
  return ids;
}

/** Writes the config as the YAML document a worker reads with --config. */
export function writeWorkerConfig(config: WorkerConfig, dir: string, name: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringifyYaml(config));
  return file;
}

/**
 * Starts `sluice worker` as a separate process (through tsx, so no build is
 * needed), its JSON log appended to `logFile`. The caller stops it by pid.
 */
export function spawnWorker(configFile: string, logFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'workers', 'bin.ts'), 'worker', '--config', configFile, '--metrics-host', '127.0.0.1'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  return child;
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  await exited(child);
}

/** Waits for the "worker started" line of that process in its log (signal handlers are in place from then on). */
export async function waitStarted(logFile: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  await waitFor(`worker pid ${child.pid} started (log: ${logFile})`, timeoutMs, () => {
    if (child.exitCode !== null) throw new Error(`worker pid ${child.pid} exited with ${child.exitCode} (log: ${logFile})`);
    const text = readFileSync(logFile, 'utf8');
    return text.split('\n').some((l) => l.includes(`"pid":${child.pid},`) && l.includes('"msg":"worker started"')) ? true : undefined;
  });
}
