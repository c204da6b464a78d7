/**
 * The processing stage, the same for the Kafka worker and the in-process
 * runner (`sluice demo`): parse records into events, fold them into the
 * partition's state and score what became due (one model call), then deliver.
 */
import { parseEvent } from '../events/validate.js';
import type { UserEvent } from '../events/types.js';
import type { EventPacer } from './busy.js';
import type { Delivery } from './delivery.js';
import type { JobOutputs, PartitionState, StreamJob } from './job.js';
import type { WorkerMetrics } from './metrics.js';

/** A record's value and when it was produced (broker or producer timestamp, epoch ms). */
export interface RawRecord {
  value: Buffer | null;
  timestamp: number;
}

export interface ParsedBatch<R> {
  events: UserEvent[];
  /** The timestamp of each valid record, for event-to-score latency. */
  timestamps: number[];
  /** Records that are not events, with the validator's reason. */
  invalid: Array<{ record: R; reason: string }>;
}

/** How far ahead of the worker's clock an event may be dated when the config does not say (eventTime.maxFutureSkewSeconds). */
export const DEFAULT_MAX_FUTURE_SKEW_SECONDS = 300;

/** The dead-letter reason of an event dated too far ahead. */
export function futureReason(eventTime: number, now: number, skewMs: number): string {
  const ahead = eventTime - now;
  const human = ahead >= 2 * 86_400_000 ? `${Math.round(ahead / 86_400_000)} days` : ahead >= 7_200_000 ? `${Math.round(ahead / 3_600_000)} hours` : `${Math.round(ahead / 1000)} s`;
  return (
    `event_time: ${new Date(eventTime).toISOString()} is ${human} ahead of the worker's clock (${new Date(now).toISOString()}), ` +
    `more than the allowed ${skewMs / 1000} s (eventTime.maxFutureSkewSeconds): it would move the partition's event time; check the producer's clock`
  );
}

/** Events dated later than `now + maxFutureSkewMs` are refused (the Kafka worker's clock bound). */
export interface FutureBound {
  now: number;
  maxFutureSkewMs: number;
}

/**
 * Records into events; a record that is not an event, or (with `bound`) an
 * event dated beyond the worker's clock plus the allowed skew, is invalid with
 * its reason. One producer with a wrong clock must not move the partition's
 * event time (a churn rescoring of every user, cart timers firing early).
 */
export function parseRecords<R extends RawRecord>(records: readonly R[], bound?: FutureBound): ParsedBatch<R> {
  const batch: ParsedBatch<R> = { events: [], timestamps: [], invalid: [] };
  const latest = bound ? bound.now + bound.maxFutureSkewMs : Infinity;
  for (const record of records) {
    const parsed = parseEvent(record.value);
    if (!parsed.ok) batch.invalid.push({ record, reason: parsed.reason });
    else if (parsed.event.eventTime > latest) batch.invalid.push({ record, reason: futureReason(parsed.event.eventTime, bound!.now, bound!.maxFutureSkewMs) });
    else {
      batch.events.push(parsed.event);
      batch.timestamps.push(record.timestamp);
    }
  }
  return batch;
}

export class Processor<S extends PartitionState, E> {
  constructor(
    readonly job: StreamJob<S, E>,
    private readonly delivery: Delivery<E>,
    private readonly metrics: WorkerMetrics,
    /** spec.throttle: a worker made slow on purpose (demos, tests); its wait is part of the batch. */
    private readonly pacer?: EventPacer,
  ) {}

  /**
   * One batch: `consumed` records counted in, the events folded into `state`,
   * then (after `beforeDelivery`, the dead letters) the results delivered.
   * Throws when delivery gives up: `state` has then moved past what landed.
   * A throttled worker then waits until the batch, delivery included, fits its
   * 1/rate of a second per record on the pacer's schedule (`between` runs during
   * the wait); the part of that share it passed on credit saved up before the
   * batch counts as busy time too: events per busy second is then exactly the cap.
   */
  async process(
    state: S,
    events: readonly UserEvent[],
    options: { consumed?: number; between?: () => Promise<void>; beforeDelivery?: () => Promise<void> } = {},
  ): Promise<JobOutputs<E>> {
    const began = performance.now();
    const consumed = options.consumed ?? events.length;
    this.metrics.eventsIn.inc(consumed);
    const outputs = await this.job.process(state, events);
    await options.between?.();
    await options.beforeDelivery?.();
    await this.delivery.deliver(outputs, options.between);
    if (this.pacer) this.metrics.busy.credit(await this.pacer.take(consumed, { since: began, between: options.between }));
    return outputs;
  }

  /** Event time moved to `watermark` without events: fire and deliver what became due; true when anything came out. */
  async advance(state: S, watermark: number, between?: () => Promise<void>): Promise<boolean> {
    const outputs = await this.job.advanceTo(state, watermark);
    if (!outputs.writes.length && !outputs.emits.length) return false;
    await this.delivery.deliver(outputs, between);
    return true;
  }
}
