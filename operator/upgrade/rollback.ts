/**
 * The upgrade state machine of a ProcessingJob (spec.upgrade): which spec the
 * operator applies, when it takes the snapshot before a change, and when it
 * rolls a change back to the last stable spec. A pure function of the job,
 * what its workers report and the time, so every path has a unit test.
 *
 *   Stable ──change of the workers──▶ Snapshotting ──snapshot Completed──▶ Upgrading
 *   Upgrading ──Ready and progress──▶ Stable (the change becomes the stable spec)
 *   Upgrading ──timeout, rollback on──▶ RollingBack (workers stopped, state restored) ──▶ RolledBack
 *   RolledBack ──spec changes again──▶ as from Stable
 *
 * Scaling and suspending are not changes of the workers: they never snapshot
 * or roll back, and they apply to the stable spec too.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ProcessingJob, ProcessingJobSpec, ProcessingJobStatus } from '../api/types.js';

export type UpgradeStatus = NonNullable<ProcessingJobStatus['upgrade']>;

export interface UpgradeInput {
  job: ProcessingJob;
  /** The rollout of what is applied now: every worker updated and Ready; or what keeps it from it. */
  rollout: { settled: boolean; problem?: { reason: string; message: string } };
  /** Consumer lag and the last time the committed offsets moved, as the operator last read them. */
  progress?: { consumerLag?: number; lastCheckpointTime?: string };
  /** The snapshot taken before the change (status.upgrade.snapshot), as its resource says. */
  snapshot?: { phase?: string; message?: string };
  /** The restore of that snapshot during a rollback. */
  restore?: { phase: 'Running' | 'Completed' | 'Failed'; message?: string };
  now: Date;
}

export interface UpgradeDecision {
  status: UpgradeStatus;
  /** Which spec the children are rendered from. */
  apply: 'spec' | 'stable';
  /** Workers at 0 (their state is being restored). */
  stopWorkers: boolean;
  /** Create this ProcessingJobSnapshot (origin upgrade) if it does not exist. */
  takeSnapshot?: string;
  /** Restore the state from this snapshot (once per change). */
  restoreFrom?: string;
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
  requeueAfterMs?: number;
}

/** The spec fields that do not touch the workers: changing only these is no upgrade. */
const NOT_WORKERS: readonly (keyof ProcessingJobSpec)[] = ['parallelism', 'autoscaling', 'suspend', 'snapshots', 'restore', 'upgrade', 'podPendingTimeoutSeconds'];

export function workersPart(spec: ProcessingJobSpec | Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = JSON.parse(JSON.stringify(spec)) as Record<string, unknown>;
  for (const k of NOT_WORKERS) delete copy[k];
  return copy;
}

export const changesWorkers = (a: ProcessingJobSpec | Record<string, unknown>, b: ProcessingJobSpec | Record<string, unknown>): boolean =>
  !isDeepStrictEqual(workersPart(a), workersPart(b));

/** The spec a rollback runs: the stable one, with the live scale and suspend (kubectl scale still works). */
export function stableSpecOf(job: ProcessingJob): ProcessingJobSpec {
  const stable = job.status?.upgrade?.stableSpec as unknown as ProcessingJobSpec | undefined;
  if (!stable) return job.spec;
  return { ...stable, ...Object.fromEntries(NOT_WORKERS.map((k) => [k, job.spec[k]]).filter(([, v]) => v !== undefined)) } as ProcessingJobSpec;
}

export const preChangeSnapshotName = (job: string, generation: number): string => `${job.slice(0, 40)}-pre-upgrade-${generation}`;

const stamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function stable(job: ProcessingJob, now: Date, message: string): UpgradeStatus {
  return { state: 'Stable', stableGeneration: job.metadata.generation ?? 0, stableSpec: job.spec as unknown as Record<string, unknown>, stableSince: stamp(now), message };
}

/** A spec change arrived while `s` was the last word: take the snapshot first, or roll out at once. */
function startChange(input: UpgradeInput, s: UpgradeStatus): UpgradeDecision {
  const { job, now } = input;
  const gen = job.metadata.generation ?? 0;
  const name = job.metadata.name;
  const base: UpgradeStatus = { state: s.state, stableGeneration: s.stableGeneration, stableSpec: s.stableSpec, stableSince: s.stableSince };
  if (!s.stableSpec || !changesWorkers(job.spec, s.stableSpec)) {
    return { status: stable(job, now, `generation ${gen} is stable (no change of the workers)`), apply: 'spec', stopWorkers: false };
  }
  if (job.spec.upgrade.snapshotBeforeChange) {
    const snapshot = preChangeSnapshotName(name, gen);
    return {
      status: { ...base, state: 'Snapshotting', changeGeneration: gen, snapshot, message: `taking snapshot ${snapshot} before rolling out generation ${gen}` },
      apply: 'stable',
      stopWorkers: false,
      takeSnapshot: snapshot,
      event: { type: 'Normal', reason: 'SnapshotBeforeUpgrade', message: `Taking snapshot ${snapshot} of generation ${s.stableGeneration} before rolling out generation ${gen}` },
    };
  }
  return upgrading(input, base, undefined);
}

function upgrading(input: UpgradeInput, base: UpgradeStatus, snapshot: string | undefined): UpgradeDecision {
  const gen = input.job.metadata.generation ?? 0;
  const timeout = input.job.spec.upgrade.timeoutSeconds;
  return {
    status: {
      ...base,
      state: 'Upgrading',
      changeGeneration: gen,
      changeStartedAt: stamp(input.now),
      ...(snapshot ? { snapshot } : {}),
      message: `rolling out generation ${gen}: it has ${timeout}s to become Ready and make progress`,
    },
    apply: 'spec',
    stopWorkers: false,
    requeueAfterMs: timeout * 1000 + 1000,
  };
}

/** The committed offsets moved after the change's workers were all Ready, or there is nothing to do (no lag, or no lag known). */
function progressed(input: UpgradeInput, readyAt: string): boolean {
  const p = input.progress;
  if (!p || p.consumerLag === undefined || p.consumerLag === 0) return true;
  return p.lastCheckpointTime !== undefined && Date.parse(p.lastCheckpointTime) > Date.parse(readyAt);
}

function watchUpgrade(input: UpgradeInput, s: UpgradeStatus): UpgradeDecision {
  const { job, now, rollout } = input;
  const gen = job.metadata.generation ?? 0;
  const timeoutMs = job.spec.upgrade.timeoutSeconds * 1000;
  const since = s.changeStartedAt ?? stamp(now);
  const readyAt = rollout.settled ? (s.changeReadyAt ?? stamp(now)) : undefined;
  if (readyAt && progressed(input, readyAt)) {
    return {
      status: { ...stable(job, now, `generation ${gen} is Ready and making progress: it is the stable spec now`) },
      apply: 'spec',
      stopWorkers: false,
      event: { type: 'Normal', reason: 'UpgradeStable', message: `Generation ${gen} is Ready and making progress; it is the new stable spec` },
    };
  }
  // Not Ready: the clock runs from the rollout; Ready without progress: from the moment it was Ready.
  const from = readyAt ?? since;
  const elapsed = now.getTime() - Date.parse(from);
  const watched: UpgradeStatus = readyAt ? { ...s, changeReadyAt: readyAt } : s;
  if (elapsed < timeoutMs) return { status: watched, apply: 'spec', stopWorkers: false, requeueAfterMs: Math.min(timeoutMs - elapsed + 1000, 30_000) };
  return upgradeFailing(input, watched, readyAt);
}

/** The change is past its timeout, not Ready or Ready without progress: roll back to the stable spec if there is one and rollback is on. */
function upgradeFailing(input: UpgradeInput, watched: UpgradeStatus, readyAt: string | undefined): UpgradeDecision {
  const { job, rollout } = input;
  const s = watched;
  const gen = job.metadata.generation ?? 0;
  const reason = readyAt ? 'NoProgress' : 'WorkersNotReady';
  const why = readyAt
    ? `its workers are Ready but the committed offsets have not moved since ${readyAt} (lag ${input.progress?.consumerLag ?? '?'})`
    : `its workers were not Ready within ${job.spec.upgrade.timeoutSeconds}s${rollout.problem ? ` (${rollout.problem.reason}: ${rollout.problem.message})` : ''}`;
  if (!job.spec.upgrade.rollback || !s.stableSpec) {
    const message = `generation ${gen} is failing: ${why}${job.spec.upgrade.rollback ? '; there is no stable spec to roll back to' : '; spec.upgrade.rollback is off'}`;
    return { status: { ...watched, reason, message }, apply: 'spec', stopWorkers: false, requeueAfterMs: 30_000 };
  }
  const message = `rolling generation ${gen} back to generation ${s.stableGeneration}: ${why}${s.snapshot ? `; restoring the state from snapshot ${s.snapshot}` : ''}`;
  return {
    status: { ...watched, state: 'RollingBack', reason, message },
    apply: 'stable',
    stopWorkers: Boolean(s.snapshot),
    ...(s.snapshot ? { restoreFrom: s.snapshot } : {}),
    event: { type: 'Warning', reason: 'RollingBack', message: `Rolling back: ${message}` },
  };
}

function rollingBack(input: UpgradeInput, s: UpgradeStatus): UpgradeDecision {
  const r = input.restore;
  if (s.snapshot && (!r || r.phase === 'Running')) return { status: s, apply: 'stable', stopWorkers: true, restoreFrom: s.snapshot, requeueAfterMs: 5_000 };
  const restored = s.snapshot ? (r?.phase === 'Completed' ? `state restored from snapshot ${s.snapshot}` : `the state could NOT be restored from snapshot ${s.snapshot}: ${r?.message ?? 'unknown error'}`) : 'no snapshot to restore';
  const message = `generation ${s.changeGeneration} was rolled back to generation ${s.stableGeneration} (${s.reason}): ${restored}. spec still holds generation ${s.changeGeneration}: fix it and apply again`;
  return {
    status: { ...s, state: 'RolledBack', message },
    apply: 'stable',
    stopWorkers: false,
    event: { type: 'Warning', reason: 'RolledBack', message: `Rolled back: ${message}` },
  };
}

/** Waiting for the snapshot taken before the change: then the change rolls out; a failed snapshot keeps the stable spec. */
function snapshotting(input: UpgradeInput, s: UpgradeStatus): UpgradeDecision {
  const gen = input.job.metadata.generation ?? 0;
  const phase = input.snapshot?.phase;
  if (phase === 'Completed') return upgrading(input, s, s.snapshot);
  if (phase === 'Failed') {
    const message = `snapshot ${s.snapshot} before generation ${gen} failed (${input.snapshot?.message ?? 'see the snapshot'}): generation ${s.stableGeneration} keeps running. Delete the snapshot to try again, or set spec.upgrade.snapshotBeforeChange and rollback to false to roll out without it`;
    return { status: { ...s, reason: 'SnapshotFailed', message }, apply: 'stable', stopWorkers: false, requeueAfterMs: 30_000 };
  }
  return { status: s, apply: 'stable', stopWorkers: false, takeSnapshot: s.snapshot, requeueAfterMs: 5_000 };
}

/** The first spec the operator sees: stable once its workers are Ready. */
function firstSpec(input: UpgradeInput): UpgradeDecision {
  const { job, now } = input;
  const gen = job.metadata.generation ?? 0;
  if (input.rollout.settled) return { status: stable(job, now, `generation ${gen} is Ready: it is the stable spec`), apply: 'spec', stopWorkers: false };
  return { status: { state: 'Upgrading', changeGeneration: gen, changeStartedAt: stamp(now), message: `waiting for generation ${gen} to become Ready` }, apply: 'spec', stopWorkers: false };
}

export function decideUpgrade(input: UpgradeInput): UpgradeDecision {
  const { job } = input;
  const gen = job.metadata.generation ?? 0;
  const s = job.status?.upgrade;
  if (!s?.state) return firstSpec(input);
  const changed = gen !== (s.state === 'Stable' ? s.stableGeneration : s.changeGeneration);
  switch (s.state) {
    case 'Stable':
      return changed ? startChange(input, s) : { status: s, apply: 'spec', stopWorkers: false };
    case 'Snapshotting':
      return changed ? { ...startChange(input, s), takeSnapshot: s.snapshot, status: { ...s, changeGeneration: gen } } : snapshotting(input, s);
    case 'Upgrading':
      if (changed) return upgrading(input, s, s.snapshot);
      return watchUpgrade(input, s);
    case 'RollingBack':
      return rollingBack(input, s);
    case 'RolledBack':
      if (!changed) return { status: s, apply: 'stable', stopWorkers: false };
      return startChange(input, { ...s, state: 'Stable' });
  }
}
