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

  /** Busy time that was not spent as wall time (a throttled batch's share passed on saved-up credit). */
  credit(ms: number): void {
    if (ms > 0) this.total += ms;
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

/** How much of its share of a second a throttled worker may save up while it waits for a fetch or for input. */
export const BURST_MS = 1_000;

/**
 * Paces a worker to at most `perSecond` events on average: every event takes
 * 1/perSecond of a second of the worker's time. The time between two batches
 * (the fetch of the next one, or no input) is saved as credit, up to `burstMs`,
 * and a batch spends it before it waits: a saturated worker then reaches its
 * cap whatever its fetches take, instead of losing the round trip between every
 * two paced batches (it cannot go faster: credit only grows while the worker
 * has no batch). A batch that passes on credit still counts its whole share as
 * busy time (`take` returns what to add), so that events per busy second is the
 * cap, saturated or not: the autoscaler measures the worker the cap makes it,
 * never the faster machine under it.
 */
export class EventPacer {
  /** Saved-up time between batches, at most burstMs; the bucket starts empty. */
  private creditMs = 0;
  /** When the last batch was let through (performance.now() time). */
  private lastEnd: number | undefined;
  /** Batches being paced now, and when the last of them has had its time (a batch that overlaps them waits after it). */
  private inFlight = 0;
  private nextFree = 0;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    private readonly burstMs: number = BURST_MS,
  ) {
    if (!(perSecond > 0)) throw new Error(`the events-per-second cap must be positive, got ${perSecond}`);
  }

  /**
   * Resolves when `events` more events fit under the cap, `since` being when
   * the work on them began (so the work itself is part of their 1/perSecond
   * each, not added to it). A long wait is slept in slices of at most a second
   * with `between` after each (the consumer's heartbeat: a throttled worker must
   * stay in its group, and a rebalance must not wait for it). Returns the
   * milliseconds of the batch's share it passed on credit: busy time the caller
   * adds to the batch's own (so that a batch counts max(its share, its work)).
   */
  async take(events: number, options: { since?: number; between?: () => Promise<void> } = {}): Promise<number> {
    if (events <= 0) return 0;
    const { between } = options;
    const since = options.since ?? this.now();
    const share = (events / this.perSecond) * 1000;
    if (this.lastEnd !== undefined) this.creditMs = Math.min(this.burstMs, this.creditMs + Math.max(0, since - this.lastEnd));
    const offered = Math.min(this.creditMs, share);
    const until = (this.inFlight > 0 ? Math.max(this.nextFree, since - offered) : since - offered) + share;
    this.nextFree = until;
    this.inFlight++;
    try {
      for (let wait = until - this.now(); wait > 0; wait = until - this.now()) {
        await this.sleep(Math.min(wait, SLICE_MS));
        if (until - this.now() > 0) await between?.();
      }
    } finally {
      this.inFlight--;
    }
    const end = this.now();
    // Credit the work did not need (it took longer than the share less the credit) stays saved.
    const used = Math.min(offered, Math.max(0, share - (end - since)));
    this.creditMs -= used;
    this.lastEnd = Math.max(this.lastEnd ?? end, end);
    return used;
  }
}
