import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import type { ProcessingJob } from '../api/types.js';
import { changesWorkers, decideUpgrade, stableSpecOf, type UpgradeInput, type UpgradeStatus } from './rollback.js';

const t0 = new Date('2024-05-01T10:00:00Z');
const at = (s: number): Date => new Date(t0.getTime() + s * 1000);

function job(generation: number, upgrade: UpgradeStatus | undefined, spec: Record<string, unknown> = {}): ProcessingJob {
  const j = defaultedJob('churn', 'shop', { ...minimalSpec(), upgrade: { snapshotBeforeChange: true, rollback: true, timeoutSeconds: 300 }, ...spec } as never);
  j.metadata.generation = generation;
  if (upgrade) j.status = { upgrade };
  return j;
}

const ready = { settled: true };
const crashing = { settled: false, problem: { reason: 'CrashLoopBackOff', message: 'pod churn-worker-x container worker is CrashLoopBackOff' } };
const run = (input: Partial<UpgradeInput> & { job: ProcessingJob }) => decideUpgrade({ rollout: ready, now: t0, ...input });

describe('upgrade state machine', () => {
  const v1 = job(1, undefined);
  const stable1 = run({ job: v1 }).status;

  it('makes the first Ready spec the stable one', () => {
    expect(stable1).toMatchObject({ state: 'Stable', stableGeneration: 1 });
    expect(stable1.stableSpec).toEqual(v1.spec);
    expect(run({ job: v1, rollout: crashing }).status.state).toBe('Upgrading');
  });

  it('treats scaling and suspending as no change of the workers', () => {
    const scaled = job(2, stable1, { parallelism: 4 });
    expect(changesWorkers(scaled.spec, stable1.stableSpec!)).toBe(false);
    const d = run({ job: scaled });
    expect(d).toMatchObject({ apply: 'spec', stopWorkers: false, status: { state: 'Stable', stableGeneration: 2 } });
    expect(d.takeSnapshot).toBeUndefined();
  });

  it('takes a snapshot before a new model and keeps the stable spec running until it is Completed', () => {
    const v2 = job(2, stable1, { model: { source: 'configMap', configMap: { name: 'm2', key: 'model.onnx' } } });
    const d = run({ job: v2 });
    expect(d).toMatchObject({ apply: 'stable', takeSnapshot: 'churn-pre-upgrade-2', status: { state: 'Snapshotting', changeGeneration: 2 } });
    expect(d.event?.reason).toBe('SnapshotBeforeUpgrade');
    const waiting = run({ job: job(2, d.status, v2.spec as never), snapshot: { phase: 'Running' } });
    expect(waiting).toMatchObject({ apply: 'stable', takeSnapshot: 'churn-pre-upgrade-2' });
    const failed = run({ job: job(2, d.status, v2.spec as never), snapshot: { phase: 'Failed', message: 'SnapshotTimeout: partitions 3 were not written' } });
    expect(failed).toMatchObject({ apply: 'stable', status: { reason: 'SnapshotFailed' } });
    expect(failed.status.message).toContain('generation 1 keeps running');
    const go = run({ job: job(2, d.status, v2.spec as never), snapshot: { phase: 'Completed' }, now: at(10) });
    expect(go).toMatchObject({ apply: 'spec', status: { state: 'Upgrading', snapshot: 'churn-pre-upgrade-2', changeStartedAt: '2024-05-01T10:00:10Z' } });
  });

  const v2spec = { model: { source: 'configMap', configMap: { name: 'm2', key: 'model.onnx' } } };
  const upgradingStatus = (): UpgradeStatus =>
    run({ job: job(2, { ...run({ job: job(2, stable1, v2spec) }).status }, v2spec), snapshot: { phase: 'Completed' } }).status;

  it('makes the change stable once Ready and the committed offsets move after that', () => {
    const u = upgradingStatus();
    // The old workers' last commit (on their way out) is no progress of the new ones.
    const notYet = run({ job: job(2, u, v2spec), now: at(30), progress: { consumerLag: 500, lastCheckpointTime: '2024-05-01T10:00:20Z' } });
    expect(notYet.status).toMatchObject({ state: 'Upgrading', changeReadyAt: '2024-05-01T10:00:30Z' });
    const done = run({ job: job(2, notYet.status, v2spec), now: at(60), progress: { consumerLag: 40, lastCheckpointTime: '2024-05-01T10:00:50Z' } });
    expect(done).toMatchObject({ apply: 'spec', status: { state: 'Stable', stableGeneration: 2 }, event: { reason: 'UpgradeStable' } });
  });

  it('rolls back a change whose workers are not Ready in time, restoring the snapshot with the workers stopped', () => {
    const u = upgradingStatus();
    expect(run({ job: job(2, u, v2spec), rollout: crashing, now: at(299) }).status.state).toBe('Upgrading');
    const back = run({ job: job(2, u, v2spec), rollout: crashing, now: at(301) });
    expect(back).toMatchObject({ apply: 'stable', stopWorkers: true, restoreFrom: 'churn-pre-upgrade-2', status: { state: 'RollingBack', reason: 'WorkersNotReady' } });
    expect(back.status.message).toContain('CrashLoopBackOff');
    expect(back.event).toMatchObject({ type: 'Warning', reason: 'RollingBack' });
    const restoring = run({ job: job(2, back.status, v2spec), rollout: crashing, restore: { phase: 'Running' } });
    expect(restoring).toMatchObject({ apply: 'stable', stopWorkers: true });
    const rolled = run({ job: job(2, back.status, v2spec), restore: { phase: 'Completed' } });
    expect(rolled).toMatchObject({ apply: 'stable', stopWorkers: false, status: { state: 'RolledBack' }, event: { type: 'Warning', reason: 'RolledBack' } });
    expect(rolled.status.message).toContain('state restored from snapshot churn-pre-upgrade-2');
    // Applying the same YAML again changes nothing; a new generation starts over.
    expect(run({ job: job(2, rolled.status, v2spec) })).toMatchObject({ apply: 'stable', status: { state: 'RolledBack' } });
    const v3 = run({ job: job(3, rolled.status, { model: { source: 'configMap', configMap: { name: 'm3', key: 'model.onnx' } } }) });
    expect(v3).toMatchObject({ takeSnapshot: 'churn-pre-upgrade-3', status: { state: 'Snapshotting', stableGeneration: 1 } });
  });

  it('rolls back a change that is Ready but makes no progress, counting from when it was Ready', () => {
    const u = upgradingStatus();
    const lag = { consumerLag: 9000, lastCheckpointTime: '2024-05-01T09:59:00Z' };
    const readyLate = run({ job: job(2, u, v2spec), now: at(250), progress: lag });
    expect(readyLate.status.state).toBe('Upgrading');
    expect(run({ job: job(2, readyLate.status, v2spec), now: at(500), progress: lag }).status.state).toBe('Upgrading');
    const back = run({ job: job(2, readyLate.status, v2spec), now: at(551), progress: lag });
    expect(back.status).toMatchObject({ state: 'RollingBack', reason: 'NoProgress' });
    // No lag known (nothing committed yet): Ready is all there is to go by.
    expect(run({ job: job(2, u, v2spec), now: at(10), progress: {} }).status.state).toBe('Stable');
  });

  it('only reports a failing change when rollback is off', () => {
    const off = { upgrade: { snapshotBeforeChange: false, rollback: false, timeoutSeconds: 300 } };
    const u = run({ job: job(2, stable1, { ...v2spec, ...off }) }).status;
    expect(u.state).toBe('Upgrading');
    const d = run({ job: job(2, u, { ...v2spec, ...off }), rollout: crashing, now: at(400) });
    expect(d).toMatchObject({ apply: 'spec', stopWorkers: false, status: { state: 'Upgrading', reason: 'WorkersNotReady' } });
    expect(d.status.message).toContain('spec.upgrade.rollback is off');
  });

  it('runs the stable spec with the live parallelism during a rollback', () => {
    const j = job(2, { ...stable1, state: 'RolledBack' }, { ...v2spec, parallelism: 3 });
    expect(stableSpecOf(j).parallelism).toBe(3);
    expect(stableSpecOf(j).model).toBeUndefined();
  });
});
