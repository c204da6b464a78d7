/**
 * The processing stage, the same for the Kafka worker and the in-process
 * runner (`sluice demo`): parse records into events, fold them into the
 * partition's state and score what became due (one model call), then deliver.
 */
import { parseEvent } from '../events/validate.js';
import type { UserEvent } from '../events/types.js';
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

export function parseRecords<R extends RawRecord>(records: readonly R[]): ParsedBatch<R> {
  const batch: ParsedBatch<R> = { events: [], timestamps: [], invalid: [] };
  for (const record of records) {
    const parsed = parseEvent(record.value);
    if (parsed.ok) {
      batch.events.push(parsed.event);
      batch.timestamps.push(record.timestamp);
    } else {
      batch.invalid.push({ record, reason: parsed.reason });
    }
  }
  return batch;
}

export class Processor<S extends PartitionState, E> {
  constructor(
    readonly job: StreamJob<S, E>,
    private readonly delivery: Delivery<E>,
    private readonly metrics: WorkerMetrics,
  ) {}

  /**
   * One batch: `consumed` records counted in, the events folded into `state`,
   * then (after `beforeDelivery`, the dead letters) the results delivered.
   * Throws when delivery gives up: `state` has then moved past what landed.
   */
  async process(
    state: S,
    events: readonly UserEvent[],
    options: { consumed?: number; between?: () => Promise<void>; beforeDelivery?: () => Promise<void> } = {},
  ): Promise<JobOutputs<E>> {
    this.metrics.eventsIn.inc(options.consumed ?? events.length);
    const outputs = await this.job.process(state, events);
    await options.between?.();
    await options.beforeDelivery?.();
    await this.delivery.deliver(outputs, options.between);
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
