import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import { renderTask, taskName, taskOutcome } from './tasks.js';

const job = defaultedJob('churn', 'shop', { ...minimalSpec(), template: { nodeSelector: { disk: 'ssd' } } });
const owner = { apiVersion: 'sluice.dev/v1alpha1', kind: 'ProcessingJob', name: 'churn', uid: 'u1', controller: false, blockOwnerDeletion: false };

describe('task Jobs', () => {
  it("runs sluice state with the job's config and volume, never as a worker the Deployment or Service would pick up", () => {
    const t = renderTask(job, { op: 'snapshot', snapshot: 's1', timeoutSeconds: 120 }, { image: 'sluice:1', owner });
    const pod = t.spec!.template.spec!;
    expect(pod.containers[0]!.args).toEqual(['state', 'snapshot', '--config', '/etc/sluice/worker.yaml', '--name', 's1', '--timeout', '120']);
    expect(pod.volumes!.map((v) => v.name)).toEqual(['config', 'checkpoints', 'tmp']);
    expect(pod.nodeSelector).toEqual({ disk: 'ssd' });
    expect(pod.restartPolicy).toBe('Never');
    expect(t.spec!.template.metadata!.labels!['app.kubernetes.io/name']).toBe('sluice-task');
    expect(t.spec!.activeDeadlineSeconds).toBe(300);
    expect(t.metadata!.annotations).toEqual({ 'sluice.dev/snapshot': 's1' });
    expect(taskName('churn', { op: 'snapshot', snapshot: 's1', timeoutSeconds: 1 })).toMatch(/^churn-snapshot-[0-9a-f]{10}$/);
  });

  it("mounts another job's volume read-only to restore its snapshot", () => {
    const t = renderTask(job, { op: 'restore', id: 'r1', from: { snapshot: 'blue-1', job: 'blue' }, state: 'keep' }, { image: 'sluice:1', owner });
    const pod = t.spec!.template.spec!;
    expect(pod.volumes!.find((v) => v.name === 'source')?.persistentVolumeClaim).toEqual({ claimName: 'blue-checkpoints', readOnly: true });
    expect(pod.containers[0]!.args).toEqual(['state', 'restore', '--config', '/etc/sluice/worker.yaml', '--id', 'r1', '--from', '/var/lib/sluice/source/.sluice/snapshots/blue-1', '--state', 'keep']);
    const own = renderTask(job, { op: 'restore', id: 'r2', from: { snapshot: 'churn-1', job: 'churn' }, offsets: 'latest', state: 'keep' }, { image: 'sluice:1', owner });
    expect(own.spec!.template.spec!.containers[0]!.args).toEqual(['state', 'restore', '--config', '/etc/sluice/worker.yaml', '--id', 'r2', '--snapshot', 'churn-1', '--offsets', 'latest', '--state', 'keep']);
  });

  it('lands beside the workers when the volume is ReadWriteOnce', () => {
    const rwo = defaultedJob('churn', 'shop', { ...minimalSpec(), checkpoint: { accessMode: 'ReadWriteOnce' } } as never);
    const affinity = renderTask(rwo, { op: 'delete', snapshot: 's1' }, { image: 'i', owner }).spec!.template.spec!.affinity;
    expect(affinity?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
  });

  const pod = (exitCode: number, message: string): V1Pod => ({
    metadata: { name: 'p', creationTimestamp: new Date('2024-01-01T00:00:00Z') },
    status: { containerStatuses: [{ name: 'task', ready: false, restartCount: 0, image: 'i', imageID: '', state: { terminated: { exitCode, message } } }] },
  });
  const done = (type: 'Complete' | 'Failed'): V1Job => ({ metadata: { name: 't' }, status: { conditions: [{ type, status: 'True', reason: type === 'Failed' ? 'BackoffLimitExceeded' : undefined }] } });

  it('reads the result from the termination message, and a failure with its code', () => {
    expect(taskOutcome(done('Complete'), [pod(0, '{"op":"snapshot","partitions":4}')])).toEqual({ state: 'succeeded', result: { op: 'snapshot', partitions: 4 } });
    expect(taskOutcome(done('Failed'), [pod(1, 'SnapshotTimeout: partitions 3 were not written')])).toEqual({ state: 'failed', reason: 'SnapshotTimeout', message: 'partitions 3 were not written' });
    expect(taskOutcome(done('Failed'), [])).toMatchObject({ state: 'failed', reason: 'BackoffLimitExceeded' });
    expect(taskOutcome({ metadata: { name: 't' }, status: {} }, [])).toMatchObject({ state: 'running' });
  });
});
