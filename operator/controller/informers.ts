import {
  KubernetesObjectApi,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError } from '../kube/client.js';

/** A kind the operator watches: where it lives and which objects of it matter. */
export interface WatchedKind {
  /** For logs and metrics. */
  name: string;
  apiVersion: string;
  kind: string;
  /** URL path segment of the resource (plural), e.g. deployments. */
  plural: string;
  labelSelector?: string;
}

export type ObjectHandler<T> = (obj: T) => void;

const basePath = (apiVersion: string): string => (apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`);

/**
 * One list+watch of one kind in one namespace ('' = all), kept alive: client-node's
 * informer stops on any error other than 410/timeout, so this restarts it with
 * backoff (1 s doubling to 30 s), and relists from scratch periodically because
 * a watch can silently miss events. The old cache serves until the new one has
 * listed, so readers never see an empty cache.
 */
export class ManagedInformer<T extends KubernetesObject> {
  private informer?: Informer<T> & ObjectCache<T>;
  private stopped = false;
  private backoffMs = 1_000;
  private lastErrorAt = 0;
  private restartTimer?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  synced = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly objects: KubernetesObjectApi,
    private readonly what: WatchedKind,
    private readonly namespace: string,
    private readonly onChange: ObjectHandler<T>,
    private readonly log: Logger,
    private readonly relistMs: number,
  ) {}

  private path(): string {
    const ns = this.namespace ? `/namespaces/${this.namespace}` : '';
    return `${basePath(this.what.apiVersion)}${ns}/${this.what.plural}`;
  }

  private make(onError: (informer: Informer<T>, err: unknown) => void = (i, e) => this.failed(i, e)): Informer<T> & ObjectCache<T> {
    const list = (): Promise<KubernetesListObject<T>> =>
      this.objects.list<T>(this.what.apiVersion, this.what.kind, this.namespace || undefined, undefined, undefined, undefined, undefined, this.what.labelSelector);
    const informer = makeInformer<T>(this.kc, this.path(), list, this.what.labelSelector);
    // Handlers only hand keys to the queue: they are not awaited by the informer.
    // The handler gets the cached object itself: dropping managedFields there keeps
    // the cache small (controller-runtime's TransformStripManagedFields).
    const handle = (obj: T): void => {
      if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
      this.onChange(obj);
    };
    informer.on('add', handle);
    informer.on('update', handle);
    informer.on('delete', handle);
    informer.on('error', (err: unknown) => onError(informer, err));
    return informer;
  }

  /** A fresh informer that has listed and watches; throws the error of its first list or watch. */
  private async startFresh(): Promise<Informer<T> & ObjectCache<T>> {
    let startError: unknown;
    let starting = true;
    let informer: Informer<T> & ObjectCache<T> | undefined;
    informer = this.make((i, err) => {
      if (starting) startError = err ?? new Error('watch failed');
      else this.failed(i, err);
    });
    // client-node resolves start() even when the list failed: the error callback tells.
    await informer.start();
    starting = false;
    if (startError !== undefined) {
      await informer.stop();
      informer = undefined;
      throw startError;
    }
    return informer;
  }

  /** Resolves once the first list has landed in the cache; retries with backoff until then. */
  async start(): Promise<void> {
    this.stopped = false;
    let delay = 500;
    for (;;) {
      try {
        this.informer = await this.startFresh();
        this.synced = true;
        this.scheduleRelist();
        return;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ informer: this.what.name, namespace: this.namespace, err: describeError(err), retryInMs: delay }, 'list failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
        if (this.stopped) return;
      }
    }
  }

  private scheduleRelist(): void {
    clearTimeout(this.relistTimer);
    this.relistTimer = setTimeout(() => void this.relist(), this.relistMs);
    this.relistTimer.unref();
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const fresh = await this.startFresh();
      const old = this.informer;
      this.informer = fresh;
      await old?.stop();
    } catch (err) {
      this.log.warn({ informer: this.what.name, namespace: this.namespace, err: describeError(err) }, 'relist failed; keeping the current cache');
    }
    this.scheduleRelist();
  }

  private failed(informer: Informer<T>, err: unknown): void {
    if (this.stopped || informer !== this.informer) return;
    const now = Date.now();
    this.backoffMs = now - this.lastErrorAt > 60_000 ? 1_000 : Math.min(this.backoffMs * 2, 30_000);
    this.lastErrorAt = now;
    this.log.warn({ informer: this.what.name, namespace: this.namespace, err: describeError(err), retryInMs: this.backoffMs }, 'watch failed; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      informer.start().catch((e: unknown) => this.failed(informer, e));
    }, this.backoffMs);
    this.restartTimer.unref();
  }

  get(name: string, namespace: string): T | undefined {
    return this.informer?.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer?.list(namespace) ?? [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.relistTimer);
    await this.informer?.stop();
  }
}

/** The informers of one kind across the watched namespaces ([''] = all). */
export class InformerSet<T extends KubernetesObject> {
  private readonly byNamespace = new Map<string, ManagedInformer<T>>();

  constructor(
    kc: KubeConfig,
    objects: KubernetesObjectApi,
    what: WatchedKind,
    namespaces: readonly string[],
    onChange: ObjectHandler<T>,
    log: Logger,
    relistMs: number,
  ) {
    for (const ns of namespaces) this.byNamespace.set(ns, new ManagedInformer(kc, objects, what, ns, onChange, log, relistMs));
  }

  private forNamespace(namespace: string): ManagedInformer<T> | undefined {
    return this.byNamespace.get(namespace) ?? this.byNamespace.get('');
  }

  get(namespace: string, name: string): T | undefined {
    return this.forNamespace(namespace)?.get(name, namespace);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.forNamespace(namespace)?.list(namespace) ?? [])];
    return [...this.byNamespace.values()].flatMap((i) => [...i.list()]);
  }

  get synced(): boolean {
    return [...this.byNamespace.values()].every((i) => i.synced);
  }

  async start(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((i) => i.stop()));
  }
}
