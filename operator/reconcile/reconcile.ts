import type { KubernetesObject, V1Deployment, V2HorizontalPodAutoscaler, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Progress } from '../observe/lag.js';
import type { WorkerStall } from '../observe/worker-health.js';
import type { Logger } from 'pino';
import {
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_PAUSED,
  ANNOTATION_RESTART_NONCE,
  type ProcessingJob,
  type ProcessingJobStatus,
} from '../api/types.js';
import { describeError, statusCode } from '../kube/client.js';
import type { ReconcileResult } from '../controller/loop.js';
import type { EventType } from '../kube/events.js';
import { childNames } from '../render/paths.js';
import { hashOf, render, selectorString, type Children } from '../render/render.js';
import { consumerGroup } from '../render/worker-config.js';
import { conditionOf, deploymentProgress, deriveStatus, mergeConditions, nextPendingCheck, podProblem, statusChanged, type PodProblem, type Validation } from './status.js';
import type { StateOps, StatePlan } from './stateops.js';
import type { Observation } from '../autoscaling/decide.js';
import { planAutoscaling, type AutoscalePlan } from './autoscale.js';
import { validate, type PartitionLookup, type ValidationReads } from './validate.js';

/** What a reconcile reads from the informer caches. */
export interface ClusterView {
  job(namespace: string, name: string): ProcessingJob | undefined;
  deployment(namespace: string, name: string): V1Deployment | undefined;
  pods(namespace: string, job: string): V1Pod[];
  /** A child ConfigMap, PVC or Service as cached. */
  child(kind: 'ConfigMap' | 'PersistentVolumeClaim' | 'Service', namespace: string, name: string): KubernetesObject | undefined;
  /** Every job this operator watches (for checks across jobs: a shared consumer group). */
  jobs?(): ProcessingJob[];
}

/** What a reconcile writes. */
export interface ClusterWriter extends ValidationReads {
  /** Server-side apply; `dryRun` validates and admits without storing. */
  apply<T extends KubernetesObject>(object: T, options?: { dryRun?: boolean }): Promise<T>;
  patchJobStatus(job: ProcessingJob, status: ProcessingJobStatus): Promise<void>;
}

export interface Recorder {
  record(job: ProcessingJob, type: EventType, reason: string, message: string): void;
}

export interface ReconcilerDeps {
  view: ClusterView;
  writer: ClusterWriter;
  events: Recorder;
  partitions: PartitionLookup;
  workerImage: string;
  log: Logger;
  /** Snapshots, restores and upgrades (stateops.ts); absent: none. */
  stateOps?: StateOps;
  /** Consumer lag and last checkpoint as last read from Kafka (lag.ts); absent: not reported. */
  progress?: (job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>) => Progress;
  /** A job is gone: stop what runs in the background for it (the lag probe). */
  forget?: (jobKey: string) => void;
  /** Look at another job soon (one whose consumer group this job shares, or shared). */
  requeue?: (jobKey: string) => void;
  /** What the worker pods say they wait on (worker-health.ts); absent: not asked. */
  stalls?: (job: ProcessingJob, pods: readonly V1Pod[]) => WorkerStall[];
  /** What the autoscaler sees of a job (observe/workload.ts); absent: spec.autoscaling is not acted on. */
  workload?: Workload;
  /** Told after every autoscaling plan (the operator's gauges); undefined when the job is not autoscaled. */
  onAutoscaling?: (job: ProcessingJob, plan: AutoscalePlan | undefined) => void;
  now?: () => Date;
}

/** The observations the autoscaler decides on, and the other autoscalers in sight. */
export interface Workload {
  window(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): readonly Observation[];
  autoscalers(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): readonly V2HorizontalPodAutoscaler[];
  forget(jobKey: string): void;
}

/** Jobs sharing a consumer group on the same brokers split the partitions: each sees only part of the events. */
const groupKeyOf = (job: ProcessingJob): string =>
  JSON.stringify([consumerGroup(job), [...job.spec.kafka.bootstrapServers].sort()]);

/** Re-check a spec that failed an operator-side check (a Secret may appear, a topic may grow). */
const RECHECK_MS = 30_000;
/** A missing StorageClass is one cheap GET, and a user who creates it waits on the job: look sooner. */
const STORAGE_CLASS_RECHECK_MS = 10_000;
/** A spec the API server refused: no hot loop, but try again now and then. */
const REJECTED_RECHECK_MS = 5 * 60_000;

/**
 * What says "someone changed this child": a Deployment's generation (its status
 * changes all the time, its spec does not), any other child's resourceVersion.
 */
const versionOf = (kind: string | undefined, o: KubernetesObject): string | undefined =>
  kind === 'Deployment' ? `g${o.metadata?.generation ?? ''}` : o.metadata?.resourceVersion;

/** A merge patch leaves a field it does not mention: status.autoscaling of autoscaling turned off is removed by name. */
const patchBody = (before: ProcessingJobStatus | undefined, after: ProcessingJobStatus): ProcessingJobStatus =>
  before?.autoscaling && !after.autoscaling ? { ...after, autoscaling: null as unknown as undefined } : after;

export const isPaused = (job: ProcessingJob): boolean => job.metadata.annotations?.[ANNOTATION_PAUSED] === 'true';

/**
 * Level-triggered reconcile of one ProcessingJob: read the job and what the
 * cluster reports, check what only the operator can check, render the children,
 * server-side apply them, derive the status and write it only if it changed.
 * Children are removed by the garbage collector through owner references: no
 * finalizer, so nothing can block a deletion.
 */
/** The children of the spec the plan runs (a rollback's, or the job's own), stopped while a restore runs. */
function renderPlanned(job: ProcessingJob, ctx: Parameters<typeof render>[1], plan: StatePlan | undefined): Children {
  const children = render(plan ? { ...job, spec: plan.spec } : job, ctx);
  if (plan?.stopWorkers) {
    children.replicas = 0;
    children.deployment.spec!.replicas = 0;
  }
  return children;
}

/** The earliest of the delays (undefined: none asked). */
function soonest(...waits: Array<number | undefined>): ReconcileResult {
  const requeueAfterMs = Math.min(...waits.map((w) => w ?? Infinity));
  return Number.isFinite(requeueAfterMs) ? { requeueAfterMs } : {};
}

export class Reconciler {
  private readonly now: () => Date;
  /**
   * What this replica last applied to each child, and the resourceVersion the
   * server answered: while the cached child still has that version and the
   * rendered child has not changed, applying again would change nothing.
   */
  private readonly applied = new Map<string, { hash: string; version?: string }>();
  /** The consumer group each job had at its last reconcile, so the others can be told when it goes. */
  private readonly groups = new Map<string, string>();
  /** When this replica last wrote a job's autoscaling figures (they are refreshed at most every FIGURES_REFRESH_MS). */
  private readonly figuresWritten = new Map<string, number>();
  /** The worker Deployment as this replica last applied it: newer than the cache until the watch catches up. */
  private readonly appliedDeployments = new Map<string, V1Deployment>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const job = this.deps.view.job(namespace, name);
    if (!job || job.metadata.deletionTimestamp) {
      this.gone(`${namespace}/${name}`);
      return {};
    }
    if (isPaused(job)) return this.paused(job);
    const pvc = this.deps.view.child('PersistentVolumeClaim', namespace, childNames(name).pvc);
    const checked = await validate(job, this.deps.writer, this.deps.partitions, pvc);
    if (checked.validation.state === 'invalid') {
      await this.writeStatus(job, checked.validation, undefined, this.deps.view.deployment(namespace, childNames(name).deployment));
      return { requeueAfterMs: checked.validation.reason === 'StorageClassNotFound' ? STORAGE_CLASS_RECHECK_MS : RECHECK_MS };
    }
    const shared = this.sharedGroup(job);
    const progress = this.deps.progress?.(job, checked.secrets);
    const { children, plan, autoscaling } = await this.prepare(job, checked, progress);
    const applied = await this.applyOrRefuse(job, children, plan, autoscaling);
    if ('refused' in applied) return applied.refused;
    for (const e of plan?.events ?? []) this.deps.events.record(job, e.type, e.reason, e.message);
    const pods = await this.writeStatus(job, checked.validation, children, applied.deployment, false, progress, plan, shared, autoscaling);
    const pending = nextPendingCheck(pods, job.spec.podPendingTimeoutSeconds, this.now());
    return soonest(pending !== undefined ? pending * 1000 + 500 : undefined, checked.validation.state === 'unknown' ? RECHECK_MS : undefined, plan?.requeueAfterMs);
  }

  /** A job is gone: forget what was applied for it, stop its probes, tell the jobs that shared its consumer group. */
  private gone(jobKey: string): void {
    for (const key of this.applied.keys()) if (key.startsWith(`${jobKey}/`)) this.applied.delete(key);
    this.deps.forget?.(jobKey);
    this.deps.workload?.forget(jobKey);
    this.figuresWritten.delete(jobKey);
    this.appliedDeployments.delete(jobKey);
    const group = this.groups.get(jobKey);
    this.groups.delete(jobKey);
    // The jobs that shared its group may be alone in it now.
    if (group) for (const other of this.sharers(jobKey, group)) this.deps.requeue?.(other);
  }

  /** Applies the children and runs the plan's actions; a child the API server refuses (400, 422) is the spec's problem, said in ConfigValid. */
  private async applyOrRefuse(
    job: ProcessingJob,
    children: Children,
    plan: StatePlan | undefined,
    autoscaling: AutoscalePlan | undefined,
  ): Promise<{ deployment: V1Deployment } | { refused: ReconcileResult }> {
    try {
      const deployment = await this.applyChildren(job, children, plan?.stopWorkers, autoscaling);
      await plan?.act();
      return { deployment };
    } catch (err) {
      const code = statusCode(err);
      if (code === 400 || code === 422) {
        const message = `the API server refused a child of this job: ${describeError(err)}`;
        const current = this.deps.view.deployment(job.metadata.namespace, children.deployment.metadata!.name!);
        await this.writeStatus(job, { state: 'invalid', reason: 'ChildRejected', message }, children, current);
        return { refused: { requeueAfterMs: REJECTED_RECHECK_MS } };
      }
      this.deps.events.record(job, 'Warning', 'ApplyFailed', `could not apply the children: ${describeError(err)}`);
      throw err;
    }
  }

  /** The children to apply, with what the autoscaler and the state operations ask of them. */
  private async prepare(
    job: ProcessingJob,
    checked: Awaited<ReturnType<typeof validate>>,
    progress: Progress | undefined,
  ): Promise<{ children: Children; plan?: StatePlan; autoscaling?: AutoscalePlan }> {
    let autoscaling = this.planAutoscaling(job, checked.secrets, checked.partitions);
    const ctx = { workerImage: this.deps.workerImage, kafkaClientCertificate: checked.kafkaClientCertificate, replicas: autoscaling?.replicas };
    const plan = await this.planStateOps(job, ctx, progress);
    const children = renderPlanned(job, ctx, plan);
    // The workers are stopped while their state is restored: nothing to size.
    if (plan?.stopWorkers) autoscaling = this.planAutoscaling(job, checked.secrets, checked.partitions, 'the workers are stopped while their state is restored');
    return { children, plan, autoscaling };
  }

  /** The autoscaler's plan for this reconcile, or undefined when the job is not autoscaled (or nothing observes it). */
  private planAutoscaling(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>, partitions: number | undefined, stopped?: string): AutoscalePlan | undefined {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    const workload = this.deps.workload;
    if (!workload || !job.spec.autoscaling?.enabled) {
      workload?.forget(key);
      this.deps.onAutoscaling?.(job, undefined);
      return undefined;
    }
    const now = this.now();
    const writtenAt = this.figuresWritten.get(key);
    const plan = planAutoscaling({
      job,
      deployment: this.freshestDeployment(job, key),
      observations: job.spec.suspend ? [] : workload.window(job, secrets),
      partitions,
      autoscalers: workload.autoscalers(job, secrets),
      now,
      figuresAgeMs: writtenAt === undefined ? undefined : now.getTime() - writtenAt,
      stopped,
    });
    this.deps.onAutoscaling?.(job, plan);
    if (plan) this.deps.log.debug({ job: key, action: plan.decision.action, desired: plan.decision.desired, signals: plan.decision.signals, reason: plan.decision.reason }, 'autoscaling decision');
    return plan;
  }

  /** The cache may not have seen this replica's last scale yet: deciding from it would undo that scale. */
  private freshestDeployment(job: ProcessingJob, key: string): V1Deployment | undefined {
    const cached = this.deps.view.deployment(job.metadata.namespace, childNames(job.metadata.name).deployment);
    const applied = this.appliedDeployments.get(key);
    if (!applied) return cached;
    return !cached || (applied.metadata?.generation ?? 0) > (cached.metadata?.generation ?? 0) ? applied : cached;
  }

  /** What the state operations need: the rollout of the spec as written (is it what runs, and Ready?). */
  private async planStateOps(job: ProcessingJob, ctx: Parameters<typeof render>[1], progress: Progress | undefined): Promise<StatePlan | undefined> {
    if (!this.deps.stateOps) return undefined;
    const ns = job.metadata.namespace;
    const now = this.now();
    const wanted = render(job, ctx);
    const current = this.deps.view.deployment(ns, childNames(job.metadata.name).deployment);
    const pods = this.deps.view.pods(ns, job.metadata.name);
    const template = current?.spec?.template;
    const runsWanted =
      template?.metadata?.annotations?.[ANNOTATION_CONFIG_HASH] === wanted.configHash && template?.spec?.containers?.[0]?.image === wanted.image;
    const dp = deploymentProgress(current, wanted.replicas);
    return this.deps.stateOps.plan({
      job,
      pods,
      rollout: { settled: runsWanted && dp.settled, problem: podProblem(pods, job.spec.podPendingTimeoutSeconds, now) ?? dp.failure },
      progress,
      workerImage: this.deps.workerImage,
      now,
    });
  }

  private async paused(job: ProcessingJob): Promise<ReconcileResult> {
    if (job.status?.phase !== 'Paused') {
      this.deps.events.record(job, 'Normal', 'ReconcilePaused', `reconciliation paused by annotation ${ANNOTATION_PAUSED}=true: spec changes are not applied`);
    }
    const validation: Validation = { state: 'unknown', reason: 'Paused', message: 'not checked while reconciliation is paused' };
    const name = job.metadata.name;
    await this.writeStatus(job, validation, undefined, this.deps.view.deployment(job.metadata.namespace, childNames(name).deployment), true);
    return {};
  }

  /** The other jobs (keys) with this consumer group on the same brokers. */
  private sharers(jobKey: string, group: string): string[] {
    return (this.deps.view.jobs?.() ?? [])
      .filter((j) => !j.metadata.deletionTimestamp && `${j.metadata.namespace}/${j.metadata.name}` !== jobKey && groupKeyOf(j) === group)
      .map((j) => `${j.metadata.namespace}/${j.metadata.name}`)
      .sort();
  }

  /** A warning when another job uses the same consumer group: both keep running, both are told. */
  private sharedGroup(job: ProcessingJob): PodProblem | undefined {
    const jobKey = `${job.metadata.namespace}/${job.metadata.name}`;
    const group = groupKeyOf(job);
    const before = this.groups.get(jobKey);
    this.groups.set(jobKey, group);
    const others = this.sharers(jobKey, group);
    // The others' status must say so too (or stop saying so, when this job left their group).
    for (const other of others) if (before !== group) this.deps.requeue?.(other);
    if (before && before !== group) for (const other of this.sharers(jobKey, before)) this.deps.requeue?.(other);
    if (others.length === 0) return undefined;
    const name = consumerGroup(job);
    return {
      reason: 'ConsumerGroupShared',
      message:
        `consumer group '${name}' (spec.kafka.consumerGroup) is also used by ProcessingJob ${others.join(', ')}: the jobs split the ` +
        `topic's partitions, so each sees only part of the events; give each job its own spec.kafka.consumerGroup`,
    };
  }

  /** Applies ConfigMap, PVC, Service, then Deployment (so the pods find what they mount); returns the Deployment. */
  private async applyChildren(job: ProcessingJob, children: Children, stopped = false, autoscaling?: AutoscalePlan): Promise<V1Deployment> {
    const ns = job.metadata.namespace;
    const before = this.deps.view.deployment(ns, children.deployment.metadata!.name!);
    const view = this.deps.view;
    const pending = [
      this.toApply(job, children.configMap, view.child('ConfigMap', ns, children.configMap.metadata!.name!)),
      this.toApply(job, children.pvc, view.child('PersistentVolumeClaim', ns, children.pvc.metadata!.name!)),
      this.toApply(job, children.service, view.child('Service', ns, children.service.metadata!.name!)),
    ].filter((o) => o !== undefined);
    const deployment = this.toApply(job, children.deployment, before);
    const all = deployment ? [...pending, deployment] : pending;
    if (all.length > 1) await Promise.all(all.map((o) => this.deps.writer.apply(o, { dryRun: true })));
    // Independent of each other: in parallel; the Deployment last, so its pods find what they mount.
    await Promise.all(pending.map((o) => this.applyNow(job, o)));
    const appliedDeployment = deployment ? await this.applyNow(job, deployment) : undefined;
    if (appliedDeployment) this.appliedDeployments.set(`${ns}/${job.metadata.name}`, appliedDeployment);
    const after = appliedDeployment ?? before!;
    this.announce(job, before, children, stopped, autoscaling?.scaled === true);
    if (autoscaling?.event) this.deps.events.record(job, autoscaling.event.type, autoscaling.event.reason, autoscaling.event.message);
    return after;
  }

  /** The object, unless this replica applied the same one and nobody changed it since. */
  private toApply<T extends KubernetesObject>(job: ProcessingJob, object: T, cached: KubernetesObject | undefined): T | undefined {
    const last = this.applied.get(this.appliedKey(job, object));
    if (cached && last && last.hash === hashOf(JSON.stringify(object)) && last.version === versionOf(object.kind, cached)) return undefined;
    return object;
  }

  private appliedKey(job: ProcessingJob, object: KubernetesObject): string {
    return `${job.metadata.namespace}/${job.metadata.name}/${object.kind}/${object.metadata!.name}`;
  }

  /** Server-side apply; returns the applied object. */
  private async applyNow<T extends KubernetesObject>(job: ProcessingJob, object: T): Promise<T> {
    const result = await this.deps.writer.apply(object);
    this.applied.set(this.appliedKey(job, object), { hash: hashOf(JSON.stringify(object)), version: versionOf(object.kind, result) });
    return result;
  }

  /** Events for what changed, from the Deployment as it was before the apply. */
  private announce(job: ProcessingJob, before: V1Deployment | undefined, children: Children, stopped: boolean, autoscaled: boolean): void {
    const rec = (reason: string, message: string): void => this.deps.events.record(job, 'Normal', reason, message);
    const name = children.deployment.metadata!.name!;
    if (!before) {
      rec('Created', `Created worker Deployment ${name} with ${children.replicas} replicas, ConfigMap, checkpoint PVC and metrics Service`);
      return;
    }
    // A scale the autoscaler made has its own Event (Autoscaled), with the figures behind it.
    if (!autoscaled) this.announceScale(job, before.spec?.replicas ?? 0, children.replicas, name, stopped, rec);
    const oldAnnotations = before.spec?.template?.metadata?.annotations ?? {};
    const oldHash = oldAnnotations[ANNOTATION_CONFIG_HASH];
    if (oldHash && oldHash !== children.configHash) rec('ConfigChanged', `Rolling the workers: worker configuration changed (hash ${oldHash} -> ${children.configHash})`);
    const nonce = job.spec.restartNonce;
    if (nonce && nonce !== oldAnnotations[ANNOTATION_RESTART_NONCE]) rec('Restarting', `Rolling the workers: spec.restartNonce changed to '${nonce}'`);
  }

  private announceScale(job: ProcessingJob, from: number, to: number, name: string, stopped: boolean, rec: (reason: string, message: string) => void): void {
    if (from === to) return;
    if (to === 0 && stopped) rec('StoppedForRestore', `Scaled worker Deployment ${name} from ${from} to 0 while its state is restored`);
    else if (to === 0 && job.spec.suspend) rec('Suspended', `Suspended: scaled worker Deployment ${name} from ${from} to 0; checkpoints kept`);
    else if (from === 0 && job.status?.phase === 'Suspended') rec('Resumed', `Resumed: scaled worker Deployment ${name} from 0 to ${to}`);
    else rec('Scaled', `Scaled worker Deployment ${name} from ${from} to ${to}`);
  }

  private async writeStatus(
    job: ProcessingJob,
    validation: Validation,
    children: Children | undefined,
    deployment: V1Deployment | undefined,
    paused = false,
    progress?: Progress,
    plan?: StatePlan,
    warning?: PodProblem,
    autoscaling?: AutoscalePlan,
  ): Promise<V1Pod[]> {
    const pods = this.deps.view.pods(job.metadata.namespace, job.metadata.name);
    const status = deriveStatus({
      job,
      paused,
      validation,
      deployment,
      pods,
      desiredReplicas: children?.replicas ?? deployment?.spec?.replicas ?? 0,
      selector: selectorString(job.metadata.name),
      configHash: children?.configHash,
      workerImage: children?.image,
      progress,
      warning,
      stalls: this.deps.stalls?.(job, pods),
      autoscaling: autoscaling && { status: autoscaling.status, condition: autoscaling.condition },
      now: this.now(),
    });
    if (plan) this.applyPlanStatus(job, status, plan);
    if (!statusChanged(job.status, status)) return pods;
    this.announceTransitions(job, status);
    await this.deps.writer.patchJobStatus(job, patchBody(job.status, status));
    if (autoscaling?.figuresRefreshed) this.figuresWritten.set(`${job.metadata.namespace}/${job.metadata.name}`, this.now().getTime());
    return pods;
  }

  /** The state operations' part of the status: their fields, and their condition merged beside the others. */
  private applyPlanStatus(job: ProcessingJob, status: ProcessingJobStatus, plan: StatePlan): void {
    for (const [k, v] of Object.entries(plan.status)) if (v !== undefined) (status as Record<string, unknown>)[k] = v;
    if (!plan.condition) return;
    const previous = job.status?.conditions;
    status.conditions = [...(status.conditions ?? []), ...mergeConditions(previous, [plan.condition], status.observedGeneration ?? 0, this.now())];
  }

  private announceTransitions(job: ProcessingJob, next: ProcessingJobStatus): void {
    const changed = (type: 'Ready' | 'Degraded' | 'ConfigValid' | 'Autoscaling') => {
      const a = conditionOf(job.status, type);
      const b = conditionOf(next, type);
      return b && (!a || a.status !== b.status || a.reason !== b.reason) ? b : undefined;
    };
    const autoscaler = changed('Autoscaling');
    if (autoscaler?.reason === 'OtherAutoscaler') this.deps.events.record(job, 'Warning', autoscaler.reason, autoscaler.message);
    const valid = changed('ConfigValid');
    if (valid && valid.status === 'False') this.deps.events.record(job, 'Warning', valid.reason, valid.message);
    if (valid && valid.status === 'Unknown' && valid.reason === 'KafkaUnreachable') this.deps.events.record(job, 'Warning', valid.reason, valid.message);
    const degraded = changed('Degraded');
    if (degraded?.status === 'True' && valid?.reason !== degraded.reason) this.deps.events.record(job, 'Warning', degraded.reason, degraded.message);
    const ready = changed('Ready');
    if (ready?.status === 'True') this.deps.events.record(job, 'Normal', 'WorkersReady', ready.message);
  }
}
