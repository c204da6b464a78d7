import {
  ApiException,
  AppsV1Api,
  AutoscalingV2Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  StorageV1Api,
  setHeaderOptions,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Job,
  type V2HorizontalPodAutoscaler,
  type V1Lease,
  type V1Pod,
  type V1PersistentVolumeClaim,
  type V1Secret,
  type V1StorageClass,
} from '@kubernetes/client-node';
import {
  API_VERSION,
  GROUP,
  MANAGER,
  PLURAL,
  SNAPSHOT_KIND,
  SNAPSHOT_PLURAL,
  VERSION,
  type ProcessingJob,
  type ProcessingJobSnapshot,
  type ProcessingJobSnapshotStatus,
  type ProcessingJobStatus,
} from '../api/types.js';

/** The HTTP status of a failed API call, or undefined for a network error. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown })?.statusCode ?? (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;

/** A one-line description of an API error: the server's own message when it sent one. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    let message: string | undefined;
    if (typeof body === 'string') {
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? body;
      } catch {
        message = body;
      }
    } else if (body && typeof body === 'object') {
      message = (body as { message?: string }).message;
    }
    return `HTTP ${err.code}: ${message ?? err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** The calls the operator makes, in one place: server-side apply, status, reads, events, leases. */
export class Kube {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly storage: StorageV1Api;
  private readonly autoscaling: AutoscalingV2Api;
  private readonly objects: KubernetesObjectApi;

  constructor(readonly config: KubeConfig) {
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.coordination = config.makeApiClient(CoordinationV1Api);
    this.storage = config.makeApiClient(StorageV1Api);
    this.autoscaling = config.makeApiClient(AutoscalingV2Api);
    this.objects = KubernetesObjectApi.makeApiClient(config);
  }

  /**
   * Server-side apply with the operator's field manager; force takes back
   * fields it owns. `dryRun`: the server validates and admits it, stores nothing.
   */
  async apply<T extends KubernetesObject>(object: T, options: { dryRun?: boolean } = {}): Promise<T> {
    return this.objects.patch(object, undefined, options.dryRun ? 'All' : undefined, MANAGER, true, PatchStrategy.ServerSideApply);
  }

  /** Returns the job as the server stored it. */
  async patchJobStatus(job: ProcessingJob, status: ProcessingJobStatus): Promise<ProcessingJob> {
    // A merge patch of the status subresource: the spec and other writers' fields stay untouched.
    return (await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: job.metadata.namespace, name: job.metadata.name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as ProcessingJob;
  }

  async patchSnapshotStatus(snap: ProcessingJobSnapshot, status: ProcessingJobSnapshotStatus): Promise<ProcessingJobSnapshot> {
    return (await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: SNAPSHOT_PLURAL, namespace: snap.metadata.namespace, name: snap.metadata.name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as ProcessingJobSnapshot;
  }

  /** A merge patch of a snapshot's metadata (finalizers, owner references), guarded by its resourceVersion. */
  async patchSnapshotMeta(snap: ProcessingJobSnapshot, metadata: Record<string, unknown>): Promise<ProcessingJobSnapshot> {
    return (await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: SNAPSHOT_PLURAL,
        namespace: snap.metadata.namespace,
        name: snap.metadata.name,
        body: { metadata: { ...metadata, resourceVersion: snap.metadata.resourceVersion } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as ProcessingJobSnapshot;
  }

  async createSnapshot(snap: Omit<ProcessingJobSnapshot, 'apiVersion' | 'kind'>): Promise<ProcessingJobSnapshot> {
    return (await this.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: SNAPSHOT_PLURAL,
      namespace: snap.metadata.namespace,
      body: { apiVersion: API_VERSION, kind: SNAPSHOT_KIND, ...snap },
    })) as ProcessingJobSnapshot;
  }

  async deleteSnapshot(namespace: string, name: string): Promise<void> {
    await this.orUndefined(() => this.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: SNAPSHOT_PLURAL, namespace, name }));
  }

  /** The pods of a task Job (their termination messages hold its result). */
  async taskPods(job: V1Job): Promise<V1Pod[]> {
    const list = await this.core.listNamespacedPod({ namespace: job.metadata!.namespace!, labelSelector: `batch.kubernetes.io/job-name=${job.metadata!.name!}` });
    return list.items;
  }

  /** The HorizontalPodAutoscalers of a namespace (KEDA's ScaledObjects act through one too). */
  async listHorizontalPodAutoscalers(namespace: string): Promise<V2HorizontalPodAutoscaler[]> {
    return (await this.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace })).items;
  }

  async getSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    return this.orUndefined(() => this.core.readNamespacedSecret({ namespace, name }));
  }

  async getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return this.orUndefined(() => this.core.readNamespacedConfigMap({ namespace, name }));
  }

  async getPvc(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return this.orUndefined(() => this.core.readNamespacedPersistentVolumeClaim({ namespace, name }));
  }

  /** 'unknown' when this operator may not read StorageClasses (its RBAC is namespaced). */
  async getStorageClass(name: string): Promise<V1StorageClass | undefined | 'unknown'> {
    try {
      return await this.storage.readStorageClass({ name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (statusCode(err) === 403) return 'unknown';
      throw err;
    }
  }

  async getLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    return this.orUndefined(() => this.coordination.readNamespacedLease({ namespace, name }));
  }

  async createLease(lease: V1Lease): Promise<V1Lease> {
    return this.coordination.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease });
  }

  /** Replaces the lease; fails with 409 when someone else wrote it since it was read. */
  async replaceLease(lease: V1Lease): Promise<V1Lease> {
    return this.coordination.replaceNamespacedLease({ namespace: lease.metadata!.namespace!, name: lease.metadata!.name!, body: lease });
  }

  private async orUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
    try {
      return await read();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
