/**
 * Restores and offset resets: rewrites a stopped job's checkpoints so that its
 * workers start from a snapshot (of this job or of another job of the same
 * type on the same topic), and/or from other offsets (earliest, latest, a
 * time) with the state kept or dropped. Done while no worker of the job runs;
 * a restore with an id is done once, its result kept on the volume.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { setGroupOffsets, topicOffsetsAt, topicPartitionCount, type KafkaConnectionOptions, type OffsetPoint } from '../../lib/kafka/client.js';
import { CheckpointStore } from '../runtime/checkpoint.js';
import { controlPaths, liveMembers, readJsonFile, snapshotPartitionsDir, writeJsonFile } from '../runtime/control.js';
import type { StreamJob } from '../runtime/job.js';
import { PartitionCheckpoints, writeBase } from '../state/checkpoints.js';
import { assertCompatible } from '../state/format.js';
import type { UserTable } from '../state/table.js';
import { StateOpError } from './errors.js';
import { identityOf, taskJob, type PartitionSidecar } from './job-state.js';
import { readManifest } from './snapshot.js';

export type StateChoice = 'keep' | 'drop';

export interface RestoreRequest {
  /** One-shot key: a restore with an id already done is not done again. */
  id?: string;
  /** A snapshot directory (`<checkpoint.dir>/.sluice/snapshots/<name>`, or one on another job's volume). */
  fromDir?: string;
  offsets?: OffsetPoint;
  /** What happens to state: the snapshot's or the current checkpoint's (keep), or none (drop). */
  state: StateChoice;
}

export interface RestoreResult {
  id?: string;
  completedAt: string;
  fromSnapshot?: string;
  offsets?: string;
  state: StateChoice;
  partitions: { partition: number; nextOffset: number | null; state: 'snapshot' | 'kept' | 'empty' }[];
  /** True when this id had been restored before: nothing was changed now. */
  repeated?: boolean;
}

export interface RestoreOptions {
  connection: KafkaConnectionOptions;
  /** How long to wait for the job's workers to be gone (a SIGKILLed one leaves a heartbeat for 10 s). */
  waitForWorkersMs?: number;
  /** How long to keep trying to set the group's committed offsets (a dead member keeps the group busy). */
  groupWaitMs?: number;
  log?: (message: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const describeOffsets = (p: OffsetPoint): string => (p.at === 'timestamp' ? new Date(p.epochMs).toISOString() : p.at);

/** `earliest`, `latest` or an ISO-8601 time. */
export function parseOffsetPoint(text: string): OffsetPoint {
  if (text === 'earliest' || text === 'latest') return { at: text };
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(ms)) {
    throw new StateOpError('InvalidOffsets', `offsets '${text}' must be earliest, latest or a time such as 2024-05-01T00:00:00Z`);
  }
  return { at: 'timestamp', epochMs: ms };
}

async function waitForNoWorkers(root: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const live = liveMembers(root);
    if (live.length === 0) return;
    if (Date.now() > deadline) {
      throw new StateOpError(
        'WorkersRunning',
        `workers of this job are running (${live.map((m) => m.id).join(', ')}): a restore rewrites their checkpoints, so stop them first ` +
          '(the operator scales them to 0 by itself; locally: sluice stop <job>)',
      );
    }
    await sleep(500);
  }
}

async function retry(fn: () => Promise<void>, forMs: number): Promise<void> {
  const deadline = Date.now() + forMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

const markerFile = (root: string, id: string): string => join(controlPaths(root).restores, `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);

/** The snapshot at `dir`, checked against the job: same type, topic and partitions, a state format it reads. */
function openSnapshot(config: WorkerConfig, job: StreamJob, dir: string, partitions: number): { parts: string; name: string } {
  const { topic } = config.kafka;
  const manifest = readManifest(dir);
  if (!manifest) throw new StateOpError('SnapshotNotFound', `no complete snapshot at ${dir} (missing manifest.json)`);
  if (manifest.job.type !== config.job.type) {
    throw new StateOpError('SnapshotOfAnotherType', `snapshot ${manifest.name} is of a '${manifest.job.type}' job; this job is '${config.job.type}'`);
  }
  if (manifest.topic !== topic || manifest.partitions.length !== partitions) {
    throw new StateOpError(
      'SnapshotTopicMismatch',
      `snapshot ${manifest.name} holds ${manifest.partitions.length} partitions of topic '${manifest.topic}'; this job reads '${topic}' with ${partitions}: ` +
        'offsets only mean something on the same topic and partitions',
    );
  }
  assertCompatible(`snapshot ${manifest.name} (taken ${manifest.takenAt})`, manifest.format, job.stateFormat);
  return { parts: snapshotPartitionsDir(dir), name: manifest.name };
}

type PartitionResult = RestoreResult['partitions'][number];
interface Source {
  table: UserTable;
  meta: Record<string, number>;
  nextOffset: number;
}

/** The state a partition restores from: the snapshot's, the current checkpoint's (keep), or none. */
function sourceOf(job: StreamJob, config: WorkerConfig, p: number, live: CheckpointStore, from: string | undefined, state: StateChoice): Source | undefined {
  if (from) {
    const side = readJsonFile<PartitionSidecar>(join(from, `${p}.json`));
    if (!side) throw new StateOpError('SnapshotIncomplete', `the snapshot has no partition ${p}`);
    if (side.nextOffset < 0) return undefined;
    const got = new PartitionCheckpoints(from, identityOf(job, config, p)).load(() => job.newTable());
    if (!got) throw new StateOpError('SnapshotIncomplete', `the snapshot's partition ${p} has no readable state`);
    return { table: got.table, meta: got.meta, nextOffset: got.nextOffset };
  }
  if (state === 'drop') return undefined;
  const got = live.load(p);
  return got ? { table: got.state.table, meta: job.meta(got.state), nextOffset: got.nextOffset } : undefined;
}

/** Rewrites one partition's checkpoint: state from the snapshot or the checkpoint (keep) or none, at the new offset. */
function restorePartition(
  job: StreamJob,
  config: WorkerConfig,
  p: number,
  live: CheckpointStore,
  from: string | undefined,
  state: StateChoice,
  point: number | undefined,
): PartitionResult {
  const source = sourceOf(job, config, p, live, from, state);
  const offset = point ?? (source && source.nextOffset >= 0 ? source.nextOffset : undefined);
  // The partition's old checkpoints go: what is written below is all it has.
  rmSync(join(live.dir, String(p)), { recursive: true, force: true });
  rmSync(join(live.dir, `${p}.json`), { force: true });
  if (offset === undefined) return { partition: p, nextOffset: null, state: 'empty' };
  const kept = state === 'keep' && source !== undefined;
  const fresh = kept ? undefined : job.newState();
  writeBase(live.dir, identityOf(job, config, p), kept ? source.table : fresh!.table, kept ? source.meta : job.meta(fresh!), offset);
  return { partition: p, nextOffset: offset, state: kept ? (from ? 'snapshot' : 'kept') : 'empty' };
}

export async function restoreState(config: WorkerConfig, request: RestoreRequest, options: RestoreOptions): Promise<RestoreResult> {
  const root = config.checkpoint.dir;
  const log = options.log ?? (() => undefined);
  if (request.id) {
    const before = readJsonFile<RestoreResult>(markerFile(root, request.id));
    if (before) return { ...before, repeated: true };
  }
  if (!request.fromDir && !request.offsets) throw new StateOpError('NothingToRestore', 'give a snapshot to restore, new offsets, or both');
  await waitForNoWorkers(root, options.waitForWorkersMs ?? 20_000);
  const { topic, consumerGroup } = config.kafka;
  const partitions = await topicPartitionCount(options.connection, topic);
  const job = taskJob(config);
  const from = request.fromDir ? openSnapshot(config, job, request.fromDir, partitions) : undefined;
  const points = request.offsets ? await topicOffsetsAt(options.connection, topic, request.offsets) : undefined;
  const live = new CheckpointStore(root, consumerGroup, topic, job);
  const results = Array.from({ length: partitions }, (_, p) => restorePartition(job, config, p, live, from?.parts, request.state, points?.get(p)));
  const commits = new Map(results.filter((r) => r.nextOffset !== null).map((r) => [r.partition, r.nextOffset!]));
  // The checkpoints are what the workers resume from; the group's offsets follow, so lag reads right at once.
  // A member that died moments ago keeps the group non-empty until its session times out: try for a while.
  await retry(() => setGroupOffsets(options.connection, consumerGroup, topic, commits), options.groupWaitMs ?? 45_000).catch((err: Error) =>
    log(`could not set the committed offsets of ${consumerGroup} (the checkpoints are what counts): ${err.message}`),
  );
  const result: RestoreResult = {
    ...(request.id ? { id: request.id } : {}),
    completedAt: new Date().toISOString(),
    ...(from ? { fromSnapshot: from.name } : {}),
    ...(request.offsets ? { offsets: describeOffsets(request.offsets) } : {}),
    state: request.state,
    partitions: results,
  };
  if (request.id) writeJsonFile(markerFile(root, request.id), result);
  return result;
}
