/**
 * Snapshots, restores and offset resets on real Kafka and Redis, with real
 * workers: the tasks the operator runs as pods (and `sluice snapshot` /
 * `sluice restore` locally) against running and stopped jobs.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { stringify } from 'yaml';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { runWorker, type RunningWorker } from '../../workers/main.js';
import { topicEndOffsets } from '../../lib/kafka/client.js';
import { CheckpointStore } from '../../workers/runtime/checkpoint.js';
import { writeBase } from '../../workers/state/checkpoints.js';
import { taskJob } from '../../workers/stateops/job-state.js';
import { snapshotDir } from '../../workers/runtime/control.js';
import { deleteSnapshot, listSnapshots, takeSnapshot } from '../../workers/stateops/snapshot.js';
import { restoreState } from '../../workers/stateops/restore.js';
import { repoRoot, uniqueName } from '../support/infra.js';
import {
  connection,
  exited,
  killHard,
  newTestJob,
  produceEvents,
  readHashes,
  redisClient,
  removeTempDirsAfterAll,
  spawnWorker,
  taggedEvents,
  tempDir,
  waitCheckpointedToEnd,
  waitFor,
  workerConfigFor,
  writeWorkerConfig,
  type TestJob,
} from '../support/workers.js';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { createTopic } from '../../lib/kafka/client.js';

removeTempDirsAfterAll();
const run = promisify(execFile);
const quiet = pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const redis = redisClient();
const running: RunningWorker[] = [];
const PARTITIONS = 4;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  for (const w of running.splice(0)) await w.stop();
  redis.disconnect();
});

function events(tag: string, seed: number, users: number, days: number): UserEvent[] {
  return taggedEvents(tag, new EventGenerator({ seed, users, days }));
}

/** A job of its own: consumer group, key prefix and checkpoint directory, on `job`'s topic unless told. */
function variant(job: TestJob, name: string, topic = job.topic): { config: WorkerConfig; view: TestJob } {
  const view: TestJob = { ...job, topic, group: `${job.group}-${name}`, prefix: `${job.prefix}${name}:`, checkpointDir: tempDir(`${job.name}-${name}-cp-`) };
  const config = workerConfigFor(view, 'churn', { intervalSeconds: 0.3 });
  config.job.name = `${job.name}-${name}`;
  return { config, view };
}

async function start(config: WorkerConfig): Promise<RunningWorker> {
  const w = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(w);
  await waitFor('worker ready', 60_000, () => (w.readiness().ready ? true : undefined));
  return w;
}

async function stop(w: RunningWorker): Promise<void> {
  running.splice(running.indexOf(w), 1);
  await w.stop();
}

describe('state operations', () => {
  it('takes a snapshot of a running job, lists it, and a new job restored from it writes what the original wrote', { timeout: 240_000 }, async () => {
    const job = await newTestJob('snap', PARTITIONS);
    const all = events(uniqueName('s'), 21, 500, 20);
    const cut = Math.floor(all.length * 0.6);
    await produceEvents(job.topic, all.slice(0, cut));
    const a = variant(job, 'a');
    const workerA = await start(a.config);
    await waitCheckpointedToEnd(a.view, PARTITIONS, 120_000);
    const endsAtSnapshot = await topicEndOffsets(connection(), job.topic);

    const manifest = await takeSnapshot(a.config, 'before-more', { connection: connection(), timeoutMs: 30_000 });
    expect(manifest.source).toBe('workers');
    expect(manifest.partitions.map((p) => p.nextOffset)).toEqual([...Array(PARTITIONS).keys()].map((p) => endsAtSnapshot.get(p)));
    expect(manifest.format).toMatchObject({ name: 'churn', version: 1 });
    expect(manifest.modelVersion).toBeTruthy();
    expect(manifest.sizeBytes).toBeGreaterThan(10_000);

    // Listed, as a user sees it.
    const jobFile = join(tempDir('snap-cli-'), 'job.yaml');
    const root = a.config.checkpoint.dir.slice(0, a.config.checkpoint.dir.lastIndexOf('/'));
    const jobName = a.config.checkpoint.dir.slice(root.length + 1);
    writeFileSync(jobFile, stringify({ apiVersion: 'sluice.dev/v1alpha1', kind: 'ProcessingJob', metadata: { name: jobName }, spec: { type: 'churn', kafka: { bootstrapServers: a.config.kafka.bootstrapServers, topic: job.topic, consumerGroup: a.view.group }, redis: { host: 'localhost' } } }));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(repoRoot, 'cli/main.ts'), 'snapshot', 'list', '-f', jobFile, '--checkpoint-dir', root], { cwd: repoRoot });
    expect(stdout).toMatch(/^NAME\s+TAKEN\s+PARTITIONS\s+SIZE\s+MODEL\s+NEXT OFFSETS/);
    expect(stdout).toContain(`before-more  ${manifest.takenAt}  4`);
    expect(listSnapshots(a.config.checkpoint.dir).map((s) => [s.name, s.complete])).toEqual([['before-more', true]]);

    await produceEvents(job.topic, all.slice(cut));
    await waitCheckpointedToEnd(a.view, PARTITIONS, 120_000);
    await stop(workerA);

    const b = variant(job, 'b');
    const restored = await restoreState(b.config, { fromDir: snapshotDir(a.config.checkpoint.dir, 'before-more'), state: 'keep' }, { connection: connection() });
    expect(restored.partitions.map((p) => [p.nextOffset, p.state])).toEqual([...Array(PARTITIONS).keys()].map((p) => [endsAtSnapshot.get(p), 'snapshot']));
    const workerB = await start(b.config);
    await waitCheckpointedToEnd(b.view, PARTITIONS, 120_000);
    await stop(workerB);

    const usersA = await readHashes(redis, a.view.prefix, 'user:*');
    const usersB = await readHashes(redis, b.view.prefix, 'user:*');
    const laterUsers = new Set(all.slice(cut).map((e) => e.userId));
    expect(usersB.size).toBeGreaterThanOrEqual(laterUsers.size);
    for (const u of laterUsers) expect(usersB.has(`user:${u}`), u).toBe(true);
    const differing = [...usersB].filter(([k, h]) => JSON.stringify(h) !== JSON.stringify(usersA.get(k)));
    expect(differing.slice(0, 3)).toEqual([]);

    // Deleting it removes its files.
    expect(deleteSnapshot(a.config.checkpoint.dir, 'before-more')).toBe(true);
    expect(listSnapshots(a.config.checkpoint.dir)).toEqual([]);
  });

  it('an offset reset to a time with the state dropped gives the results of a fresh run from that time', { timeout: 240_000 }, async () => {
    const job = await newTestJob('reset', PARTITIONS);
    const reference = `${job.topic}.from-then`;
    await createTopic(connection(), reference, PARTITIONS);
    const all = events(uniqueName('r'), 33, 400, 20);
    const cut = Math.floor(all.length * 0.5);
    await produceEvents(job.topic, all.slice(0, cut));
    const before = await topicEndOffsets(connection(), job.topic);
    await sleep(100);
    const then = Date.now();
    await sleep(100);
    await produceEvents(job.topic, all.slice(cut));
    await produceEvents(reference, all.slice(cut));

    const a = variant(job, 'a');
    let worker = await start(a.config);
    await waitCheckpointedToEnd(a.view, PARTITIONS, 120_000);
    await stop(worker);
    const firstRun = await readHashes(redis, a.view.prefix, 'user:*');

    const reset = await restoreState(a.config, { id: 'replay-1', offsets: { at: 'timestamp', epochMs: then }, state: 'drop' }, { connection: connection() });
    expect(reset.partitions.map((p) => [p.nextOffset, p.state])).toEqual([...Array(PARTITIONS).keys()].map((p) => [before.get(p), 'empty']));
    // The same one-shot again changes nothing.
    const again = await restoreState(a.config, { id: 'replay-1', offsets: { at: 'earliest' }, state: 'keep' }, { connection: connection() });
    expect(again).toMatchObject({ repeated: true, offsets: new Date(then).toISOString() });
    worker = await start(a.config);
    await waitCheckpointedToEnd(a.view, PARTITIONS, 120_000);
    await stop(worker);

    const fresh = variant(job, 'fresh', reference);
    const freshWorker = await start(fresh.config);
    await waitCheckpointedToEnd(fresh.view, PARTITIONS, 120_000);
    await stop(freshWorker);

    const replayed = await readHashes(redis, a.view.prefix, 'user:*');
    const expected = await readHashes(redis, fresh.view.prefix, 'user:*');
    expect(expected.size).toBeGreaterThan(100);
    const differing = [...expected].filter(([k, h]) => JSON.stringify(h) !== JSON.stringify(replayed.get(k)));
    expect(differing.slice(0, 3)).toEqual([]);
    // The first run knew these users' earlier history; the replay, with its state dropped, does not.
    const changed = [...expected.keys()].filter((k) => JSON.stringify(firstRun.get(k)) !== JSON.stringify(replayed.get(k)));
    expect(changed.length).toBeGreaterThan(0);
  });

  it('a worker refuses checkpoints of another state format, says what to do, and starts after the state is dropped', { timeout: 180_000 }, async () => {
    const job = await newTestJob('compat', PARTITIONS);
    await produceEvents(job.topic, events(uniqueName('c'), 44, 200, 10));
    const a = variant(job, 'a');
    const worker = await start(a.config);
    await waitCheckpointedToEnd(a.view, PARTITIONS, 120_000);
    await stop(worker);
    await takeSnapshot(a.config, 'old-format', { connection: connection() });

    // As if another version wrote it: partition 2 in a state layout this worker does not read.
    const churn = taskJob(a.config);
    const store = new CheckpointStore(a.config.checkpoint.dir, a.config.kafka.consumerGroup, a.config.kafka.topic, churn);
    const got = store.load(2)!;
    rmSync(join(store.dir, '2'), { recursive: true, force: true });
    writeBase(store.dir, { jobType: 'churn', topic: a.config.kafka.topic, partition: 2, format: { ...churn.stateFormat, version: 7 } }, got.state.table, churn.meta(got.state), got.nextOffset);
    const file = join(store.dir, '2', 'manifest.1.json');
    const untouched = readFileSync(file, 'utf8');
    const dir = tempDir('compat-');
    const terminationLog = join(dir, 'termination-log');
    writeFileSync(terminationLog, '');
    const child = spawnWorker(writeWorkerConfig(a.config, dir, 'worker'), join(dir, 'worker.log'), { SLUICE_TERMINATION_LOG: terminationLog });
    const code = await Promise.race([exited(child), sleep(60_000).then(() => 'still running')]);
    if (code === 'still running') await killHard(child);
    expect(code).toBe(5);
    const said = readFileSync(terminationLog, 'utf8');
    expect(said).toMatch(/^StateIncompatible: the checkpoint of partition 2 .* cannot be used: its state format is churn v7, this worker reads v1\. Nothing was started from zero\./);
    expect(said).toContain('spec.restore.fromSnapshot');
    expect(said).toContain('state: drop');
    expect(readFileSync(file, 'utf8')).toBe(untouched);

    // A snapshot of such state is refused by a restore too.
    const manifestPath = join(snapshotDir(a.config.checkpoint.dir, 'old-format'), 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { format: { features: string[] } };
    manifest.format.features = [...manifest.format.features, 'days_to_next_holiday'];
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await expect(restoreState(a.config, { fromDir: snapshotDir(a.config.checkpoint.dir, 'old-format'), state: 'keep' }, { connection: connection() })).rejects.toThrow(
      /StateIncompatible: snapshot old-format .* it was built for other features \(the state holds features this job does not have: days_to_next_holiday\)/,
    );

    await restoreState(a.config, { offsets: { at: 'earliest' }, state: 'drop' }, { connection: connection() });
    const again = await start(a.config);
    await waitCheckpointedToEnd(a.view, PARTITIONS, 120_000);
    expect(again.readiness().ready).toBe(true);
    await stop(again);
  });
});
