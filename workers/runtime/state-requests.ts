/**
 * The worker's side of the checkpoint volume's control channel (control.ts):
 * a heartbeat file that says this member runs and which partitions it owns
 * (the state tasks refuse to restore under a running job), and the snapshot
 * requests it answers by writing every partition it owns, between two
 * batches, into the snapshot's directory.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { writeBase } from '../state/checkpoints.js';
import { heartbeat, HEARTBEAT_MS, leave, snapshotDir, snapshotPartitionsDir, snapshotRequests, writeJsonFile, type SnapshotRequest } from './control.js';
import type { PartitionState, StreamJob } from './job.js';
import type { Owned, Partitions } from './partitions.js';

export interface StateRequestsOptions<S extends PartitionState> {
  /** The checkpoint volume's root (checkpoint.dir). */
  root: string;
  topic: string;
  /** This member's name in the heartbeat files (a file name). */
  memberId: string;
  job: StreamJob<S, unknown>;
  partitions: Partitions<S>;
  logger: Logger;
}

/** A member's default name: host and pid, as a file name. */
export const defaultMemberId = (): string => `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '_');

export class StateRequests<S extends PartitionState> {
  private lastHeartbeatAt = 0;
  private lastRequestsAt = 0;
  /** Snapshot partitions already written by this member, `<name>/<partition>`. */
  private readonly snapshotted = new Set<string>();

  constructor(private readonly o: StateRequestsOptions<S>) {}

  /** Periodic work: the heartbeat every HEARTBEAT_MS, the snapshot requests every second. */
  tick(now: number): void {
    this.beat(now);
    this.serveSnapshotRequests(now);
  }

  /** This member leaves the volume (shutdown): its heartbeat file goes. */
  leave(): void {
    leave(this.o.root, this.o.memberId);
  }

  private beat(now: number): void {
    if (now - this.lastHeartbeatAt < HEARTBEAT_MS) return;
    this.lastHeartbeatAt = now;
    try {
      heartbeat(this.o.root, { id: this.o.memberId, pid: process.pid, host: hostname(), at: now, partitions: this.o.partitions.all().map((p) => p.partition) });
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'cannot write heartbeat on the checkpoint volume');
    }
  }

  /**
   * Every partition this member owns is written between two batches (under the
   * partition's lock), its whole state and next offset as one base, into the
   * snapshot's directory. The table is read, not cut: the live checkpoints go
   * on undisturbed.
   */
  private serveSnapshotRequests(now: number): void {
    if (now - this.lastRequestsAt < 1_000) return;
    this.lastRequestsAt = now;
    let requests: SnapshotRequest[];
    try {
      requests = snapshotRequests(this.o.root);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'cannot read snapshot requests');
      return;
    }
    for (const { name } of requests) {
      const dir = snapshotPartitionsDir(snapshotDir(this.o.root, name));
      for (const owned of this.o.partitions.all()) this.snapshotPartition(name, dir, owned);
    }
  }

  private snapshotPartition(name: string, dir: string, owned: Owned<S>): void {
    const key = `${name}/${owned.partition}`;
    if (this.snapshotted.has(key)) return;
    this.snapshotted.add(key);
    const { job, partitions, logger } = this.o;
    void partitions
      .lock(owned.partition)
      .run(() => {
        if (!partitions.holds(owned)) {
          this.snapshotted.delete(key);
          return;
        }
        const started = performance.now();
        const id = { jobType: job.type, topic: this.o.topic, partition: owned.partition, format: job.stateFormat };
        const written = writeBase(dir, id, owned.state.table, job.meta(owned.state), owned.nextOffset);
        // Written last: its presence says the partition is complete.
        writeJsonFile(`${dir}/${owned.partition}.json`, { partition: owned.partition, nextOffset: owned.nextOffset, modelVersion: job.modelVersion, savedAt: Date.now(), ...written });
        logger.info({ snapshot: name, partition: owned.partition, nextOffset: owned.nextOffset, users: written.users, ms: Math.round(performance.now() - started) }, 'partition written to snapshot');
      })
      .catch((err: Error) => {
        this.snapshotted.delete(key);
        logger.error({ snapshot: name, partition: owned.partition, err: err.message }, 'cannot write partition snapshot');
      });
  }
}
