/**
 * The state operations of one ProcessingJob, decided at each reconcile from
 * what the caches say: a pending spec.restore (workers stopped, then a
 * restore task), the upgrade state machine (snapshot before a change,
 * rollback to the last stable spec), scheduled snapshots and their retention.
 * `plan` only reads; `act` (after the children are applied) creates the
 * snapshots and task Jobs the plan asks for and retires old snapshots.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import {
  LABEL_JOB,
  LABEL_SNAPSHOT_ORIGIN,
  type Condition,
  type ProcessingJob,
  type ProcessingJobSnapshot,
  type ProcessingJobSpec,
  type ProcessingJobStatus,
} from '../api/types.js';
import { isConflict } from '../kube/client.js';
import type { EventType } from '../kube/events.js';
import { renderTask, taskName, taskOutcome, type TaskOp } from '../render/tasks.js';
import { decideUpgrade, stableSpecOf, type UpgradeDecision, type UpgradeInput } from '../upgrade/rollback.js';
import { ownerOf, taskImage } from '../snapshot/reconcile.js';
import { bounded } from './status.js';

export interface StateOpsView {
  snapshot(namespace: string, name: string): ProcessingJobSnapshot | undefined;
  snapshotsOf(namespace: string, job: string): ProcessingJobSnapshot[];
  task(namespace: string, name: string): V1Job | undefined;
}

export interface StateOpsWriter {
  apply(object: V1Job): Promise<V1Job>;
  taskPods(job: V1Job): Promise<V1Pod[]>;
  createSnapshot(snap: Omit<ProcessingJobSnapshot, 'apiVersion' | 'kind'>): Promise<unknown>;
  deleteSnapshot(namespace: string, name: string): Promise<void>;
}

export interface StatePlan {
  /** The spec to render the children from (the stable one during a rollback). */
  spec: ProcessingJobSpec;
  /** Render the workers at 0 replicas: their state is being rewritten. */
  stopWorkers: boolean;
  /** Fields of status this plan owns. */
  status: Pick<ProcessingJobStatus, 'restore' | 'upgrade' | 'lastSnapshot' | 'lastSnapshotTime'>;
  /** An extra condition (RolledBack) when spec.upgrade.rollback is on. */
  condition?: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  events: { type: EventType; reason: string; message: string }[];
  requeueAfterMs?: number;
  act: () => Promise<void>;
}

type RestoreStatus = NonNullable<ProcessingJobStatus['restore']>;

const stamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const live = (pods: readonly V1Pod[]): V1Pod[] => pods.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');

export interface PlanInput {
  job: ProcessingJob;
  pods: readonly V1Pod[];
  rollout: UpgradeInput['rollout'];
  progress?: UpgradeInput['progress'];
  workerImage: string;
  now: Date;
}

interface RestoreRequest {
  id: string;
  previous?: RestoreStatus;
  op: Extract<TaskOp, { op: 'restore' }>;
  source?: { name: string; snap?: ProcessingJobSnapshot };
}

interface RestoreStep {
  status: RestoreStatus;
  events: StatePlan['events'];
  requeueAfterMs?: number;
}

const ended = (r: { phase?: string }): boolean => r.phase === 'Completed' || r.phase === 'Failed';

/** Why a restore from a snapshot cannot run yet (pending) or ever (fail); undefined: the snapshot is usable. */
function sourceProblem(job: ProcessingJob, source: { name: string; snap?: ProcessingJobSnapshot }): { fail?: string; pending?: string } | undefined {
  const snap = source.snap;
  if (!snap) return { fail: `there is no ProcessingJobSnapshot '${source.name}' in namespace ${job.metadata.namespace}` };
  const phase = snap.status?.phase;
  if (phase === 'Failed') return { fail: `snapshot ${source.name} Failed: ${snap.status?.message ?? ''}` };
  if (phase !== 'Completed') return { pending: `waiting for snapshot ${source.name} to complete (${phase ?? 'not started'})` };
  if (snap.status?.jobType && snap.status.jobType !== job.spec.type) return { fail: `snapshot ${source.name} is of a '${snap.status.jobType}' job; this job is '${job.spec.type}'` };
  return undefined;
}

/** The status and event of a restore whose task succeeded. */
function restoreCompleted(r: RestoreRequest, base: { id: string; startedAt: string }, result: Record<string, unknown>, now: Date): RestoreStep {
  const offsets = Array.isArray(result.offsets) ? (result.offsets as number[]) : undefined;
  const message = `checkpoints rewritten${r.source ? ` from snapshot ${r.source.name}` : ''}${r.op.offsets ? ` at offsets ${r.op.offsets}` : ''}, state ${r.op.state === 'drop' ? 'dropped' : 'kept'}; workers started again`;
  return {
    status: { ...base, phase: 'Completed', message, completedAt: String(result.completedAt ?? stamp(now)), ...(offsets ? { offsets } : {}) },
    events: [{ type: 'Normal', reason: 'RestoreCompleted', message: `Restore ${r.id}: ${message}; next offsets ${(offsets ?? []).join(',')}` }],
  };
}

/** The RolledBack condition of a job with spec.upgrade.rollback. */
function rolledBackCondition(d: UpgradeDecision): NonNullable<StatePlan['condition']> {
  const back = d.status.state === 'RolledBack' || d.status.state === 'RollingBack';
  return back
    ? { type: 'RolledBack', status: 'True', reason: d.status.reason ?? 'RolledBack', message: bounded(d.status.message ?? 'the last change was rolled back') }
    : { type: 'RolledBack', status: 'False', reason: 'NoRollback', message: `generation ${d.status.stableGeneration ?? '?'} is the last stable spec` };
}

export class StateOps {
  constructor(
    private readonly view: StateOpsView,
    private readonly writer: StateOpsWriter,
  ) {}

  async plan(input: PlanInput): Promise<StatePlan> {
    const { job } = input;
    const acts: (() => Promise<void>)[] = [];
    const plan: StatePlan = { spec: job.spec, stopWorkers: false, status: {}, events: [], act: async () => { for (const a of acts) await a(); } };
    // 1. A one-shot restore asked for in the spec; 2. upgrades: snapshot before a change, rollback to the last stable spec.
    const waits = [await this.planRestore(input, plan, acts), await this.planUpgrade(input, plan, acts)];
    // 3. Scheduled snapshots, retention, and the last one taken.
    waits.push(this.schedule(input, plan, acts));
    const asked = waits.filter((w): w is number => w !== undefined && w > 0);
    if (asked.length) plan.requeueAfterMs = Math.min(...asked);
    return plan;
  }

  /** spec.restore, unless this very restore already ended; returns when to look again. */
  private async planRestore(input: PlanInput, plan: StatePlan, acts: (() => Promise<void>)[]): Promise<number | undefined> {
    const { job } = input;
    const want = job.spec.restore;
    const had = job.status?.restore;
    if (!want || (had?.id === want.id && ended(had))) return undefined;
    const source = want.fromSnapshot ? this.view.snapshot(job.metadata.namespace, want.fromSnapshot) : undefined;
    const r = await this.restore(input, {
      id: want.id,
      previous: had?.id === want.id ? had : undefined,
      op: {
        op: 'restore',
        id: want.id,
        ...(want.fromSnapshot ? { from: { snapshot: want.fromSnapshot, job: source?.spec.jobName } } : {}),
        ...(want.offsets ? { offsets: want.offsets.reset === 'timestamp' ? want.offsets.timestamp : want.offsets.reset } : {}),
        state: want.state ?? 'keep',
      },
      source: want.fromSnapshot ? { name: want.fromSnapshot, snap: source } : undefined,
    }, acts);
    plan.status.restore = r.status;
    plan.stopWorkers = !ended(r.status);
    plan.events.push(...r.events);
    return r.requeueAfterMs;
  }

  /** spec.upgrade's state machine; returns when to look again. */
  private async planUpgrade(input: PlanInput, plan: StatePlan, acts: (() => Promise<void>)[]): Promise<number | undefined> {
    const { job } = input;
    if (!job.spec.upgrade.snapshotBeforeChange && !job.spec.upgrade.rollback) return undefined;
    const d = await this.upgrade(input, acts);
    plan.status.upgrade = d.status;
    if (d.apply === 'stable') plan.spec = stableSpecOf(job);
    if (d.stopWorkers) plan.stopWorkers = true;
    if (d.event) plan.events.push(d.event);
    if (job.spec.upgrade.rollback) plan.condition = rolledBackCondition(d);
    return d.requeueAfterMs;
  }

  /** Runs (or follows) a restore task once the job's workers are gone. */
  private async restore(input: PlanInput, r: RestoreRequest, acts: (() => Promise<void>)[]): Promise<RestoreStep> {
    const { job, now } = input;
    const base = { id: r.id, startedAt: r.previous?.startedAt ?? stamp(now) };
    const fail = (message: string): RestoreStep => ({
      status: { ...base, phase: 'Failed', message, completedAt: stamp(now) },
      events: [{ type: 'Warning', reason: 'RestoreFailed', message: `Restore ${r.id} failed: ${message}` }],
    });
    const waiting = r.source ? sourceProblem(job, r.source) : undefined;
    if (waiting?.fail) return fail(waiting.fail);
    if (waiting?.pending) return { status: { ...base, phase: 'Pending', message: waiting.pending }, events: [], requeueAfterMs: 5_000 };
    const running = live(input.pods);
    if (running.length > 0) {
      return { status: { ...base, phase: 'Pending', message: `stopping ${running.length} worker(s) (final checkpoints) before rewriting the state` }, events: [], requeueAfterMs: 2_000 };
    }
    const name = taskName(job.metadata.name, r.op);
    const task = this.view.task(job.metadata.namespace, name);
    if (!task) {
      acts.push(async () => void (await this.writer.apply(renderTask(job, r.op, { image: taskImage(job, input.workerImage), owner: ownerOf(job, false) }))));
      const what = r.source ? `snapshot ${r.source.name}` : `offsets ${r.op.offsets}`;
      return {
        status: { ...base, phase: 'Running', message: `rewriting the checkpoints from ${what} (state: ${r.op.state}; task ${name})` },
        events: [{ type: 'Normal', reason: 'RestoreStarted', message: `Workers stopped; restoring ${r.id} from ${what}, state ${r.op.state}` }],
        requeueAfterMs: 5_000,
      };
    }
    const outcome = taskOutcome(task, await this.writer.taskPods(task));
    if (outcome.state === 'running') return { status: { ...base, phase: 'Running', message: outcome.detail }, events: [], requeueAfterMs: 5_000 };
    if (outcome.state === 'failed') return fail(`${outcome.reason}: ${outcome.message}`);
    return restoreCompleted(r, base, outcome.result, now);
  }

  private async upgrade(input: PlanInput, acts: (() => Promise<void>)[]): Promise<UpgradeDecision> {
    const { job } = input;
    const ns = job.metadata.namespace;
    const s = job.status?.upgrade;
    const snapshot = s?.snapshot ? this.view.snapshot(ns, s.snapshot) : undefined;
    let restore: UpgradeInput['restore'];
    if (s?.state === 'RollingBack' && s.snapshot) {
      const r = await this.restore(input, { id: `rollback-${s.changeGeneration}`, op: { op: 'restore', id: `rollback-${s.changeGeneration}`, from: { snapshot: s.snapshot }, state: 'keep' }, source: { name: s.snapshot, snap: snapshot } }, acts);
      restore = { phase: r.status.phase === 'Completed' ? 'Completed' : r.status.phase === 'Failed' ? 'Failed' : 'Running', message: r.status.message };
    }
    const d = decideUpgrade({ job, rollout: input.rollout, progress: input.progress, snapshot: snapshot ? { phase: snapshot.status?.phase, message: snapshot.status?.message } : undefined, restore, now: input.now });
    if (d.takeSnapshot && !this.view.snapshot(ns, d.takeSnapshot)) {
      const name = d.takeSnapshot;
      acts.push(() => this.createSnapshot(job, name, 'upgrade'));
    }
    return d;
  }

  private async createSnapshot(job: ProcessingJob, name: string, origin: 'scheduled' | 'upgrade'): Promise<void> {
    try {
      await this.writer.createSnapshot({
        metadata: {
          name,
          namespace: job.metadata.namespace,
          labels: { [LABEL_JOB]: job.metadata.name, [LABEL_SNAPSHOT_ORIGIN]: origin },
          ownerReferences: [ownerOf(job, false)],
        },
        spec: { jobName: job.metadata.name, retainFiles: false, timeoutSeconds: 300 },
      });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  /** Scheduled snapshots (spec.snapshots), retention of those the operator took, and status.lastSnapshot. */
  private schedule(input: PlanInput, plan: StatePlan, acts: (() => Promise<void>)[]): number | undefined {
    const { job, now } = input;
    const ns = job.metadata.namespace;
    const mine = this.view.snapshotsOf(ns, job.metadata.name);
    const created = (s: ProcessingJobSnapshot): number => Date.parse(String(s.metadata.creationTimestamp ?? '')) || now.getTime();
    const done = mine.filter((s) => s.status?.phase === 'Completed').sort((a, b) => String(b.status?.takenAt).localeCompare(String(a.status?.takenAt)));
    if (done[0]) {
      plan.status.lastSnapshot = done[0].metadata.name;
      plan.status.lastSnapshotTime = done[0].status?.takenAt;
    }
    const byOperator = mine.filter((s) => ['scheduled', 'upgrade'].includes(s.metadata.labels?.[LABEL_SNAPSHOT_ORIGIN] ?? '')).sort((a, b) => created(b) - created(a));
    this.retire(job, byOperator, plan, acts);
    const every = job.spec.snapshots?.intervalMinutes;
    if (!every || plan.stopWorkers || job.spec.suspend) return undefined;
    const last = byOperator.find((s) => s.metadata.labels?.[LABEL_SNAPSHOT_ORIGIN] === 'scheduled');
    const dueIn = last ? created(last) + every * 60_000 - now.getTime() : 0;
    if (dueIn > 0) return dueIn + 500;
    const name = `${job.metadata.name.slice(0, 45)}-${stamp(now).replace(/[-:]/g, '').replace('T', '-').replace('Z', '').toLowerCase()}`;
    if (!this.view.snapshot(ns, name)) acts.push(() => this.createSnapshot(job, name, 'scheduled'));
    return every * 60_000;
  }

  /** Deletes the operator's snapshots beyond spec.snapshots.keep (newest first), never the upgrade's own nor one still running. */
  private retire(job: ProcessingJob, byOperator: readonly ProcessingJobSnapshot[], plan: StatePlan, acts: (() => Promise<void>)[]): void {
    const keep = job.spec.snapshots?.keep ?? 3;
    const protectedName = plan.status.upgrade?.snapshot ?? job.status?.upgrade?.snapshot;
    for (const old of byOperator.slice(keep)) {
      const phase = old.status?.phase;
      if (old.metadata.name === protectedName || old.metadata.deletionTimestamp || (phase !== 'Completed' && phase !== 'Failed')) continue;
      acts.push(() => this.writer.deleteSnapshot(job.metadata.namespace, old.metadata.name));
      plan.events.push({ type: 'Normal', reason: 'SnapshotRetired', message: `Deleting snapshot ${old.metadata.name}: spec.snapshots.keep is ${keep}` });
    }
  }
}
