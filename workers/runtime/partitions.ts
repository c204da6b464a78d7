/**
 * Partition ownership and restore: which partitions this member was assigned,
 * which of them it owns (state restored from the checkpoint, or fresh), why a
 * restore failed, and the lock that serialises the work on one partition.
 */
import type { Logger } from 'pino';
import { StateIncompatibleError } from '../state/format.js';
import type { PendingDeadLetter } from './dead-letters.js';
import type { CheckpointStore } from './checkpoint.js';
import type { PartitionState, StreamJob } from './job.js';
import type { WorkerMetrics } from './metrics.js';

export interface Owned<S extends PartitionState> {
  partition: number;
  state: S;
  /** First offset not in `state`; -1 when there was no checkpoint (take what the group offers). */
  nextOffset: number;
  /** The offset last sought back to because a batch started after `nextOffset` (said once in the log). */
  seekedTo: number | undefined;
  /** Why the last checkpoint write failed (volume full...), until one succeeds: /readyz says so. */
  checkpointError?: string;
  /** End of the partition as last seen (batch or admin), -1 when unknown. */
  highWatermark: number;
  dirty: boolean;
  lastCheckpointAt: number;
  /** Wall time of the last batch (or of the restore): a partition behind its end with no batch for long is sought again. */
  lastBatchAt: number;
  /** Next offset of the last durable checkpoint (-1: none), and the highest this owner committed to the group. */
  durable: number;
  committed: number;
  committing: boolean;
  /** Event time and wall time when the partition last had events, for the idle clock. */
  idleBase: { watermark: number; wall: number } | undefined;
  /** Dead letters the dead-letter topic did not take yet; durable in the journal beside the checkpoint (dead-letters.ts). */
  deadLetters: PendingDeadLetter[];
}

/** Serialises the work on one partition (batches, timers, checkpoints). */
export class PartitionLock {
  private tail: Promise<unknown> = Promise.resolve();
  private depth = 0;

  get busy(): boolean {
    return this.depth > 0;
  }

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.depth += 1;
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined).finally(() => (this.depth -= 1));
    return result;
  }
}

export interface PartitionsOptions<S extends PartitionState> {
  job: StreamJob<S, unknown>;
  checkpoints: CheckpointStore<S>;
  /** Moves the consumer's fetch position of a partition. */
  seek: (partition: number, offset: number) => void;
  metrics: WorkerMetrics;
  logger: Logger;
  /** A checkpoint holds state this job cannot use (another format): the worker must stop, never start the partition afresh. */
  onIncompatible?: (partition: number, err: StateIncompatibleError) => void;
  /** Dead letters still owed for a partition restored at `nextOffset` (kept while the DLQ could not be written). */
  pendingDeadLetters?: (partition: number, nextOffset: number) => PendingDeadLetter[];
}

export class Partitions<S extends PartitionState> {
  /** The full assignment of this member, as of the last rebalance. */
  assignment: number[] = [];
  joined = false;
  private readonly owned = new Map<number, Owned<S>>();
  private readonly locks = new Map<number, PartitionLock>();
  /** Why a partition could not be restored (a checkpoint of another job, unreadable...), for /readyz. */
  private readonly restoreErrors = new Map<number, string>();

  constructor(private readonly o: PartitionsOptions<S>) {}

  lock(partition: number): PartitionLock {
    let l = this.locks.get(partition);
    if (!l) {
      l = new PartitionLock();
      this.locks.set(partition, l);
    }
    return l;
  }

  all(): Owned<S>[] {
    return [...this.owned.values()];
  }

  has(partition: number): boolean {
    return this.owned.has(partition);
  }

  /** Still the owner of this very state (not revoked, not dropped for a replay). */
  holds(o: Owned<S>): boolean {
    return this.owned.get(o.partition) === o;
  }

  /** Forgets the state (revoked, or to be restored from its checkpoint and replayed); a disk-backed store's files go too. */
  drop(partition: number): void {
    const o = this.owned.get(partition);
    if (!o) return;
    this.owned.delete(partition);
    // A checkpoint of it still being written must not land after its next owner (or this one, restoring) read the directory.
    this.o.checkpoints.abandon(partition);
    o.state.table.dispose().catch((err: Error) => this.o.logger.warn({ partition, err: err.message }, 'could not remove the local state store'));
  }

  /** Forgets every partition (shutdown, once the last checkpoints are written). */
  dropAll(): void {
    for (const p of [...this.owned.keys()]) this.drop(p);
  }

  /** A (re)join: revoked partitions are forgotten (their new owner restores them), new ones restored in the background. */
  assign(partitions: number[]): void {
    const before = new Set([...this.assignment, ...this.owned.keys()]);
    this.assignment = partitions;
    this.joined = true;
    for (const p of before) {
      if (partitions.includes(p)) continue;
      // Revoked: the new owner restores from the checkpoint written when the rebalance began.
      this.drop(p);
      // Its series go with it, owned or not: the new owner reports them (a stale one would show two owners).
      for (const g of [this.o.metrics.lag, this.o.metrics.position, this.o.metrics.partitionCheckpoint, this.o.metrics.checkpointBytes]) g.remove({ partition: String(p) });
    }
    this.o.metrics.assigned.set(partitions.length);
    this.o.logger.info({ partitions }, 'partitions assigned');
    for (const p of partitions) {
      if (!this.owned.has(p)) this.restoreInBackground(p);
    }
  }

  /** Assigned partitions not owned (a failed restore, a dropped state) are restored again. */
  restoreMissing(): void {
    for (const p of this.assignment) {
      if (!this.owned.has(p) && !this.lock(p).busy) this.restoreInBackground(p);
    }
  }

  restoreInBackground(partition: number): void {
    void this.lock(partition)
      // Revoked while it waited for the lock: its new owner restores it (restoring here would report it twice).
      .run(() => (this.assignment.includes(partition) ? this.ensureOwned(partition) : undefined))
      .then(() => this.restoreErrors.delete(partition))
      .catch((err: Error) => {
        if (this.restoreErrors.get(partition) !== err.message) this.o.logger.error({ partition, err: err.message }, 'restore failed; retrying');
        this.restoreErrors.set(partition, err.message);
        // Never start such a partition from zero behind the user's back: stop and say what to do.
        if (err instanceof StateIncompatibleError) this.o.onIncompatible?.(partition, err);
      });
  }

  ensureOwned(partition: number): Owned<S> {
    const existing = this.owned.get(partition);
    if (existing) return existing;
    const cp = this.o.checkpoints.load(partition);
    const owned: Owned<S> = {
      partition,
      state: cp ? cp.state : this.o.job.newState(),
      nextOffset: cp ? cp.nextOffset : -1,
      seekedTo: undefined,
      highWatermark: -1,
      dirty: false,
      lastCheckpointAt: Date.now(),
      lastBatchAt: Date.now(),
      idleBase: undefined,
      durable: cp ? cp.nextOffset : -1,
      committed: -1,
      committing: false,
      deadLetters: this.o.pendingDeadLetters?.(partition, cp ? cp.nextOffset : -1) ?? [],
    };
    if (cp) this.o.seek(partition, cp.nextOffset);
    this.owned.set(partition, owned);
    if (owned.nextOffset >= 0) this.o.metrics.position.set({ partition: String(partition) }, owned.nextOffset);
    this.o.metrics.restores.inc();
    this.o.logger.info(
      { partition, nextOffset: owned.nextOffset, users: owned.state.table.size, checkpoint: cp ? new Date(cp.savedAt).toISOString() : null, read: cp?.detail, pendingDeadLetters: owned.deadLetters.length || undefined },
      cp ? 'partition restored from checkpoint' : 'partition starts without checkpoint',
    );
    return owned;
  }

  /** Undefined when every assigned partition is owned; else what /readyz says. */
  pendingDetail(): string | undefined {
    const pending = this.assignment.filter((p) => !this.owned.has(p));
    if (!pending.length) return undefined;
    const errors = pending.filter((p) => this.restoreErrors.has(p)).map((p) => `partition ${p}: ${this.restoreErrors.get(p)}`);
    return `restoring partitions ${pending.join(',')}${errors.length ? `; failing: ${errors.join('; ')}` : ''}`;
  }

  /**
   * The consumer can resume a partition from the group's committed offset
   * although its checkpoint (restored from a snapshot, or reset) is behind it;
   * then no batch comes while the partition is behind its end. Seek to the
   * checkpoint's offset again.
   */
  reseekIfStuck(o: Owned<S>, now: number): void {
    if (o.nextOffset < 0 || o.highWatermark <= o.nextOffset || now - o.lastBatchAt < 3_000) return;
    this.o.logger.info({ partition: o.partition, nextOffset: o.nextOffset, end: o.highWatermark }, 'no records while behind the end of the partition: seeking to the checkpoint offset again');
    this.o.seek(o.partition, o.nextOffset);
    o.lastBatchAt = now;
  }

  /** Partitions owned now and the offset each resumes from, for tests and status. */
  positions(): Map<number, number> {
    return new Map(this.all().map((o) => [o.partition, o.nextOffset]));
  }
}
