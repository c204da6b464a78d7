/**
 * The worker's Prometheus metrics and its HTTP endpoints (/metrics, /healthz,
 * /readyz). A job type adds its own metrics to the same registry (cart:
 * `sluice_alerts_total`). One registry per worker, so tests and the in-process demo can run
 * several workers in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { metricsRoute, probeRoutes, serve, type HttpEndpoint, type Route } from '../../lib/http/server.js';
import { BusyClock } from './busy.js';

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly eventsIn: Counter;
  readonly eventsOut: Counter;
  readonly deadLetters: Counter;
  readonly lag: Gauge<'partition'>;
  readonly position: Gauge<'partition'>;
  readonly eventToScore: Histogram;
  readonly inference: Histogram;
  readonly inferenceRows: Counter;
  readonly checkpointSeconds: Histogram;
  readonly checkpointBytes: Gauge<'partition'>;
  readonly lastCheckpoint: Gauge;
  readonly checkpointFailures: Counter;
  readonly partitionCheckpoint: Gauge<'partition'>;
  readonly stalled: Gauge<'on' | 'reason'>;
  readonly deadLettersPending: Gauge;
  readonly retries: Counter<'target'>;
  readonly assigned: Gauge;
  readonly restores: Counter;
  /** Time with a batch in hand: events in / busy seconds is the worker's true processing rate (the autoscaler's). */
  readonly busy = new BusyClock();

  constructor(labels: { job: string; type: string }, defaults = true) {
    this.registry.setDefaultLabels(labels);
    const registers = [this.registry];
    this.eventsIn = new Counter({ name: 'sluice_events_in_total', help: 'Records read from the input topic (valid or not)', registers });
    this.eventsOut = new Counter({ name: 'sluice_events_out_total', help: 'Results written to Redis (user hashes and alert records)', registers });
    this.deadLetters = new Counter({ name: 'sluice_dlq_events_total', help: 'Malformed records sent to the dead-letter topic', registers });
    this.lag = new Gauge({ name: 'sluice_consumer_lag', help: 'Records between the checkpointable position and the end of the partition', labelNames: ['partition'], registers });
    this.position = new Gauge({
      name: 'sluice_consumer_position',
      help: 'Offset of the next record to process in each partition this worker owns (the autoscaler subtracts it from the end offsets it reads)',
      labelNames: ['partition'],
      registers,
    });
    this.eventToScore = new Histogram({
      name: 'sluice_event_to_score_seconds',
      help: 'From the record timestamp to its result written (churn: scored; cart: state updated and due carts scored)',
      buckets: [0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
      registers,
    });
    this.inference = new Histogram({
      name: 'sluice_inference_seconds',
      help: 'Time of one batched model call',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.inferenceRows = new Counter({ name: 'sluice_inference_rows_total', help: 'Feature rows scored', registers });
    this.checkpointSeconds = new Histogram({
      name: 'sluice_checkpoint_seconds',
      help: 'Time to write one partition checkpoint (serialise, fsync, rename)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.checkpointBytes = new Gauge({ name: 'sluice_checkpoint_bytes', help: 'Size of the last checkpoint of each partition', labelNames: ['partition'], registers });
    this.lastCheckpoint = new Gauge({ name: 'sluice_last_checkpoint_timestamp_seconds', help: 'Wall-clock time of the last checkpoint written', registers });
    this.checkpointFailures = new Counter({
      name: 'sluice_checkpoint_failures_total',
      help: 'Checkpoint writes that failed (volume full...): the previous checkpoint is kept and the partition waits until one succeeds',
      registers,
    });
    this.partitionCheckpoint = new Gauge({
      name: 'sluice_partition_checkpoint_timestamp_seconds',
      help: 'Wall-clock time of the last checkpoint of each partition this worker owns',
      labelNames: ['partition'],
      registers,
    });
    this.stalled = new Gauge({
      name: 'sluice_stalled',
      help: ' 1 while the worker waits on a dependency (on: redis, smtp, kafka, dlq; reason: RedisUnreachable, SmtpUnreachable...)',
      labelNames: ['on', 'reason'],
      registers,
    });
    this.deadLettersPending = new Gauge({
      name: 'sluice_dlq_pending',
      help: 'Malformed records kept beside the checkpoint (fsynced journal) because the dead-letter topic cannot be written (sent when it can)',
      registers,
    });
    this.retries = new Counter({ name: 'sluice_retries_total', help: 'Retries of a failed write, by target (redis, smtp, kafka)', labelNames: ['target'], registers });
    this.assigned = new Gauge({ name: 'sluice_assigned_partitions', help: 'Partitions this worker owns', registers });
    const busy = this.busy;
    new Counter({
      name: 'sluice_busy_seconds_total',
      help: 'Seconds this worker had a batch in hand (parse, state, model, Redis, dead letters; a throttled batch counts at least its share of a second at the cap): events in per busy second is its true processing rate',
      registers,
      collect() {
        this.reset();
        this.inc(busy.seconds);
      },
    });
    this.restores = new Counter({ name: 'sluice_partition_restores_total', help: 'Partitions restored from a checkpoint (or started afresh)', registers });
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }
}

/** Serves /metrics, /healthz (the process runs) and /readyz (`ready()` says so) on `host:port`. */
export async function startHealthServer(
  metrics: WorkerMetrics,
  ready: () => { ready: boolean; detail: string },
  port: number,
  host: string,
  status?: () => unknown,
): Promise<HttpEndpoint> {
  const bind = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const routes: Record<string, Route> = { '/metrics': metricsRoute(metrics.registry), ...probeRoutes(ready) };
  // The worker's own view as JSON: readiness, what it waits on, its partitions (read by `sluice run` and the operator).
  if (status) routes['/status'] = async () => ({ status: 200, body: `${JSON.stringify(status())}\n`, contentType: 'application/json' });
  try {
    return await serve(bind, routes, { notFound: 'not found: try /metrics, /healthz, /readyz or /status\n' });
  } catch (err) {
    throw new Error(`metrics.port: ${(err as Error).message}`);
  }
}
