import { KubernetesObjectApi, type KubernetesObject, type V1Deployment, type V1Job, type V1Pod, type V1Secret, type V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { groupCommittedOffsets, topicEndOffsets, topicPartitionCount } from '../../lib/kafka/client.js';
import { LagProbe } from '../observe/lag.js';
import { WorkloadObserver } from '../observe/workload.js';
import type { AutoscalePlan } from '../reconcile/autoscale.js';
import { childNames } from '../render/paths.js';
import {
  API_VERSION,
  KIND,
  LABEL_JOB,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  MANAGER,
  PLURAL,
  SNAPSHOT_KIND,
  SNAPSHOT_PLURAL,
  WORKER_APP,
  type ProcessingJob,
  type ProcessingJobSnapshot,
  type ProcessingJobStatus,
} from '../api/types.js';
import { ANNOTATION_TASK_SNAPSHOT } from '../render/tasks.js';
import { StateOps } from '../reconcile/stateops.js';
import { SnapshotReconciler } from '../snapshot/reconcile.js';
import { WorkerHealthProbe } from '../observe/worker-health.js';
import { describeError, type Kube } from '../kube/client.js';
import { EventRecorder } from '../kube/events.js';
import { InformerSet, type WatchedKind } from '../controller/informers.js';
import type { OperatorMetrics } from '../metrics.js';
import { PartitionProbe, type PartitionCounter } from '../observe/partitions.js';
import { Reconciler, type ClusterView, type ClusterWriter } from '../reconcile/reconcile.js';
import { ControllerLoop } from '../controller/loop.js';
import { WorkQueue } from '../controller/queue.js';

export interface ControllerOptions {
  /** Namespaces to watch; [''] means all. */
  namespaces: readonly string[];
  workerImage: string;
  /** Reconciles running at once. */
  concurrency: number;
  /** Full relist of every watch (also a resync of every job). */
  relistMs: number;
  /** Identity in Events (the pod name in a cluster). */
  identity: string;
  /** Kafka topic partition counter; the real one by default. */
  partitionCounter?: PartitionCounter;
  /** How often consumer lag is read from Kafka; 0 turns it off. */
  lagCheckMs: number;
  /** How often worker pods' /status is read for stalls; 0 or absent turns it off. */
  workerHealthMs?: number;
  workerStatusUrl?: (pod: V1Pod) => string | undefined;
  /** How often an autoscaled job is observed. */
  autoscaleIntervalMs: number;
  /** Where a worker pod serves /metrics (tests); default its IP and 'metrics' port. */
  workerMetricsUrl?: (pod: V1Pod) => string | undefined;
}

const managedSelector = `${LABEL_MANAGED_BY}=${MANAGER}`;
const children: WatchedKind[] = [
  { name: 'deployments', apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', labelSelector: managedSelector },
  { name: 'pods', apiVersion: 'v1', kind: 'Pod', plural: 'pods', labelSelector: `${LABEL_NAME}=${WORKER_APP},${managedSelector}` },
  { name: 'configmaps', apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', labelSelector: managedSelector },
  { name: 'services', apiVersion: 'v1', kind: 'Service', plural: 'services', labelSelector: managedSelector },
  { name: 'persistentvolumeclaims', apiVersion: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims', labelSelector: managedSelector },
];

const keyOf = (namespace: string | undefined, name: string | undefined): string => `${namespace ?? ''}/${name ?? ''}`;
/** Queue keys of snapshots carry a prefix; job keys are plain namespace/name. */
const SNAPSHOT_KEY = 'snapshot:';
const snapshotKey = (namespace: string | undefined, name: string | undefined): string => `${SNAPSHOT_KEY}${keyOf(namespace, name)}`;

/** What a job update must change to be worth a reconcile: our own status writes are not. */
const fingerprint = (job: ProcessingJob): string =>
  JSON.stringify([job.metadata.uid, job.metadata.generation, job.metadata.annotations ?? {}, job.metadata.deletionTimestamp ?? null]);

/**
 * The ProcessingJob wiring of the generic controller (controller/): informers
 * on ProcessingJobs, their children, their snapshots and task Jobs (handlers
 * only enqueue keys), the Kafka observers (observe/), the job reconciler
 * (reconcile/) and the snapshot reconciler (snapshot/) run by one controller
 * loop over one queue (snapshot keys carry a prefix). Started when this replica leads, stopped when it stops leading.
 */
export class Controller {
  private readonly queue = new WorkQueue();
  private readonly jobs: InformerSet<ProcessingJob>;
  private readonly informers: Pick<InformerSet<KubernetesObject>, 'synced' | 'start' | 'stop'>[];
  private readonly deployments: InformerSet<V1Deployment>;
  private readonly pods: InformerSet<V1Pod>;
  private readonly childCaches: Record<'ConfigMap' | 'Service' | 'PersistentVolumeClaim', InformerSet<KubernetesObject>>;
  private readonly snapshots: InformerSet<ProcessingJobSnapshot>;
  private readonly tasks: InformerSet<V1Job>;
  private readonly snapshotReconciler: SnapshotReconciler;
  private readonly seen = new Map<string, string>();
  /** Statuses this replica wrote, until the watch delivers them (so a quick second reconcile does not write again). */
  private readonly written = new Map<string, ProcessingJob>();
  private readonly reconciler: Reconciler;
  private readonly lag?: LagProbe;
  private readonly health?: WorkerHealthProbe;
  private readonly loop: ControllerLoop;
  private readonly workload: WorkloadObserver;
  /** HPAs per namespace, listed at most once per autoscale interval whatever the number of jobs. */
  private readonly hpaLists = new Map<string, { at: number; list: Promise<V2HorizontalPodAutoscaler[]> }>();
  private running = false;
  private metricsTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;

  constructor(
    private readonly kube: Kube,
    private readonly options: ControllerOptions,
    private readonly log: Logger,
    private readonly metrics: OperatorMetrics,
  ) {
    const objects = KubernetesObjectApi.makeApiClient(kube.config);
    const ns = options.namespaces.length ? options.namespaces : [''];
    this.jobs = new InformerSet<ProcessingJob>(kube.config, objects, { name: 'processingjobs', apiVersion: API_VERSION, kind: KIND, plural: PLURAL }, ns, (job) => this.onJob(job), log, options.relistMs);
    const childSets = children.map((what) => new InformerSet<KubernetesObject>(kube.config, objects, what, ns, (obj) => this.onChild(obj), log, options.relistMs));
    this.deployments = childSets[0] as InformerSet<V1Deployment>;
    this.pods = childSets[1] as InformerSet<V1Pod>;
    this.childCaches = { ConfigMap: childSets[2]!, Service: childSets[3]!, PersistentVolumeClaim: childSets[4]! };
    this.snapshots = new InformerSet<ProcessingJobSnapshot>(kube.config, objects, { name: SNAPSHOT_PLURAL, apiVersion: API_VERSION, kind: SNAPSHOT_KIND, plural: SNAPSHOT_PLURAL }, ns, (snap) => this.onSnapshot(snap), log, options.relistMs);
    this.tasks = new InformerSet<V1Job>(kube.config, objects, { name: 'jobs', apiVersion: 'batch/v1', kind: 'Job', plural: 'jobs', labelSelector: managedSelector }, ns, (task) => this.onTask(task), log, options.relistMs);
    this.informers = [this.jobs, ...childSets, this.snapshots, this.tasks];
    const probe = new PartitionProbe(options.partitionCounter ?? topicPartitionCount, (key) => this.queue.add(key), log);
    const lag = (this.lag = options.lagCheckMs > 0
      ? new LagProbe({ endOffsets: topicEndOffsets, committedOffsets: groupCommittedOffsets }, (key) => this.queue.add(key), log, options.lagCheckMs)
      : undefined);
    const events = new EventRecorder(kube.core, options.identity, log);
    const stateOps = new StateOps(
      {
        snapshot: (namespace, name) => this.snapshots.get(namespace, name),
        snapshotsOf: (namespace, job) => this.snapshots.list(namespace).filter((s) => s.spec.jobName === job),
        task: (namespace, name) => this.tasks.get(namespace, name),
      },
      {
        apply: (object) => kube.apply(object),
        taskPods: (task) => kube.taskPods(task),
        createSnapshot: async (snap) => kube.createSnapshot(snap),
        deleteSnapshot: (namespace, name) => kube.deleteSnapshot(namespace, name),
      },
    );
    this.snapshotReconciler = new SnapshotReconciler({
      view: {
        snapshot: (namespace, name) => this.snapshots.get(namespace, name),
        job: (namespace, name) => this.jobs.get(namespace, name),
        task: (namespace, name) => this.tasks.get(namespace, name),
      },
      writer: {
        apply: (object) => kube.apply(object),
        taskPods: (task) => kube.taskPods(task),
        patchSnapshotStatus: (snap, status) => kube.patchSnapshotStatus(snap, status),
        patchSnapshotMeta: (snap, metadata) => kube.patchSnapshotMeta(snap, metadata),
      },
      events,
      workerImage: options.workerImage,
      log,
    });
    const health = (this.health = options.workerHealthMs
      ? new WorkerHealthProbe((key) => this.queue.add(key), log, options.workerHealthMs, options.workerStatusUrl)
      : undefined);
    this.workload = new WorkloadObserver(
      {
        pods: (job) => this.pods.list(job.metadata.namespace).filter((p) => p.metadata?.labels?.[LABEL_JOB] === job.metadata.name),
        deployment: (job) => this.deployments.get(job.metadata.namespace, childNames(job.metadata.name).deployment),
        autoscalers: (namespace) => this.listAutoscalers(namespace),
        metricsUrl: options.workerMetricsUrl,
      },
      (key) => this.queue.add(key),
      log,
      options.autoscaleIntervalMs,
    );
    this.reconciler = new Reconciler({
      stateOps,
      workload: this.workload,
      onAutoscaling: (job, plan) => this.autoscalingGauges(job, plan),
      progress: lag ? (job, secrets) => lag.lookup(job, secrets) : undefined,
      stalls: health ? (job, pods) => health.lookup(job, pods) : undefined,
      view: this.view(),
      writer: this.writer(),
      events,
      partitions: (job, secrets: ReadonlyMap<string, V1Secret>) => probe.lookup(job, secrets),
      // A deleted job's probes stop at once (they used to run on for up to 15 minutes).
      forget: (key) => {
        lag?.forget(key);
        probe.forget(key);
      },
      requeue: (key) => this.queue.add(key),
      workerImage: options.workerImage,
      log,
    });
    this.loop = new ControllerLoop(
      this.queue,
      (key) => {
        const isSnapshot = key.startsWith(SNAPSHOT_KEY);
        const [namespace, name] = key.slice(isSnapshot ? SNAPSHOT_KEY.length : 0).split('/') as [string, string];
        return isSnapshot ? this.snapshotReconciler.reconcile(namespace, name) : this.reconciler.reconcile(namespace, name);
      },
      log,
      {
        describeError,
        started: () => {
          const end = metrics.reconcileSeconds.startTimer();
          return (result) => {
            end();
            metrics.reconciles.inc({ result });
          };
        },
      },
    );
  }

  private listAutoscalers(namespace: string): Promise<V2HorizontalPodAutoscaler[]> {
    const cached = this.hpaLists.get(namespace);
    if (cached && Date.now() - cached.at < this.options.autoscaleIntervalMs / 2) return cached.list;
    const list = this.kube.listHorizontalPodAutoscalers(namespace);
    this.hpaLists.set(namespace, { at: Date.now(), list });
    list.catch((err: unknown) => {
      this.hpaLists.delete(namespace);
      this.log.debug({ namespace, err: describeError(err) }, 'cannot list HorizontalPodAutoscalers');
    });
    return list;
  }

  private autoscalingGauges(job: ProcessingJob, plan: AutoscalePlan | undefined): void {
    const labels = { namespace: job.metadata.namespace, job: job.metadata.name };
    const g = this.metrics.autoscaling;
    if (!plan) {
      for (const gauge of [g.current, g.recommended, g.inputRate, g.ratePerWorker, g.lag, g.lagSeconds]) gauge.remove(labels);
      return;
    }
    g.current.set(labels, plan.replicas ?? plan.status.currentParallelism ?? 0);
    g.recommended.set(labels, plan.decision.recommended);
    const s = plan.decision.signals;
    if (s) {
      g.inputRate.set(labels, s.inputRate);
      g.lag.set(labels, s.lag);
      g.lagSeconds.set(labels, s.lagSeconds);
      if (s.ratePerWorker !== undefined) g.ratePerWorker.set(labels, s.ratePerWorker);
    }
    if (plan.scaled) g.scales.inc({ ...labels, direction: plan.decision.action === 'ScaleUp' ? 'up' : 'down' });
  }

  private onJob(job: ProcessingJob): void {
    const key = keyOf(job.metadata.namespace, job.metadata.name);
    const fp = fingerprint(job);
    if (this.seen.get(key) === fp && this.jobs.get(job.metadata.namespace, job.metadata.name)) return;
    this.seen.set(key, fp);
    this.queue.add(key);
  }

  private onSnapshot(snap: ProcessingJobSnapshot): void {
    this.queue.add(snapshotKey(snap.metadata.namespace, snap.metadata.name));
    this.queue.add(keyOf(snap.metadata.namespace, snap.spec?.jobName));
  }

  /** A task Job changed: its job, and the snapshot it works for, look again. */
  private onTask(task: V1Job): void {
    const ns = task.metadata?.namespace;
    const job = task.metadata?.labels?.[LABEL_JOB];
    if (job) this.queue.add(keyOf(ns, job));
    for (const ref of task.metadata?.ownerReferences ?? []) if (ref.kind === SNAPSHOT_KIND) this.queue.add(snapshotKey(ns, ref.name));
    const named = task.metadata?.annotations?.[ANNOTATION_TASK_SNAPSHOT];
    if (named) this.queue.add(snapshotKey(ns, named));
  }

  private onChild(obj: KubernetesObject): void {
    const job = obj.metadata?.labels?.[LABEL_JOB];
    if (job) this.queue.add(keyOf(obj.metadata?.namespace, job));
  }

  private view(): ClusterView {
    return {
      job: (namespace, name) => {
        const cached = this.jobs.get(namespace, name);
        const key = keyOf(namespace, name);
        const mine = this.written.get(key);
        if (!cached || !mine) return cached;
        const newer =
          mine.metadata.uid === cached.metadata.uid &&
          (mine.metadata.generation ?? 0) >= (cached.metadata.generation ?? 0) &&
          Number(mine.metadata.resourceVersion) > Number(cached.metadata.resourceVersion);
        if (!newer) {
          this.written.delete(key);
          return cached;
        }
        return { ...cached, status: mine.status };
      },
      deployment: (namespace, name) => this.deployments.get(namespace, name),
      pods: (namespace, job) => this.pods.list(namespace).filter((p) => p.metadata?.labels?.[LABEL_JOB] === job),
      child: (kind, namespace, name) => this.childCaches[kind].get(namespace, name),
      jobs: () => this.jobs.list(),
    };
  }

  private writer(): ClusterWriter {
    const kube = this.kube;
    return {
      apply: (object, options) => kube.apply(object, options),
      getStorageClass: (name) => kube.getStorageClass(name),
      getSecret: (ns, name) => kube.getSecret(ns, name),
      getConfigMap: (ns, name) => kube.getConfigMap(ns, name),
      getPvc: (ns, name) => kube.getPvc(ns, name),
      patchJobStatus: async (job: ProcessingJob, status: ProcessingJobStatus) => {
        const updated = await kube.patchJobStatus(job, status);
        this.written.set(keyOf(job.metadata.namespace, job.metadata.name), updated);
      },
    };
  }

  get synced(): boolean {
    return this.informers.every((i) => i.synced);
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  async start(): Promise<void> {
    this.running = true;
    await Promise.all(this.informers.map((i) => i.start()));
    this.log.info({ namespaces: this.options.namespaces.length ? this.options.namespaces : 'all', jobs: this.jobs.list().length }, 'caches synced; reconciling');
    for (const job of this.jobs.list()) this.queue.add(keyOf(job.metadata.namespace, job.metadata.name));
    for (const snap of this.snapshots.list()) this.queue.add(snapshotKey(snap.metadata.namespace, snap.metadata.name));
    this.loop.start(this.options.concurrency);
    this.metricsTimer = setInterval(() => this.updateGauges(), 5_000);
    this.metricsTimer.unref();
    // Level-triggered: look at every job now and then even if no event came.
    this.resyncTimer = setInterval(() => {
      for (const job of this.jobs.list()) this.queue.add(keyOf(job.metadata.namespace, job.metadata.name));
    }, this.options.relistMs);
    this.resyncTimer.unref();
  }

  private updateGauges(): void {
    this.metrics.queueDepth.set(this.queue.length);
    const phases = new Map<string, number>();
    for (const job of this.jobs.list()) phases.set(job.status?.phase ?? 'Unknown', (phases.get(job.status?.phase ?? 'Unknown') ?? 0) + 1);
    this.metrics.jobs.reset();
    for (const [phase, n] of phases) this.metrics.jobs.set({ phase }, n);
  }

  /** Stops taking keys, lets the reconciles in flight finish, stops the watches. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.metricsTimer);
    clearInterval(this.resyncTimer);
    this.lag?.stop();
    this.health?.stop();
    this.workload.stop();
    this.queue.shutDown();
    await this.loop.drain();
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
