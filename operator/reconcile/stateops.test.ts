import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import type { ProcessingJob, ProcessingJobSnapshot } from '../api/types.js';
import { taskName } from '../render/tasks.js';
import { StateOps } from './stateops.js';

const now = new Date('2024-05-01T10:00:00Z');
const restore = { id: 'replay-1', offsets: { reset: 'earliest' as const }, state: 'drop' as const };

function world(snapshots: ProcessingJobSnapshot[] = [], tasks: V1Job[] = [], taskPods: V1Pod[] = []) {
  const applied: V1Job[] = [];
  const created: string[] = [];
  const deleted: string[] = [];
  const ops = new StateOps(
    {
      snapshot: (_ns, name) => snapshots.find((s) => s.metadata.name === name),
      snapshotsOf: (_ns, job) => snapshots.filter((s) => s.spec.jobName === job),
      task: (_ns, name) => tasks.find((t) => t.metadata?.name === name),
    },
    {
      apply: async (j) => (applied.push(j), j),
      taskPods: async () => taskPods,
      createSnapshot: async (s) => void created.push(s.metadata.name),
      deleteSnapshot: async (_ns, name) => void deleted.push(name),
    },
  );
  return { ops, applied, created, deleted };
}

const job = (extra: Record<string, unknown> = {}, status?: ProcessingJob['status']): ProcessingJob => {
  const j = defaultedJob('churn', 'shop', { ...minimalSpec(), ...extra } as never);
  if (status) j.status = status;
  return j;
};
const workerPod: V1Pod = { metadata: { name: 'churn-worker-1' }, status: { phase: 'Running' } };
const input = (j: ProcessingJob, pods: V1Pod[] = []) => ({ job: j, pods, rollout: { settled: true }, workerImage: 'sluice:1', now });

describe('state operations of a job', () => {
  it('stops the workers for a restore and starts the task only once they are gone', async () => {
    const w = world();
    const waiting = await w.ops.plan(input(job({ restore }), [workerPod]));
    expect(waiting).toMatchObject({ stopWorkers: true, status: { restore: { id: 'replay-1', phase: 'Pending' } } });
    await waiting.act();
    expect(w.applied).toEqual([]);
    const go = await w.ops.plan(input(job({ restore })));
    expect(go).toMatchObject({ stopWorkers: true, status: { restore: { phase: 'Running' } } });
    await go.act();
    expect(w.applied[0]!.spec!.template.spec!.containers[0]!.args).toContain('--offsets');
  });

  it('records the outcome and does nothing more for the same id', async () => {
    const j = job({ restore });
    const name = taskName('churn', { op: 'restore', id: 'replay-1', offsets: 'earliest', state: 'drop' });
    const task: V1Job = { metadata: { name }, status: { conditions: [{ type: 'Complete', status: 'True' }] } };
    const pod: V1Pod = { metadata: { name: 'x' }, status: { containerStatuses: [{ name: 'task', ready: false, restartCount: 0, image: '', imageID: '', state: { terminated: { exitCode: 0, message: '{"op":"restore","completedAt":"2024-05-01T10:00:05Z","offsets":[0,0,0,0]}' } } }] } };
    const done = await world([], [task], [pod]).ops.plan(input(j));
    expect(done).toMatchObject({ stopWorkers: false, status: { restore: { id: 'replay-1', phase: 'Completed', offsets: [0, 0, 0, 0] } } });
    expect(done.events.map((e) => e.reason)).toEqual(['RestoreCompleted']);
    const again = await world().ops.plan(input(job({ restore }, { restore: done.status.restore })));
    expect(again.stopWorkers).toBe(false);
    expect(again.status.restore).toBeUndefined();
  });

  it('refuses a restore from a snapshot that does not exist, without stopping the workers', async () => {
    const p = await world().ops.plan(input(job({ restore: { id: 'r', fromSnapshot: 'nope' } }), [workerPod]));
    expect(p).toMatchObject({ stopWorkers: false, status: { restore: { phase: 'Failed' } } });
    expect(p.status.restore!.message).toContain("no ProcessingJobSnapshot 'nope'");
  });

  it('takes scheduled snapshots and retires the oldest the operator took', async () => {
    const snap = (name: string, created: string, origin: string): ProcessingJobSnapshot => ({
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'ProcessingJobSnapshot',
      metadata: { name, namespace: 'shop', creationTimestamp: new Date(created), labels: { 'sluice.dev/snapshot-origin': origin } },
      spec: { jobName: 'churn', retainFiles: false, timeoutSeconds: 300 },
      status: { phase: 'Completed', takenAt: created },
    });
    const w = world([snap('a', '2024-05-01T07:00:00Z', 'scheduled'), snap('b', '2024-05-01T08:00:00Z', 'scheduled'), snap('mine', '2024-05-01T06:00:00Z', 'manual'), snap('c', '2024-05-01T09:00:00Z', 'scheduled')]);
    const p = await w.ops.plan(input(job({ snapshots: { intervalMinutes: 60, keep: 2 } })));
    await p.act();
    expect(w.deleted).toEqual(['a']);
    expect(w.created).toEqual(['churn-20240501-100000']);
    expect(p.status).toMatchObject({ lastSnapshot: 'c', lastSnapshotTime: '2024-05-01T09:00:00Z' });
  });
});
