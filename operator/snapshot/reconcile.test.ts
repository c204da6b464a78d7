import type { V1Job, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import type { ProcessingJob, ProcessingJobSnapshot, ProcessingJobSnapshotStatus } from '../api/types.js';
import { taskName } from '../render/tasks.js';
import { humanBytes, SnapshotReconciler } from './reconcile.js';

const job: ProcessingJob = { ...defaultedJob('churn', 'shop', minimalSpec()), status: { workerImage: 'sluice:2' } };
const snapshot = (extra: Partial<ProcessingJobSnapshot['metadata']> = {}, status?: ProcessingJobSnapshotStatus, retainFiles = false): ProcessingJobSnapshot => ({
  apiVersion: 'sluice.dev/v1alpha1',
  kind: 'ProcessingJobSnapshot',
  metadata: { name: 's1', namespace: 'shop', uid: 'snap-uid', finalizers: ['sluice.dev/snapshot-files'], ownerReferences: [{ apiVersion: 'sluice.dev/v1alpha1', kind: 'ProcessingJob', name: 'churn', uid: job.metadata.uid! }], ...extra },
  spec: { jobName: 'churn', retainFiles, timeoutSeconds: 300 },
  ...(status ? { status } : {}),
});
const finished = (name: string, exitCode: number, message: string): { task: V1Job; pods: V1Pod[] } => ({
  task: { metadata: { name }, status: { conditions: [{ type: exitCode === 0 ? 'Complete' : 'Failed', status: 'True' }] } },
  pods: [{ metadata: { name: `${name}-x` }, status: { containerStatuses: [{ name: 'task', ready: false, restartCount: 0, image: '', imageID: '', state: { terminated: { exitCode, message } } }] } }],
});

function world(snap: ProcessingJobSnapshot, task?: { task: V1Job; pods: V1Pod[] }) {
  const statuses: ProcessingJobSnapshotStatus[] = [];
  const metas: Record<string, unknown>[] = [];
  const applied: V1Job[] = [];
  const events: string[] = [];
  const r = new SnapshotReconciler({
    view: { snapshot: () => snap, job: () => job, task: () => task?.task },
    writer: {
      apply: async (j) => (applied.push(j), j),
      taskPods: async () => task?.pods ?? [],
      patchSnapshotStatus: async (_s, st) => void statuses.push(st),
      patchSnapshotMeta: async (_s, m) => void metas.push(m),
    },
    events: { record: (o, type, reason) => void events.push(`${o.kind}/${type}/${reason}`) },
    workerImage: 'sluice:latest',
    log: pino({ level: 'silent' }),
  });
  return { r, statuses, metas, applied, events };
}

describe('snapshot reconcile', () => {
  it('adopts a new snapshot: finalizer, owner reference to its job, job label', async () => {
    const w = world(snapshot({ finalizers: [], ownerReferences: [] }));
    await w.r.reconcile('shop', 's1');
    expect(w.metas[0]).toMatchObject({ finalizers: ['sluice.dev/snapshot-files'], ownerReferences: [{ kind: 'ProcessingJob', name: 'churn' }], labels: { 'sluice.dev/job': 'churn' } });
  });

  it("starts the task with the image the job's workers run, and records the request", async () => {
    const w = world(snapshot());
    await w.r.reconcile('shop', 's1');
    expect(w.applied[0]!.spec!.template.spec!.containers[0]!.image).toBe('sluice:2');
    expect(w.statuses[0]).toMatchObject({ phase: 'Running', jobGeneration: 1, jobType: 'churn', origin: 'manual' });
    expect(w.events).toEqual(['ProcessingJobSnapshot/Normal/SnapshotStarted']);
  });

  it('turns the task result into the status, with Events on the snapshot and the job', async () => {
    const name = taskName('churn', { op: 'snapshot', snapshot: 's1', timeoutSeconds: 300 });
    const result = { op: 'snapshot', takenAt: '2024-05-01T10:00:00.000Z', sizeBytes: 3 * 1024 * 1024, partitions: 4, source: 'workers', format: { name: 'churn', version: 1, features: 19 }, modelVersion: 'churn-v7', offsets: [10, 20, 30, -1] };
    const w = world(snapshot({}, { phase: 'Running' }), finished(name, 0, JSON.stringify(result)));
    await w.r.reconcile('shop', 's1');
    expect(w.statuses[0]).toMatchObject({ phase: 'Completed', size: '3.0Mi', partitions: 4, offsets: [10, 20, 30, -1], modelVersion: 'churn-v7', stateFormat: 'churn v1', features: 19, path: '.sluice/snapshots/s1' });
    expect(w.events).toEqual(['ProcessingJobSnapshot/Normal/SnapshotCompleted', 'ProcessingJob/Normal/SnapshotCompleted']);
  });

  it('says why a snapshot failed, in the code and words of the task', async () => {
    const name = taskName('churn', { op: 'snapshot', snapshot: 's1', timeoutSeconds: 300 });
    const w = world(snapshot({}, { phase: 'Running' }), finished(name, 1, 'SnapshotTimeout: partitions 3 were not written within 120s'));
    await w.r.reconcile('shop', 's1');
    expect(w.statuses[0]).toMatchObject({ phase: 'Failed', message: 'SnapshotTimeout: partitions 3 were not written within 120s' });
    expect(w.events).toContain('ProcessingJob/Warning/SnapshotFailed');
  });

  it('deletes the files before letting the resource go, unless they are kept', async () => {
    const deleting = { deletionTimestamp: new Date() };
    const first = world(snapshot(deleting, { phase: 'Completed' }));
    await first.r.reconcile('shop', 's1');
    expect(first.applied[0]!.spec!.template.spec!.containers[0]!.args).toEqual(['state', 'delete', '--config', '/etc/sluice/worker.yaml', '--name', 's1']);
    expect(first.metas).toEqual([]);
    const done = world(snapshot(deleting, { phase: 'Completed' }), finished(taskName('churn', { op: 'delete', snapshot: 's1' }), 0, '{"op":"delete","deleted":true}'));
    await done.r.reconcile('shop', 's1');
    expect(done.metas).toEqual([{ finalizers: [] }]);
    const kept = world(snapshot(deleting, { phase: 'Completed' }, true));
    await kept.r.reconcile('shop', 's1');
    expect(kept.applied).toEqual([]);
    expect(kept.metas).toEqual([{ finalizers: [] }]);
  });

  it('shows sizes as kubectl users read them', () => {
    expect([humanBytes(512), humanBytes(1536), humanBytes(5 * 1024 ** 3)]).toEqual(['512', '1.5Ki', '5.0Gi']);
  });
});
