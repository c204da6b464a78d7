/**
 * What the autoscaler sees of a job, collected in the background every
 * interval: the topic's end offsets from Kafka, and from each worker pod's
 * /metrics the events it processed, its busy seconds and the lag of the
 * partitions it owns; readiness from the pod, the rollout from the
 * Deployment. Each look becomes one Observation (operator/autoscaling/decide.ts);
 * the job is requeued after each, and its reconcile decides on the window.
 * A reconcile never waits on Kafka or on a pod.
 */
import type { V1Deployment, V2HorizontalPodAutoscaler, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { TopicAdmin, type KafkaConnectionOptions } from '../../lib/kafka/client.js';
import type { ProcessingJob } from '../api/types.js';
import type { Observation, WorkerSample } from '../autoscaling/decide.js';
import { connectionFor } from './partitions.js';
import { parseSeries, total } from './prometheus-text.js';

/** The worker metrics the autoscaler reads. */
export const WORKER_METRICS = {
  processed: 'sluice_events_in_total',
  busy: 'sluice_busy_seconds_total',
  position: 'sluice_consumer_position',
  lag: 'sluice_consumer_lag',
} as const;

export interface WorkloadSources {
  /** The job's worker pods, from the informer cache. */
  pods(job: ProcessingJob): V1Pod[];
  deployment(job: ProcessingJob): V1Deployment | undefined;
  /** HorizontalPodAutoscalers in the namespace (another controller scaling the job). */
  autoscalers(namespace: string): Promise<V2HorizontalPodAutoscaler[]>;
  /** Where a pod serves /metrics; default http://<pod IP>:<its 'metrics' port>/metrics. */
  metricsUrl?(pod: V1Pod): string | undefined;
  /** GET a URL as text; default fetch with a timeout. */
  fetchText?(url: string, timeoutMs: number): Promise<string>;
  /** Reads end offsets; default a TopicAdmin kept per job. */
  endOffsets?(options: KafkaConnectionOptions, topic: string): Promise<Map<number, number>>;
}

interface Entry {
  job: ProcessingJob;
  options: KafkaConnectionOptions;
  observations: Observation[];
  autoscalers: V2HorizontalPodAutoscaler[];
  lookedUpAt: number;
  timer?: NodeJS.Timeout;
  admin?: Promise<TopicAdmin>;
}

const SCRAPE_TIMEOUT_MS = 2_000;
const KAFKA_TIMEOUT_MS = 5_000;

function defaultMetricsUrl(pod: V1Pod): string | undefined {
  const ip = pod.status?.podIP;
  const port = pod.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === 'metrics')?.containerPort;
  if (!ip || !port) return undefined;
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}/metrics`;
}

async function defaultFetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
};

export const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** The Deployment is changing its pods (a new template, or pods of another revision still around). */
export function rollingOut(d: V1Deployment | undefined): boolean {
  if (!d) return true;
  const s = d.status ?? {};
  const want = d.spec?.replicas ?? 0;
  return (s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0) || (s.updatedReplicas ?? 0) < want || (s.replicas ?? 0) > want;
}

/** What the workers report of a partition they own. */
export interface PartitionReport {
  position?: number;
  lag?: number;
}

/**
 * The lag of all partitions: the end offset just read minus the owner's
 * position (the owner's own lag figure when it reports no position, 0 for a
 * partition that never had a record); undefined when a partition with records
 * has no owner reporting it (a rebalance).
 */
export function lagOf(ends: ReadonlyMap<number, number>, reported: ReadonlyMap<number, PartitionReport>): number | undefined {
  let lag = 0;
  for (const [p, end] of ends) {
    const r = reported.get(p);
    if (r?.position !== undefined) lag += Math.max(0, end - r.position);
    else if (r?.lag !== undefined) lag += r.lag;
    else if (end > 0) return undefined;
  }
  return lag;
}

/** How long a job's observations are kept: what its windows look at, and a minute more. */
export function keepMsOf(job: ProcessingJob): number {
  const a = job.spec.autoscaling;
  const seconds = a ? Math.max(a.scaleDownStabilizationSeconds, a.metricsWindowSeconds) + a.metricsWindowSeconds + 60 : 600;
  return seconds * 1000;
}

export class WorkloadObserver {
  private readonly entries = new Map<string, Entry>();
  private readonly metricsUrl: (pod: V1Pod) => string | undefined;
  private readonly fetchText: (url: string, timeoutMs: number) => Promise<string>;

  constructor(
    private readonly sources: WorkloadSources,
    private readonly requeue: (jobKey: string) => void,
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {
    this.metricsUrl = sources.metricsUrl ?? defaultMetricsUrl;
    this.fetchText = sources.fetchText ?? defaultFetchText;
  }

  /** The job's observations so far, oldest first; the first call starts observing it. */
  window(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): readonly Observation[] {
    return this.entry(job, secrets).observations;
  }

  /** The HorizontalPodAutoscalers of the job's namespace as last listed. */
  autoscalers(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): readonly V2HorizontalPodAutoscaler[] {
    return this.entry(job, secrets).autoscalers;
  }

  private entry(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): Entry {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    const options = connectionFor(job, secrets);
    const existing = this.entries.get(key);
    if (existing) {
      if (JSON.stringify(existing.options) !== JSON.stringify(options)) this.dropAdmin(existing);
      Object.assign(existing, { job, options, lookedUpAt: Date.now() });
      return existing;
    }
    const fresh: Entry = { job, options, observations: [], autoscalers: [], lookedUpAt: Date.now() };
    this.entries.set(key, fresh);
    fresh.timer = setTimeout(() => void this.tick(key, fresh), 0);
    fresh.timer.unref();
    return fresh;
  }

  forget(jobKey: string): void {
    const entry = this.entries.get(jobKey);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.dropAdmin(entry);
    this.entries.delete(jobKey);
  }

  stop(): void {
    for (const key of [...this.entries.keys()]) this.forget(key);
  }

  private dropAdmin(entry: Entry): void {
    const admin = entry.admin;
    entry.admin = undefined;
    void admin?.then((a) => a.disconnect()).catch(() => undefined);
  }

  private async endOffsets(entry: Entry): Promise<Map<number, number>> {
    const topic = entry.job.spec.kafka.topic;
    if (this.sources.endOffsets) return this.sources.endOffsets(entry.options, topic);
    entry.admin ??= TopicAdmin.connect(entry.options);
    try {
      return await (await entry.admin).endOffsets(topic);
    } catch (err) {
      this.dropAdmin(entry);
      throw err;
    }
  }

  private async scrape(pod: V1Pod): Promise<{ sample: WorkerSample; partitions: Map<number, PartitionReport> }> {
    const name = pod.metadata?.name ?? '?';
    const sample: WorkerSample = { pod: name, ready: isReady(pod) };
    const partitions = new Map<number, PartitionReport>();
    const url = this.metricsUrl(pod);
    if (!url || !sample.ready) return { sample, partitions };
    try {
      const series = parseSeries(await this.fetchText(url, SCRAPE_TIMEOUT_MS), new Set(Object.values(WORKER_METRICS)));
      sample.processed = total(series, WORKER_METRICS.processed);
      sample.busySeconds = total(series, WORKER_METRICS.busy);
      const report = (p: string): PartitionReport => {
        const r = partitions.get(Number(p)) ?? {};
        partitions.set(Number(p), r);
        return r;
      };
      for (const s of series.get(WORKER_METRICS.position) ?? []) report(s.labels.partition).position = s.value;
      for (const s of series.get(WORKER_METRICS.lag) ?? []) report(s.labels.partition).lag = s.value;
    } catch (err) {
      this.log.debug({ pod: name, url, err: err instanceof Error ? err.message : String(err) }, 'worker metrics unavailable');
    }
    return { sample, partitions };
  }

  /** One look at the job. */
  private async observe(entry: Entry): Promise<Observation> {
    const { job } = entry;
    const deployment = this.sources.deployment(job);
    const pods = this.sources.pods(job).filter((p) => !p.metadata?.deletionTimestamp);
    // The input rate is the growth of the end offsets over time: time the Kafka answer itself, not the whole look.
    let readAt = Date.now();
    const readEnds = async (): Promise<Map<number, number>> => {
      const sent = Date.now();
      const ends = await this.endOffsets(entry);
      readAt = Math.round((sent + Date.now()) / 2);
      return ends;
    };
    const [ends, scraped, autoscalers] = await Promise.all([
      withTimeout(readEnds(), KAFKA_TIMEOUT_MS, 'kafka end offsets').catch((err: unknown) => {
        this.log.debug({ job: job.metadata.name, err: err instanceof Error ? err.message : String(err) }, 'end offsets unavailable');
        return undefined;
      }),
      Promise.all(pods.map((p) => this.scrape(p))),
      this.sources.autoscalers(job.metadata.namespace).catch(() => entry.autoscalers),
    ]);
    entry.autoscalers = autoscalers;
    // Two owners of one partition (a rebalance under way): the one further behind counts.
    const reported = new Map<number, PartitionReport>();
    for (const { partitions } of scraped) {
      for (const [p, r] of partitions) {
        const seen = reported.get(p);
        if (!seen || (r.position ?? Infinity) < (seen.position ?? Infinity)) reported.set(p, r);
      }
    }
    return {
      at: readAt,
      endOffsets: ends ? [...ends.values()].reduce((a, b) => a + b, 0) : undefined,
      lag: ends ? lagOf(ends, reported) : undefined,
      replicas: deployment?.spec?.replicas ?? 0,
      rollingOut: rollingOut(deployment),
      workers: scraped.map((s) => s.sample),
    };
  }

  private async tick(key: string, entry: Entry): Promise<void> {
    if (this.entries.get(key) !== entry) return;
    // A job nobody reconciled for a long while is gone, or no longer autoscaled: stop looking at it.
    if (Date.now() - entry.lookedUpAt > Math.max(5 * 60_000, 10 * this.intervalMs)) {
      this.forget(key);
      return;
    }
    try {
      const o = await this.observe(entry);
      if (this.entries.get(key) !== entry) return;
      entry.observations.push(o);
      const keepFrom = o.at - keepMsOf(entry.job);
      while (entry.observations.length && entry.observations[0].at < keepFrom) entry.observations.shift();
      this.requeue(key);
    } catch (err) {
      this.log.warn({ job: key, err: err instanceof Error ? err.message : String(err) }, 'autoscaling observation failed');
    } finally {
      if (this.entries.get(key) === entry) {
        entry.timer = setTimeout(() => void this.tick(key, entry), this.intervalMs);
        entry.timer.unref();
      }
    }
  }
}
