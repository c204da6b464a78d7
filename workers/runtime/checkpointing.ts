/**
 * Checkpoint scheduling: when a partition's state and position are written
 * (every `intervalMs` after progress, in the background; synchronously on
 * rebalance and shutdown), what a failed write means (the previous checkpoint
 * is kept, /readyz and sluice_checkpoint_failures_total say so until one
 * succeeds), and the group's committed offsets that follow the durable
 * checkpoints. What a checkpoint is (a base and deltas, docs/checkpoints.md)
 * is checkpoint.ts's.
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
  /** Records the offsets as the group's committed position (secondary to the checkpoint); undefined: no consumer yet. */
  commit: (offsets: Array<{ partition: number; offset: number }>) => Promise<void> | undefined;
  intervalMs: number;
  metrics: WorkerMetrics;
  logger: Logger;
}

/** What a failed checkpoint write says in /readyz and the log: a full volume by name, with what to do. */
export function checkpointFailure(err: Error & { code?: string }): string {
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT' || /ENOSPC|no space left/i.test(err.message)) {
    return `checkpoint volume full (${err.message}): free space on it or enlarge it (spec.checkpoint.size); the previous checkpoint is kept`;
  }
  return `checkpoint write failed (${err.message}); the previous checkpoint is kept`;
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
        owned.durable = Math.max(owned.durable, done.nextOffset);
        return this.commitDurable(owned);
      })
      .catch((err: Error) => {
        // Nothing new is durable: the next checkpoint covers these changes too.
        if (this.o.holds(owned)) owned.dirty = true;
        this.failed(owned, err);
      });
  }

  /** Checkpoints synchronously (rebalance, shutdown): see CheckpointStore.saveNow. */
  save(owned: Owned<S>): void {
    if (!this.o.holds(owned) || owned.nextOffset < 0) return;
    let done: CheckpointOutcome;
    try {
      done = this.o.store.saveNow(owned.partition, owned.state, owned.nextOffset);
    } catch (err) {
      // The rebalance path cannot wait: the partition's new owner restores the previous checkpoint and replays.
      owned.checkpointError = checkpointFailure(err as Error);
      this.o.metrics.checkpointFailures.inc();
      this.o.logger.error({ partition: owned.partition, err: (err as Error).message }, owned.checkpointError);
      return;
    }
    owned.dirty = false;
    owned.lastCheckpointAt = Date.now();
    owned.durable = Math.max(owned.durable, done.nextOffset);
    this.checkpointed(owned, done);
  }

  /**
   * Brings the group's committed offset up to the last durable checkpoint. The
   * checkpoint is what counts, but the committed offsets are what the operator
   * (status.consumerLag) and Kafka's tools see: a checkpoint written at a
   * rebalance, one restored by a new owner, or a commit that failed during a
   * rebalance, would otherwise leave them behind until the next event, which on
   * a quiet topic never comes. Retried from the periodic work until it lands.
   */
  commitDurable(owned: Owned<S>): Promise<void> | undefined {
    // Kafka takes a commit from any member of the generation: one for a partition now read by another member would put the group ahead of that member's checkpoint.
    if (!this.o.holds(owned)) return undefined;
    if (owned.committing || owned.durable < 0 || owned.durable <= owned.committed) return undefined;
    const offset = owned.durable;
    const committing = this.o.commit([{ partition: owned.partition, offset }]);
    if (!committing) return undefined;
    owned.committing = true;
    return committing
      .then(() => {
        owned.committed = Math.max(owned.committed, offset);
      })
      .catch((err: Error) => this.o.logger.debug({ partition: owned.partition, err: err.message }, 'offset commit failed (the checkpoint is what counts; retried)'))
      .finally(() => {
        owned.committing = false;
      });
  }

  /** Undefined while every partition's checkpoints are written; else what /readyz says. */
  failingDetail(owned: readonly Owned<S>[]): string | undefined {
    const failing = owned.filter((o) => o.checkpointError);
    if (!failing.length) return undefined;
    return `checkpoints failing for partitions ${failing.map((o) => o.partition).join(',')}: ${failing[0]!.checkpointError}`;
  }

  /** A checkpoint of the partition is being written in the background. */
  inFlight(partition: number): boolean {
    return this.o.store.inFlight(partition);
  }

  /** Waits for the partition's checkpoint in flight, if any. */
  settled(partition: number): Promise<void> {
    return this.o.store.settled(partition);
  }

  private failed(owned: Owned<S>, err: Error): void {
    const why = checkpointFailure(err);
    this.o.metrics.checkpointFailures.inc();
    if (owned.checkpointError !== why) this.o.logger.error({ partition: owned.partition, err: err.message, dir: this.o.store.dir }, `${why}; retrying at the next interval`);
    owned.checkpointError = why;
  }

  private checkpointed(owned: Owned<S>, done: CheckpointOutcome): void {
    if (owned.checkpointError) this.o.logger.info({ partition: owned.partition, nextOffset: done.nextOffset }, 'checkpoint written again');
    owned.checkpointError = undefined;
    const { metrics } = this.o;
    metrics.checkpointSeconds.observe(done.ms / 1000);
    metrics.lastCheckpoint.set(Date.now() / 1000);
    // A checkpoint that ends after the partition moved: its series belong to the new owner.
    if (!this.o.holds(owned)) return;
    metrics.checkpointBytes.set({ partition: String(owned.partition) }, done.bytes);
    metrics.partitionCheckpoint.set({ partition: String(owned.partition) }, Date.now() / 1000);
  }
}
