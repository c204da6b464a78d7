import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ProcessingJob } from '../api/types.js';

/** What a worker pod says it waits on (its /status), as the operator last saw it. */
export interface WorkerStall {
  pod: string;
  /** redis, smtp, kafka, dlq */
  on: string;
  /** A condition reason: RedisUnreachable, SmtpUnreachable, KafkaUnreachable, DeadLetterTopicMissing... */
  reason: string;
  message: string;
  since?: string;
}

/** The worker container's metrics port (render.ts: containerPort `metrics`). */
export const WORKER_METRICS_PORT = 9090;

/** Where a pod's /status is: its pod IP and metrics port; undefined while it has no IP. */
export function podStatusUrl(pod: V1Pod): string | undefined {
  const ip = pod.status?.podIP;
  if (!ip || pod.status?.phase !== 'Running') return undefined;
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${WORKER_METRICS_PORT}/status`;
}

export type StatusFetch = (url: string) => Promise<{ stalls?: Array<Omit<WorkerStall, 'pod'>> } | undefined>;

async function fetchStatus(url: string): Promise<{ stalls?: Array<Omit<WorkerStall, 'pod'>> } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? ((await res.json()) as { stalls?: Array<Omit<WorkerStall, 'pod'>> }) : undefined;
  } catch {
    return undefined;
  }
}

interface Entry {
  stalls: WorkerStall[];
  pods: readonly V1Pod[];
  lookedUpAt: number;
  timer?: NodeJS.Timeout;
}

/**
 * What the workers of each job wait on (Redis, SMTP, Kafka, the DLQ), read
 * from each running worker pod's /status in the background every `periodMs`
 * (not on every reconcile), so a stall becomes a Degraded condition with the
 * worker's own reason (RedisUnreachable, SmtpUnreachable...). A pod that does
 * not answer says nothing: its readiness and restarts are the pod checks' job.
 */
export class WorkerHealthProbe {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly requeue: (jobKey: string) => void,
    private readonly log: Logger,
    private readonly periodMs = 15_000,
    private readonly urlOf: (pod: V1Pod) => string | undefined = podStatusUrl,
    private readonly get: StatusFetch = fetchStatus,
  ) {}

  /** The last reading for the job; the first call starts reading its pods every period. */
  lookup(job: ProcessingJob, pods: readonly V1Pod[]): WorkerStall[] {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    const entry = this.entries.get(key);
    if (entry) {
      Object.assign(entry, { pods, lookedUpAt: Date.now() });
      return entry.stalls;
    }
    const fresh: Entry = { stalls: [], pods, lookedUpAt: Date.now() };
    this.entries.set(key, fresh);
    fresh.timer = setTimeout(() => void this.refresh(key, fresh), Math.min(1_000, this.periodMs));
    fresh.timer.unref();
    return fresh.stalls;
  }

  forget(jobKey: string): void {
    clearTimeout(this.entries.get(jobKey)?.timer);
    this.entries.delete(jobKey);
  }

  stop(): void {
    for (const key of [...this.entries.keys()]) this.forget(key);
  }

  private async refresh(key: string, entry: Entry): Promise<void> {
    if (this.entries.get(key) !== entry) return;
    try {
      const found = await Promise.all(
        entry.pods
          .filter((p) => !p.metadata?.deletionTimestamp)
          .map(async (pod) => {
            const url = this.urlOf(pod);
            const status = url ? await this.get(url) : undefined;
            return (status?.stalls ?? []).map((s) => ({ pod: pod.metadata?.name ?? '?', on: s.on, reason: s.reason, message: s.message, since: s.since }));
          }),
      );
      const next = found.flat().sort((a, b) => `${a.pod}/${a.on}`.localeCompare(`${b.pod}/${b.on}`));
      // Only what a condition shows counts as a change (a message's retry detail does not).
      const shape = (list: WorkerStall[]): string => JSON.stringify(list.map((s) => [s.pod, s.on, s.reason]));
      const changed = shape(next) !== shape(entry.stalls);
      entry.stalls = next;
      if (changed) this.requeue(key);
    } catch (err) {
      this.log.debug({ job: key, err: err instanceof Error ? err.message : String(err) }, 'worker health check failed');
    } finally {
      if (Date.now() - entry.lookedUpAt > Math.max(15 * 60_000, 3 * this.periodMs)) {
        this.entries.delete(key);
      } else if (this.entries.get(key) === entry) {
        entry.timer = setTimeout(() => void this.refresh(key, entry), this.periodMs);
        entry.timer.unref();
      }
    }
  }
}
