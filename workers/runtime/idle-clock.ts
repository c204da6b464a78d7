/**
 * The idle clock: while a partition is caught up and quiet, its event time
 * follows the wall clock (after `idleAfterMs` of silence), so timers (cart
 * abandonment) fire without waiting for the next event. It is the only input
 * that does not come from Kafka, and it is checkpointed with the state.
 */
import type { PartitionState, StreamJob } from './job.js';
import type { Owned } from './partitions.js';

export class IdleClock<S extends PartitionState> {
  constructor(
    private readonly job: StreamJob<S, unknown>,
    private readonly idleAfterMs = 1_000,
  ) {}

  /** The partition made progress at wall time `now`: the clock starts again from its event time. */
  reset(o: Owned<S>, now: number): void {
    o.idleBase = { watermark: this.job.watermark(o.state), wall: now };
  }

  /** The event time to advance the partition to now, or undefined when it is not (yet) idle. */
  due(o: Owned<S>, now: number): number | undefined {
    const caughtUp = o.highWatermark >= 0 && o.nextOffset >= o.highWatermark;
    if (caughtUp && o.idleBase === undefined && this.job.watermark(o.state) >= 0) {
      // Restored while the topic is quiet: the idle clock starts now.
      this.reset(o, now);
    }
    const idleFor = o.idleBase ? now - o.idleBase.wall : 0;
    if (!caughtUp || !o.idleBase || idleFor < this.idleAfterMs) return undefined;
    return o.idleBase.watermark + idleFor;
  }
}
