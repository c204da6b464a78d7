/**
 * Reconcile of one ProcessingJobSnapshot: the task pod that copies the job's
 * state is started once, its result (the termination message) becomes the
 * status, and deleting the resource first deletes the files, unless
 * spec.retainFiles, through a finalizer. The snapshot is owned by its job, so
 * it goes with the job (and its files with the job's volume).
 */
import type { V1Job, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  API_VERSION,
  FINALIZER_SNAPSHOT_FILES,
  LABEL_JOB,
  LABEL_SNAPSHOT_ORIGIN,
  SNAPSHOT_KIND,
  type ProcessingJob,
  type ProcessingJobSnapshot,
  type ProcessingJobSnapshotStatus,
} from '../api/types.js';
import { describeError } from '../kube/client.js';
import type { EventType } from '../kube/events.js';
import { bounded } from '../reconcile/status.js';
import { renderTask, SNAPSHOTS_ON_VOLUME, taskName, taskOutcome, type TaskOp } from '../render/tasks.js';

export interface SnapshotView {
  snapshot(namespace: string, name: string): ProcessingJobSnapshot | undefined;
  job(namespace: string, name: string): ProcessingJob | undefined;
  task(namespace: string, name: string): V1Job | undefined;
}

export interface SnapshotWriter {
  apply(object: V1Job): Promise<V1Job>;
  taskPods(job: V1Job): Promise<V1Pod[]>;
  patchSnapshotStatus(snap: ProcessingJobSnapshot, status: ProcessingJobSnapshotStatus): Promise<unknown>;
  patchSnapshotMeta(snap: ProcessingJobSnapshot, metadata: Record<string, unknown>): Promise<unknown>;
}

export interface EventSink {
  record(object: { apiVersion: string; kind: string; metadata: ProcessingJob['metadata'] }, type: EventType, reason: string, message: string): void;
}

export interface SnapshotDeps {
  view: SnapshotView;
  writer: SnapshotWriter;
  events: EventSink;
  workerImage: string;
  log: Logger;
  now?: () => Date;
}

const stamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** 1536 -> 1.5Ki: what `kubectl get` shows of a size. */
export function humanBytes(n: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)}${units[i]}`;
}

export const ownerOf = (o: { apiVersion: string; kind: string; metadata: { name: string; uid?: string } }, controller = true): V1OwnerReference => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.metadata.name,
  uid: o.metadata.uid ?? '',
  controller,
  blockOwnerDeletion: false,
});

/** The image a task runs: what the job's workers run, so the task reads their state format. */
export const taskImage = (job: ProcessingJob, fallback: string): string => job.status?.workerImage ?? job.spec.image ?? fallback;

/** The status of a finished snapshot task, from what `sluice state snapshot` left. */
export function completedStatus(result: Record<string, unknown>, base: ProcessingJobSnapshotStatus, name: string): ProcessingJobSnapshotStatus {
  const format = result.format as { name?: string; version?: number; features?: number } | undefined;
  const size = Number(result.sizeBytes ?? 0);
  const offsets = Array.isArray(result.offsets) ? (result.offsets as number[]) : undefined;
  return {
    ...base,
    phase: 'Completed',
    message: `${String(result.partitions)} partitions, ${humanBytes(size)}, written ${result.source === 'workers' ? 'by the running workers' : 'from the latest checkpoints (no worker ran)'}`,
    takenAt: String(result.takenAt),
    sizeBytes: size,
    size: humanBytes(size),
    partitions: Number(result.partitions ?? 0),
    ...(offsets ? { offsets } : {}),
    ...(typeof result.modelVersion === 'string' ? { modelVersion: result.modelVersion } : {}),
    ...(format?.name ? { stateFormat: `${format.name} v${format.version}`, features: format.features } : {}),
    path: `${SNAPSHOTS_ON_VOLUME}/${name}`,
  };
}

export class SnapshotReconciler {
  private readonly now: () => Date;

  constructor(private readonly deps: SnapshotDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async reconcile(namespace: string, name: string): Promise<{ requeueAfterMs?: number }> {
    const snap = this.deps.view.snapshot(namespace, name);
    if (!snap) return {};
    const job = this.deps.view.job(namespace, snap.spec.jobName);
    if (snap.metadata.deletionTimestamp) return this.finalize(snap, job);
    if (job && !(await this.adopt(snap, job))) return {};
    const phase = snap.status?.phase;
    if (phase === 'Completed' || phase === 'Failed') return {};
    if (!job || job.metadata.deletionTimestamp) {
      await this.setStatus(snap, { ...snap.status, phase: 'Pending', message: `ProcessingJob '${snap.spec.jobName}' does not exist in namespace ${namespace}` });
      return { requeueAfterMs: 30_000 };
    }
    if (job.spec.restore && job.status?.restore?.id !== job.spec.restore.id) {
      await this.setStatus(snap, { ...snap.status, phase: 'Pending', message: `waiting: job '${job.metadata.name}' is restoring its state (spec.restore ${job.spec.restore.id})` });
      return { requeueAfterMs: 10_000 };
    }
    return this.take(snap, job);
  }

  /** Finalizer and owner reference, once; false when the patch changed the object (the watch brings it back). */
  private async adopt(snap: ProcessingJobSnapshot, job: ProcessingJob): Promise<boolean> {
    const finalizers = snap.metadata.finalizers ?? [];
    const owners = snap.metadata.ownerReferences ?? [];
    const owned = owners.some((o) => o.uid === job.metadata.uid);
    if (finalizers.includes(FINALIZER_SNAPSHOT_FILES) && owned) return true;
    await this.deps.writer.patchSnapshotMeta(snap, {
      finalizers: [...new Set([...finalizers, FINALIZER_SNAPSHOT_FILES])],
      ownerReferences: owned ? owners : [...owners, ownerOf(job, false)],
      labels: { ...snap.metadata.labels, [LABEL_JOB]: job.metadata.name },
    });
    return false;
  }

  private async take(snap: ProcessingJobSnapshot, job: ProcessingJob): Promise<{ requeueAfterMs?: number }> {
    const op: TaskOp = { op: 'snapshot', snapshot: snap.metadata.name, timeoutSeconds: snap.spec.timeoutSeconds };
    const existing = this.deps.view.task(snap.metadata.namespace, taskName(job.metadata.name, op));
    if (!existing) {
      const snapshotRef = ownerOf({ apiVersion: API_VERSION, kind: SNAPSHOT_KIND, metadata: snap.metadata });
      await this.deps.writer.apply(renderTask(job, op, { image: taskImage(job, this.deps.workerImage), owner: snapshotRef }));
      const origin = (snap.metadata.labels?.[LABEL_SNAPSHOT_ORIGIN] ?? 'manual') as 'manual' | 'scheduled' | 'upgrade';
      await this.setStatus(snap, {
        phase: 'Running',
        message: `copying the state of job '${job.metadata.name}' (task ${taskName(job.metadata.name, op)})`,
        requestedAt: stamp(this.now()),
        jobGeneration: job.metadata.generation ?? 0,
        jobType: job.spec.type,
        topic: job.spec.kafka.topic,
        origin,
      });
      this.deps.events.record(snapObject(snap), 'Normal', 'SnapshotStarted', `Copying the state of job ${job.metadata.name} (generation ${job.metadata.generation ?? 0})`);
      return { requeueAfterMs: 5_000 };
    }
    const outcome = taskOutcome(existing, await this.deps.writer.taskPods(existing));
    const base = snap.status ?? {};
    if (outcome.state === 'running') {
      if (base.message !== outcome.detail) await this.setStatus(snap, { ...base, phase: 'Running', message: outcome.detail });
      return { requeueAfterMs: 5_000 };
    }
    if (outcome.state === 'failed') {
      const message = bounded(`${outcome.reason}: ${outcome.message}`, 4096);
      await this.setStatus(snap, { ...base, phase: 'Failed', message });
      this.deps.events.record(snapObject(snap), 'Warning', 'SnapshotFailed', message);
      this.deps.events.record(job, 'Warning', 'SnapshotFailed', `Snapshot ${snap.metadata.name} failed: ${message}`);
      return {};
    }
    const status = completedStatus(outcome.result, base, snap.metadata.name);
    await this.setStatus(snap, status);
    const what = `Snapshot ${snap.metadata.name}: ${status.partitions} partitions, ${status.size}, model ${status.modelVersion ?? '?'}, next offsets ${(status.offsets ?? []).join(',')}`;
    this.deps.events.record(snapObject(snap), 'Normal', 'SnapshotCompleted', what);
    this.deps.events.record(job, 'Normal', 'SnapshotCompleted', what);
    return {};
  }

  /** Deletes the files (a task on the job's volume) before the resource goes, unless they are kept or the volume goes too. */
  private async finalize(snap: ProcessingJobSnapshot, job: ProcessingJob | undefined): Promise<{ requeueAfterMs?: number }> {
    const finalizers = snap.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER_SNAPSHOT_FILES)) return {};
    const release = async (): Promise<void> => {
      await this.deps.writer.patchSnapshotMeta(snap, { finalizers: finalizers.filter((f) => f !== FINALIZER_SNAPSHOT_FILES) });
    };
    if (snap.spec.retainFiles || !job || job.metadata.deletionTimestamp) {
      await release();
      return {};
    }
    const op: TaskOp = { op: 'delete', snapshot: snap.metadata.name };
    const existing = this.deps.view.task(snap.metadata.namespace, taskName(job.metadata.name, op));
    if (!existing) {
      await this.deps.writer.apply(renderTask(job, op, { image: taskImage(job, this.deps.workerImage), owner: ownerOf(job, false) }));
      return { requeueAfterMs: 5_000 };
    }
    const outcome = taskOutcome(existing, await this.deps.writer.taskPods(existing));
    if (outcome.state === 'running') return { requeueAfterMs: 5_000 };
    if (outcome.state === 'failed') {
      this.deps.events.record(job, 'Warning', 'SnapshotFilesKept', `Could not delete the files of snapshot ${snap.metadata.name} (${outcome.reason}: ${outcome.message}); they stay on the volume at ${SNAPSHOTS_ON_VOLUME}/${snap.metadata.name}`);
    } else {
      this.deps.events.record(job, 'Normal', 'SnapshotDeleted', `Deleted snapshot ${snap.metadata.name} and its files`);
    }
    await release();
    return {};
  }

  private async setStatus(snap: ProcessingJobSnapshot, status: ProcessingJobSnapshotStatus): Promise<void> {
    if (JSON.stringify(snap.status ?? {}) === JSON.stringify(status)) return;
    try {
      await this.deps.writer.patchSnapshotStatus(snap, status);
    } catch (err) {
      this.deps.log.warn({ snapshot: `${snap.metadata.namespace}/${snap.metadata.name}`, err: describeError(err) }, 'could not write snapshot status');
      throw err;
    }
  }
}

const snapObject = (snap: ProcessingJobSnapshot) => ({ apiVersion: API_VERSION, kind: SNAPSHOT_KIND, metadata: snap.metadata });
