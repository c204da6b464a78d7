import type { Logger } from 'pino';

export class StoppedError extends Error {
  override readonly name = 'StoppedError';
}

export interface RetryOptions {
  /** What is being retried, for logs and the retries metric (redis, smtp, kafka). */
  target: string;
  logger: Logger;
  onRetry?: () => void;
  /** Called between attempts; may throw (a rebalance) to give up on this work. */
  between?: () => Promise<void>;
  shouldStop?: () => boolean;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Each failed attempt (a stall tracker logs it once per change; without one, attempts 1, 10, 20... are logged). */
  onFailure?: (err: unknown) => void;
  /** Every success (a stall tracker clears the stall). */
  onSuccess?: () => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits `delay` ms, checking every 250 ms whether the worker stops. */
async function pause(delay: number, o: RetryOptions): Promise<void> {
  const until = Date.now() + delay;
  while (Date.now() < until) {
    if (o.shouldStop?.()) throw new StoppedError(`stopped while retrying a ${o.target} write`);
    await sleep(Math.min(250, until - Date.now()));
  }
}

/**
 * Retries `op` until it succeeds, with exponential backoff. While it retries,
 * the caller does not consume: that is the backpressure when Redis or SMTP is
 * down. It gives up only when told to stop or when `between` throws.
 */
export async function retryUntilDone<T>(op: () => Promise<T>, o: RetryOptions): Promise<T> {
  let delay = o.initialDelayMs ?? 100;
  const max = o.maxDelayMs ?? 5_000;
  for (let attempt = 1; ; attempt++) {
    try {
      const done = await op();
      o.onSuccess?.();
      return done;
    } catch (err) {
      if (err instanceof StoppedError) throw err;
      o.onRetry?.();
      o.onFailure?.(err);
      const level = !o.onFailure && (attempt === 1 || attempt % 10 === 0) ? 'warn' : 'debug';
      o.logger[level]({ target: o.target, attempt, err: (err as Error).message, retryInMs: delay }, `${o.target} write failed; retrying (consumption paused)`);
      await pause(delay, o);
      await o.between?.();
      delay = Math.min(max, delay * 2);
    }
  }
}
