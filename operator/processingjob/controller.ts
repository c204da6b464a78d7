import { KubernetesObjectApi, type KubernetesObject, type V1Deployment, type V1Pod, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { groupCommittedOffsets, topicEndOffsets, topicPartitionCount } from '../../lib/kafka/client.js';
import { LagProbe } from '../observe/lag.js';
import { API_VERSION, KIND, LABEL_JOB, LABEL_MANAGED_BY, LABEL_NAME, MANAGER, PLURAL, WORKER_APP, type ProcessingJob, type ProcessingJobStatus } from '../api/types.js';
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

/** What a job update must change to be worth a reconcile: our own status writes are not. */
const fingerprint = (job: ProcessingJob): string =>
  JSON.stringify([job.metadata.uid, job.metadata.generation, job.metadata.annotations ?? {}, job.metadata.deletionTimestamp ?? null]);

/**
 * The ProcessingJob wiring of the generic controller (controller/): informers
 * on ProcessingJobs and their children (handlers only enqueue keys), the
 * Kafka observers (observe/), the reconciler (reconcile/) run by the
 * controller loop. Started when this replica leads, stopped when it stops leading.
 */
export class Controller {
  private readonly queue = new WorkQueue();
  private readonly jobs: InformerSet<ProcessingJob>;
  private readonly informers: Pick<InformerSet<KubernetesObject>, 'synced' | 'start' | 'stop'>[];
  private readonly deployments: InformerSet<V1Deployment>;
  private readonly pods: InformerSet<V1Pod>;
  private readonly childCaches: Record<'ConfigMap' | 'Service' | 'PersistentVolumeClaim', InformerSet<KubernetesObject>>;
  private readonly seen = new Map<string, string>();
  /** Statuses this replica wrote, until the watch delivers them (so a quick second reconcile does not write again). */
  private readonly written = new Map<string, ProcessingJob>();
  private readonly reconciler: Reconciler;
  private readonly lag?: LagProbe;
  private readonly loop: ControllerLoop;
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
    this.informers = [this.jobs, ...childSets];
    const probe = new PartitionProbe(options.partitionCounter ?? topicPartitionCount, (key) => this.queue.add(key), log);
    const lag = (this.lag = options.lagCheckMs > 0
      ? new LagProbe({ endOffsets: topicEndOffsets, committedOffsets: groupCommittedOffsets }, (key) => this.queue.add(key), log, options.lagCheckMs)
      : undefined);
    this.reconciler = new Reconciler({
      progress: lag ? (job, secrets) => lag.lookup(job, secrets) : undefined,
      view: this.view(),
      writer: this.writer(),
      events: new EventRecorder(kube.core, options.identity, log),
      partitions: (job, secrets: ReadonlyMap<string, V1Secret>) => probe.lookup(job, secrets),
      workerImage: options.workerImage,
      log,
    });
    this.loop = new ControllerLoop(
      this.queue,
      (key) => {
        const [namespace, name] = key.split('/') as [string, string];
        return this.reconciler.reconcile(namespace, name);
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

  private onJob(job: ProcessingJob): void {
    const key = keyOf(job.metadata.namespace, job.metadata.name);
    const fp = fingerprint(job);
    if (this.seen.get(key) === fp && this.jobs.get(job.metadata.namespace, job.metadata.name)) return;
    this.seen.set(key, fp);
    this.queue.add(key);
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
    };
  }

  private writer(): ClusterWriter {
    const kube = this.kube;
    return {
      apply: (object) => kube.apply(object),
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
    this.queue.shutDown();
    await this.loop.drain();
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
