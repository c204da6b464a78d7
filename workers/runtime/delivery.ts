/**
 * Delivery with retry: a batch's results go out in a fixed order (dead letters,
 * user hashes, then the job's own outputs), each retried with backoff until it
 * lands or the worker stops. While it retries the worker reads nothing new:
 * that is the backpressure when Redis, SMTP or the DLQ topic is down.
 */
import type { Logger } from 'pino';
import type { JobOutputs, OutputStage } from './job.js';
import type { WorkerMetrics } from './metrics.js';
import { retryUntilDone, type RetryOptions } from './retry.js';
import { stallOf, type Stalls, type StallTarget } from './stalls.js';
import type { ResultSink } from './sink.js';

export interface DeliveryOptions<E> {
  sink: ResultSink;
  output?: OutputStage<E>;
  metrics: WorkerMetrics;
  logger: Logger;
  /** True once the worker stops: a retry in progress gives up (StoppedError). */
  shouldStop?: () => boolean;
  /** Says what the worker waits on while a write fails (logs once per change, gauge, /status). */
  stalls?: Stalls;
}

/** What a success of each target proves answers again. */
const ANSWERS: Record<string, StallTarget[]> = { redis: ['redis'], kafka: ['dlq'] };

export class Delivery<E> {
  constructor(private readonly o: DeliveryOptions<E>) {}

  retryOptions(target: string, between?: () => Promise<void>): RetryOptions {
    const stalls = this.o.stalls;
    return {
      target,
      logger: this.o.logger,
      between,
      shouldStop: this.o.shouldStop,
      onRetry: () => this.o.metrics.retries.inc({ target }),
      onFailure: stalls
        ? (err) => {
            const s = stallOf(target, err);
            stalls.set(s.on, s.reason, err instanceof Error ? err.message : String(err));
          }
        : undefined,
      // A job's own output stage (cart alerts) touches Redis and SMTP: its success proves both.
      onSuccess: stalls ? () => (ANSWERS[target] ?? ['redis', 'smtp']).forEach((on) => stalls.clear(on)) : undefined,
    };
  }

  /** Runs `send` (the dead letters of a batch) until it succeeds. */
  async deadLetters(send: () => Promise<void>, between?: () => Promise<void>): Promise<void> {
    await retryUntilDone(send, this.retryOptions('kafka', between));
  }

  /** The user hashes, then the job's own outputs; `between` runs between steps (the Kafka heartbeat). */
  async deliver(outputs: JobOutputs<E>, between?: () => Promise<void>): Promise<void> {
    const { metrics, sink, output } = this.o;
    if (outputs.scoredRows > 0) {
      metrics.inference.observe(outputs.inferenceMs / 1000);
      metrics.inferenceRows.inc(outputs.scoredRows);
    }
    if (outputs.writes.length) {
      await retryUntilDone(() => sink.writeUsers(outputs.writes), this.retryOptions('redis', between));
      metrics.eventsOut.inc(outputs.writes.length);
      await between?.();
    }
    if (outputs.emits.length && output) {
      await retryUntilDone(() => output.deliver(outputs.emits, between), this.retryOptions(output.target, between));
      metrics.eventsOut.inc(outputs.emits.length);
    }
  }
}
