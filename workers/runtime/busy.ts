/**
 * What the autoscaler needs from a worker besides its counters: how long it was
 * busy (a batch in hand), so that events / busy seconds is its true processing
 * rate whatever the load; and, for demos and tests, a cap on its events per
 * second that makes it look like a slower worker.
 */

/**
 * Wall time during which at least one piece of work is in progress. Batches of
 * several partitions overlap: their union counts once, as the worker was busy
 * once.
 */
export class BusyClock {
  private depth = 0;
  private since = 0;
  private total = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Busy seconds so far, the work in progress included. */
  get seconds(): number {
    return (this.total + (this.depth > 0 ? this.now() - this.since : 0)) / 1000;
  }

  async time<T>(work: () => Promise<T>): Promise<T> {
    if (this.depth++ === 0) this.since = this.now();
    try {
      return await work();
    } finally {
      if (--this.depth === 0) this.total += this.now() - this.since;
    }
  }
}

/** The longest sleep of a throttled batch between two heartbeats. */
const SLICE_MS = 1_000;

/**
 * Paces a worker to at most `perSecond` events: every event takes 1/perSecond
 * of a second of the worker's time, spread across its partitions. Waiting here
 * is part of the batch, so it counts as busy time: the worker looks exactly as
 * fast as the cap, to the autoscaler as to the lag.
 */
export class EventPacer {
  private nextFree = 0;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    if (!(perSecond > 0)) throw new Error(`the events-per-second cap must be positive, got ${perSecond}`);
  }

  /**
   * Resolves when `events` more events fit under the cap, `since` being when
   * the work on them began (so the work itself is part of their 1/perSecond
   * each, not added to it). A long wait is slept in slices of at most a second
   * with `between` after each (the consumer's heartbeat: a throttled worker must
   * stay in its group, and a rebalance must not wait for it).
   */
  async take(events: number, options: { since?: number; between?: () => Promise<void> } = {}): Promise<void> {
    if (events <= 0) return;
    const { between } = options;
    const start = Math.max(options.since ?? this.now(), this.nextFree);
    this.nextFree = start + (events / this.perSecond) * 1000;
    for (let wait = this.nextFree - this.now(); wait > 0; wait = this.nextFree - this.now()) {
      await this.sleep(Math.min(wait, SLICE_MS));
      if (this.nextFree - this.now() > 0) await between?.();
    }
  }
}
