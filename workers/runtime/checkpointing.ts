/**
 * Checkpoint scheduling: when a partition's state and position are written
 * (every `intervalMs` after progress, in the background; synchronously on
 * rebalance and shutdown) and the group's committed offsets that follow them.
 * What a checkpoint is (a base and deltas, docs/checkpoints.md) is checkpoint.ts's.
 */
import type { Logger } from 'pino';
import type { CheckpointOutcome, CheckpointStore } from './checkpoint.js';
import type { PartitionState } from './job.js';
import type { WorkerMetrics } from './metrics.js';
import type { Owned } from './partitions.js';

export interface CheckpointingOptions<S extends PartitionState> {
  store: CheckpointStore<S>;
  /** Still the owner of this state: a revoked or dropped partition is never written. */
  holds: (o: Owned<S>) => boolean;
  /** Records the offsets as the group's committed position (secondary to the checkpoint). */
  commit: (offsets: Array<{ partition: number; offset: number }>) => Promise<void>;
  intervalMs: number;
  metrics: WorkerMetrics;
  logger: Logger;
}

export class Checkpointing<S extends PartitionState> {
  constructor(private readonly o: CheckpointingOptions<S>) {}

  /**
   * After progress or on a tick, once the interval has passed: cut now, encoded
   * and written in the background; Kafka's committed offset follows when it is durable.
   */
  maybe(owned: Owned<S>, now: number): void {
    if (!owned.dirty || now - owned.lastCheckpointAt < this.o.intervalMs) return;
    if (!this.o.holds(owned) || owned.nextOffset < 0) return;
    const started = this.o.store.begin(owned.partition, owned.state, owned.nextOffset);
    // One in flight still: the next batch or tick tries again.
    if (!started) return;
    owned.dirty = false;
    owned.lastCheckpointAt = now;
    started
      .then((done) => {
        if (!done) return;
        this.checkpointed(owned, done);
        return this.o
          .commit([{ partition: owned.partition, offset: done.nextOffset }])
          .catch((err: Error) => this.o.logger.debug({ partition: owned.partition, err: err.message }, 'offset commit failed (the checkpoint is what counts)'));
      })
      .catch((err: Error) => {
        // Nothing new is durable: the next checkpoint covers these changes too.
        if (this.o.holds(owned)) owned.dirty = true;
        this.o.logger.error({ partition: owned.partition, err: err.message, dir: this.o.store.dir }, 'checkpoint failed; retrying at the next interval');
      });
  }

  /** Checkpoints synchronously (rebalance, shutdown): see CheckpointStore.saveNow. */
  save(owned: Owned<S>): void {
    if (!this.o.holds(owned) || owned.nextOffset < 0) return;
    const done = this.o.store.saveNow(owned.partition, owned.state, owned.nextOffset);
    owned.dirty = false;
    owned.lastCheckpointAt = Date.now();
    this.checkpointed(owned, done);
  }

  /** A checkpoint of the partition is being written in the background. */
  inFlight(partition: number): boolean {
    return this.o.store.inFlight(partition);
  }

  /** Waits for the partition's checkpoint in flight, if any. */
  settled(partition: number): Promise<void> {
    return this.o.store.settled(partition);
  }

  private checkpointed(owned: Owned<S>, done: CheckpointOutcome): void {
    const { metrics } = this.o;
    metrics.checkpointSeconds.observe(done.ms / 1000);
    metrics.checkpointBytes.set({ partition: String(owned.partition) }, done.bytes);
    metrics.lastCheckpoint.set(Date.now() / 1000);
  }
}
