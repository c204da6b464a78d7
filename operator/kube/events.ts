import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { MANAGER, type ProcessingJob } from '../api/types.js';
import { bounded } from '../reconcile/status.js';
import { describeError } from './client.js';

export type EventType = 'Normal' | 'Warning';

/**
 * Kubernetes Events on a ProcessingJob, for what the operator did and what went
 * wrong. The same event for the same job is sent at most once a minute, so a
 * retry loop cannot flood the namespace; a failed send is logged, never thrown.
 */
export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly instance: string,
    private readonly log: Logger,
    private readonly windowMs = 60_000,
  ) {}

  record(job: ProcessingJob, type: EventType, reason: string, message: string): void {
    const key = `${job.metadata.uid}\u0000${reason}\u0000${message}`;
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < this.windowMs) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) this.prune(now);
    const when = new Date(now);
    const body: CoreV1Event = {
      metadata: { name: `${job.metadata.name}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`, namespace: job.metadata.namespace },
      involvedObject: {
        apiVersion: job.apiVersion,
        kind: job.kind,
        name: job.metadata.name,
        namespace: job.metadata.namespace,
        uid: job.metadata.uid,
        resourceVersion: job.metadata.resourceVersion,
      },
      type,
      reason,
      message: bounded(message),
      source: { component: MANAGER },
      reportingComponent: `sluice.dev/${MANAGER}`,
      reportingInstance: this.instance,
      firstTimestamp: when,
      lastTimestamp: when,
      count: 1,
    };
    this.log.info({ job: `${job.metadata.namespace}/${job.metadata.name}`, type, reason }, message);
    this.core.createNamespacedEvent({ namespace: job.metadata.namespace, body }).catch((err: unknown) => {
      this.log.warn({ err: describeError(err), reason }, 'could not record event');
    });
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= this.windowMs) this.recent.delete(k);
  }
}
