/**
 * What `sluice status` and `sluice dashboard` show, the same for local jobs
 * (run state + each worker's /metrics) and for ProcessingJobs in a cluster
 * (status + pods). Plain data, printed as a table or as JSON.
 */
import { byLabel, parseMetrics, single, total, type Sample } from './prometheus.js';

export interface PartitionView {
  partition: number;
  /** The worker that owns it (local: `worker 0`; cluster: the pod name). */
  owner: string;
  lag?: number;
  /** Seconds since its last checkpoint, when the worker reports it per partition. */
  checkpointAgeSeconds?: number;
}

/** What a worker waits on, from the `sluice_stalled` gauge: `redis`, `smtp`, `kafka`, `dlq`. */
export interface StallView {
  on: string;
  reason: string;
}

export interface WorkerView {
  /** `0`, `1`... locally; the pod name in a cluster. */
  id: string;
  pid?: number;
  metricsPort?: number;
  /** ready, starting, restarting, failed (local); Running/Pending... and ready (cluster); plus `stalled`. */
  state: string;
  restarts: number;
  stalls: StallView[];
  eventsIn?: number;
  eventsOut?: number;
  eventsPerSecond?: number;
  lag?: number;
  deadLetters?: number;
  alerts?: number;
  lastCheckpoint?: string;
  partitions: PartitionView[];
  /** Why it last exited, or what it last logged at error level. */
  lastError?: string;
  /** True when /metrics answered. */
  reachable: boolean;
}

export interface ConditionView {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface JobView {
  name: string;
  namespace?: string;
  type: string;
  source: 'local' | 'cluster';
  /** local: running, failed, stopped; cluster: status.phase. */
  state: string;
  ready: number;
  workers: WorkerView[];
  eventsPerSecond?: number;
  lag?: number;
  deadLetters?: number;
  alerts?: number;
  lastCheckpoint?: string;
  stalls: Array<StallView & { worker: string }>;
  conditions: ConditionView[];
  lastError?: string;
  /** Local: the YAML file; cluster: the input topic. */
  detail?: string;
  /** Where scores and alerts are, for the dashboard's Redis views (local jobs). */
  redis?: { host: string; port: number; keyPrefix: string; db?: number };
  deadLetterTopic?: string;
  kafka?: { brokers: string[]; topic: string };
}

/** What one scrape of a worker's /metrics says, without rates (those need two scrapes). */
export interface WorkerMetricsView {
  eventsIn: number;
  eventsOut: number;
  lag?: number;
  deadLetters: number;
  alerts: number;
  lastCheckpoint?: string;
  stalls: StallView[];
  partitions: Array<Omit<PartitionView, 'owner'>>;
}

export function fromMetrics(samples: readonly Sample[], nowMs: number): WorkerMetricsView {
  const lags = byLabel(samples, 'sluice_consumer_lag', 'partition');
  const checkpoints = byLabel(samples, 'sluice_partition_checkpoint_timestamp_seconds', 'partition');
  const partitions = [...new Set([...lags.keys(), ...checkpoints.keys()])]
    .map(Number)
    .sort((a, b) => a - b)
    .map((p) => {
      const at = checkpoints.get(String(p));
      return { partition: p, lag: lags.get(String(p)), checkpointAgeSeconds: at ? Math.max(0, Math.round(nowMs / 1000 - at)) : undefined };
    });
  const last = single(samples, 'sluice_last_checkpoint_timestamp_seconds');
  const stalls = samples
    .filter((s) => s.name === 'sluice_stalled' && s.value > 0)
    .map((s) => ({ on: s.labels.on ?? 'unknown', reason: s.labels.reason ?? 'Stalled' }));
  return {
    eventsIn: total(samples, 'sluice_events_in_total'),
    eventsOut: total(samples, 'sluice_events_out_total'),
    lag: lags.size > 0 ? [...lags.values()].reduce((a, b) => a + b, 0) : undefined,
    deadLetters: total(samples, 'sluice_dlq_events_total'),
    alerts: total(samples, 'sluice_alerts_total', { outcome: 'sent' }) + total(samples, 'sluice_alerts_total', { outcome: 'recorded' }),
    lastCheckpoint: last ? new Date(last * 1000).toISOString() : undefined,
    stalls,
    partitions,
  };
}

/**
 * A worker's view completed by one scrape of its /metrics (`text`, or
 * undefined when it did not answer): the same for a local worker and a pod.
 * `rateKey` names the worker for the events/s of two scrapes, `owner` is
 * what its partitions say owns them.
 */
export function withMetrics(view: WorkerView, text: string | undefined, at: { rates: RateTracker; rateKey: string; owner: string; now: number }): WorkerView {
  if (text === undefined) return view;
  const m = fromMetrics(parseMetrics(text), at.now);
  return {
    ...view,
    state: m.stalls.length > 0 ? 'stalled' : view.state,
    stalls: m.stalls,
    eventsIn: m.eventsIn,
    eventsOut: m.eventsOut,
    eventsPerSecond: at.rates.rate(at.rateKey, m.eventsIn, at.now),
    lag: m.lag,
    deadLetters: m.deadLetters,
    alerts: m.alerts,
    lastCheckpoint: m.lastCheckpoint,
    partitions: m.partitions.map((p) => ({ ...p, owner: at.owner })),
  };
}

const sum = (values: Array<number | undefined>): number | undefined =>
  values.some((v) => v !== undefined) ? values.reduce<number>((a, v) => a + (v ?? 0), 0) : undefined;

const latest = (values: Array<string | undefined>): string | undefined =>
  values.filter((v): v is string => v !== undefined).sort().at(-1);

/** Job totals from its workers' views. */
export function rollUp(job: Omit<JobView, 'eventsPerSecond' | 'lag' | 'deadLetters' | 'alerts' | 'lastCheckpoint' | 'stalls'>): JobView {
  const w = job.workers;
  return {
    ...job,
    eventsPerSecond: sum(w.map((x) => x.eventsPerSecond)),
    lag: sum(w.map((x) => x.lag)),
    deadLetters: sum(w.map((x) => x.deadLetters)),
    alerts: sum(w.map((x) => x.alerts)),
    lastCheckpoint: latest(w.map((x) => x.lastCheckpoint)),
    stalls: w.flatMap((x) => x.stalls.map((s) => ({ ...s, worker: x.id }))),
    lastError: job.lastError ?? w.find((x) => x.lastError)?.lastError,
  };
}

/**
 * Remembers the previous scrape of each worker, so that a second look gives
 * events/s. Keyed by worker identity and pid: a restarted worker starts over.
 */
export class RateTracker {
  private readonly previous = new Map<string, { at: number; eventsIn: number }>();

  rate(key: string, eventsIn: number, at: number): number | undefined {
    const before = this.previous.get(key);
    this.previous.set(key, { at, eventsIn });
    if (!before || at <= before.at || eventsIn < before.eventsIn) return undefined;
    return ((eventsIn - before.eventsIn) * 1000) / (at - before.at);
  }
}
