import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError, isConflict } from './kube/client.js';

/** The lease calls (the Kube client in production). */
export interface LeaseStore {
  getLease(namespace: string, name: string): Promise<V1Lease | undefined>;
  createLease(lease: V1Lease): Promise<V1Lease>;
  replaceLease(lease: V1Lease): Promise<V1Lease>;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease stays valid without renewal (controller-runtime: 15 s). */
  leaseDurationMs: number;
  /** A leader that could not renew for this long steps down (10 s). */
  renewDeadlineMs: number;
  /** Time between attempts to acquire or renew (2 s). */
  retryPeriodMs: number;
}

export const defaultLeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void | Promise<void>;
}

// Lease times are MicroTime: RFC 3339 with microseconds.
const microTime = (d: Date): V1MicroTime => new V1MicroTime(d.getTime());
const timeOf = (v: Date | string | undefined): number => (v ? new Date(v).getTime() : 0);

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: a
 * candidate takes the lease when it is free or expired, the leader renews it
 * every retry period and steps down if it could not renew within the renew
 * deadline. Writes use the lease's resourceVersion, so two candidates cannot
 * both win. On stop the leader gives the lease up so a standby takes over at once.
 */
export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private lastRenew = 0;
  private current?: V1Lease;
  private loop?: Promise<void>;

  constructor(
    private readonly store: LeaseStore,
    private readonly options: LeaderElectionOptions,
    private readonly callbacks: LeaderCallbacks,
    private readonly log: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.loop = this.tick().finally(() => this.schedule(this.options.retryPeriodMs));
    }, ms);
  }

  private async tick(): Promise<void> {
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leading) {
          this.leading = true;
          this.log.info({ lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity }, 'became leader');
          await this.callbacks.onStartedLeading();
        }
        return;
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'lease update failed');
    }
    if (this.leading && Date.now() - this.lastRenew > this.options.renewDeadlineMs) await this.stepDown('could not renew the lease within the renew deadline');
    else if (this.leading && this.current?.spec?.holderIdentity !== this.options.identity) await this.stepDown('another replica holds the lease');
  }

  private async stepDown(why: string): Promise<void> {
    this.leading = false;
    this.log.warn({ why }, 'lost leadership');
    await this.callbacks.onStoppedLeading();
  }

  private leaseBody(existing: V1Lease | undefined, now: Date): V1Lease {
    const mine = existing?.spec?.holderIdentity === this.options.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace, resourceVersion: existing?.metadata?.resourceVersion },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.round(this.options.leaseDurationMs / 1000),
        acquireTime: mine && existing?.spec?.acquireTime ? existing.spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (existing?.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
  }

  /** True when this replica holds the lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    const existing = await this.store.getLease(namespace, name);
    this.current = existing;
    if (!existing) return this.write(() => this.store.createLease(this.leaseBody(undefined, now)));
    const holder = existing.spec?.holderIdentity;
    const durationMs = (existing.spec?.leaseDurationSeconds ?? 15) * 1000;
    const expired = !holder || timeOf(existing.spec?.renewTime) + durationMs < now.getTime();
    if (holder !== identity && !expired) return false;
    return this.write(() => this.store.replaceLease(this.leaseBody(existing, now)));
  }

  /** Creates or replaces the lease; false when another replica wrote it first (a conflict). */
  private async write(lease: () => Promise<V1Lease>): Promise<boolean> {
    try {
      this.current = await lease();
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Stops campaigning; a leader releases the lease so a standby need not wait for it to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loop?.catch(() => undefined);
    if (!this.leading) return;
    this.leading = false;
    await this.callbacks.onStoppedLeading();
    try {
      const lease = await this.store.getLease(this.options.namespace, this.options.name);
      if (lease?.spec?.holderIdentity === this.options.identity) {
        lease.spec.holderIdentity = undefined;
        lease.spec.leaseDurationSeconds = 1;
        await this.store.replaceLease(lease);
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'could not release the lease');
    }
  }
}
