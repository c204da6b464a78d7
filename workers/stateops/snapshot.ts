/**
 * Snapshots of a job's state: a consistent copy of every partition's state and
 * next offset, taken at one point, kept on the checkpoint volume beside the
 * live checkpoints (see runtime/control.ts for the layout). While the job's
 * workers run, each writes the partitions it owns between two batches; when
 * none runs, the latest checkpoints are copied, since nothing moves them.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { topicPartitionCount, type KafkaConnectionOptions } from '../../lib/kafka/client.js';
import { CheckpointStore } from '../runtime/checkpoint.js';
import { latestManifest, writeBase } from '../state/checkpoints.js';
import {
  checkName,
  controlPaths,
  endSnapshotRequest,
  liveMembers,
  manifestFile,
  readJsonFile,
  requestSnapshot,
  snapshotDir,
  snapshotPartitionsDir,
  treeSize,
  writeJsonFile,
} from '../runtime/control.js';
import type { StateFormat } from '../state/format.js';
import { StateOpError } from './errors.js';
import { identityOf, taskJob, type PartitionSidecar } from './job-state.js';

export interface SnapshotPartition {
  partition: number;
  /** The first offset not in the partition's state; null when the partition had consumed nothing. */
  nextOffset: number | null;
  bytes: number;
  /** When the partition's copy was written (ISO). */
  savedAt: string;
}

export interface SnapshotManifest {
  version: 1;
  name: string;
  job: { name: string; namespace?: string; type: string };
  topic: string;
  consumerGroup: string;
  requestedAt: string;
  takenAt: string;
  format: StateFormat;
  modelVersion?: string;
  /** 'workers': written by the running workers; 'checkpoints': copied from the latest checkpoints (no worker ran). */
  source: 'workers' | 'checkpoints';
  partitions: SnapshotPartition[];
  sizeBytes: number;
}

export interface TakeOptions {
  connection: KafkaConnectionOptions;
  /** How long the running workers have to write their partitions. */
  timeoutMs?: number;
  now?: () => number;
  log?: (message: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number): string => new Date(ms).toISOString();

export function readManifest(dir: string): SnapshotManifest | undefined {
  return readJsonFile<SnapshotManifest>(manifestFile(dir));
}

/** Takes snapshot `name` of the job `config` describes; taking a snapshot that exists returns it. */
export async function takeSnapshot(config: WorkerConfig, name: string, options: TakeOptions): Promise<SnapshotManifest> {
  checkName(name);
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => undefined);
  const root = config.checkpoint.dir;
  const dir = snapshotDir(root, name);
  const done = readManifest(dir);
  if (done) return done;
  const partitions = await topicPartitionCount(options.connection, config.kafka.topic);
  const requestedAt = now();
  const parts = snapshotPartitionsDir(dir);
  const members = liveMembers(root, requestedAt);
  let source: SnapshotManifest['source'];
  if (members.length > 0) {
    source = 'workers';
    log(`asking ${members.length} running worker(s) to write ${partitions} partitions`);
    requestSnapshot(root, name, requestedAt);
    try {
      await waitForPartitions(parts, partitions, options.timeoutMs ?? 120_000, members.map((m) => m.id));
    } finally {
      endSnapshotRequest(root, name);
    }
  } else {
    source = 'checkpoints';
    log(`no worker runs: copying the latest checkpoints of ${partitions} partitions`);
    copyCheckpoints(config, parts, partitions);
  }
  const manifest = describe(config, name, parts, partitions, { requestedAt, takenAt: now(), source });
  writeJsonFile(manifestFile(dir), manifest);
  return { ...manifest, sizeBytes: treeSize(dir) };
}

const sidecarFile = (parts: string, p: number): string => join(parts, `${p}.json`);

async function waitForPartitions(parts: string, partitions: number, timeoutMs: number, members: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = Array.from({ length: partitions }, (_, p) => p).filter((p) => !existsSync(sidecarFile(parts, p)));
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      throw new StateOpError(
        'SnapshotTimeout',
        `partitions ${missing.join(',')} were not written within ${Math.round(timeoutMs / 1000)}s by the running workers (${members.join(', ')}): ` +
          'are they restoring or stuck? Their /readyz says why; take the snapshot again once they are Ready',
      );
    }
    await sleep(200);
  }
}

/** No worker runs: every partition's latest checkpoint, read and verified, becomes one base in the snapshot. */
function copyCheckpoints(config: WorkerConfig, parts: string, partitions: number): void {
  const job = taskJob(config);
  const live = new CheckpointStore(config.checkpoint.dir, config.kafka.consumerGroup, config.kafka.topic, job);
  for (let p = 0; p < partitions; p++) {
    const got = live.load(p);
    const written = got ? writeBase(parts, identityOf(job, config, p), got.state.table, job.meta(got.state), got.nextOffset) : { bytes: 0, users: 0 };
    const sidecar: PartitionSidecar = { partition: p, nextOffset: got ? got.nextOffset : -1, savedAt: got?.savedAt ?? Date.now(), ...written };
    writeJsonFile(sidecarFile(parts, p), sidecar);
    void got?.state.table.dispose();
  }
}

function describe(
  config: WorkerConfig,
  name: string,
  parts: string,
  partitions: number,
  at: { requestedAt: number; takenAt: number; source: SnapshotManifest['source'] },
): SnapshotManifest {
  const out: SnapshotPartition[] = [];
  let modelVersion: string | undefined;
  let format: StateFormat | undefined;
  for (let p = 0; p < partitions; p++) {
    const side = readJsonFile<PartitionSidecar>(sidecarFile(parts, p));
    if (!side) throw new StateOpError('SnapshotIncomplete', `partition ${p} of snapshot ${name} has no ${sidecarFile(parts, p)}`);
    modelVersion ??= side.modelVersion;
    format ??= latestManifest(join(parts, String(p)))?.state;
    out.push({ partition: p, nextOffset: side.nextOffset >= 0 ? side.nextOffset : null, bytes: side.bytes, savedAt: iso(side.savedAt) });
  }
  return {
    version: 1,
    name,
    job: { name: config.job.name, ...(config.job.namespace ? { namespace: config.job.namespace } : {}), type: config.job.type },
    topic: config.kafka.topic,
    consumerGroup: config.kafka.consumerGroup,
    requestedAt: iso(at.requestedAt),
    takenAt: iso(at.takenAt),
    format: format ?? taskJob(config).stateFormat,
    ...(modelVersion ? { modelVersion } : {}),
    source: at.source,
    partitions: out,
    sizeBytes: out.reduce((n, p) => n + p.bytes, 0),
  };
}

export interface SnapshotListing {
  name: string;
  complete: boolean;
  manifest?: SnapshotManifest;
  sizeBytes: number;
}

/** The snapshots on a checkpoint volume, oldest first; incomplete ones (a task that died) too. */
export function listSnapshots(checkpointRoot: string): SnapshotListing[] {
  const base = controlPaths(checkpointRoot).snapshots;
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .map((name) => {
      const dir = snapshotDir(checkpointRoot, name);
      const manifest = readManifest(dir);
      return { name, complete: manifest !== undefined, ...(manifest ? { manifest } : {}), sizeBytes: treeSize(dir) };
    })
    .sort((a, b) => (a.manifest?.takenAt ?? '~').localeCompare(b.manifest?.takenAt ?? '~') || a.name.localeCompare(b.name));
}

/** Removes a snapshot's files; returns false when there were none. */
export function deleteSnapshot(checkpointRoot: string, name: string): boolean {
  checkName(name);
  const dir = snapshotDir(checkpointRoot, name);
  endSnapshotRequest(checkpointRoot, name);
  if (!existsSync(dir)) return false;
  rmSync(dir, { recursive: true, force: true });
  return true;
}
