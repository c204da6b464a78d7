/**
 * Checkpoints of one consumer group on one topic, under
 * `<dir>/<group>/<topic>/<partition>/`: per partition, incremental
 * checkpoints (a base and deltas of the users changed, named by a manifest
 * with the next offset) written in the background, so that state and
 * position move together without stopping the stream (workers/state/checkpoints.ts,
 * docs/checkpoints.md). A partition checkpointed by an older Sluice
 * (`<partition>.json`, format version 1) is restored from that file once, and
 * continues in the new format.
 */
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointDirOf } from '../../lib/worker-config/names.js';
import type { PartitionState, StreamJob } from './job.js';
import { CheckpointError, DEFAULT_POLICY, IoGate, PartitionCheckpoints, type CheckpointOutcome } from '../state/checkpoints.js';

export { CheckpointError, type CheckpointOutcome } from '../state/checkpoints.js';

export interface RestoredPartition<S> {
  state: S;
  /** The first offset not reflected in `state`. */
  nextOffset: number;
  /** Wall-clock time of the checkpoint, epoch ms. */
  savedAt: number;
  detail: string;
}

export class CheckpointStore<S extends PartitionState = PartitionState> {
  readonly dir: string;
  private readonly partitions = new Map<number, PartitionCheckpoints>();
  /** The worker's partitions write one at a time. */
  private readonly gate = new IoGate();

  constructor(
    root: string,
    group: string,
    private readonly topic: string,
    private readonly job: StreamJob<S>,
  ) {
    this.dir = checkpointDirOf(root, group, topic);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new CheckpointError(`checkpoint.dir: cannot create ${this.dir}: ${(err as Error).message}`);
    }
  }

  private of(partition: number): PartitionCheckpoints {
    let p = this.partitions.get(partition);
    if (!p) {
      p = new PartitionCheckpoints(this.dir, { jobType: this.job.type, topic: this.topic, partition, format: this.job.stateFormat }, DEFAULT_POLICY, this.gate);
      this.partitions.set(partition, p);
    }
    return p;
  }

  /** The partition's newest consistent checkpoint, or undefined when it has none. */
  load(partition: number): RestoredPartition<S> | undefined {
    const got = this.of(partition).load(() => this.job.newTable());
    if (got) return { state: this.job.restored(got.table, got.meta), nextOffset: got.nextOffset, savedAt: got.savedAt, detail: got.detail };
    return this.loadLegacy(partition);
  }

  /**
   * Starts a checkpoint in the background; resolves when it is durable
   * (undefined if it was abandoned). Undefined when one is still in flight.
   */
  begin(partition: number, state: S, nextOffset: number): Promise<CheckpointOutcome | undefined> | undefined {
    return this.of(partition).begin(state.table, this.job.meta(state), nextOffset);
  }

  /**
   * Checkpoints synchronously: called from kafkajs' rebalance notification,
   * which cannot be awaited, and the state must be on disk before the
   * partition moves to another member.
   */
  saveNow(partition: number, state: S, nextOffset: number): CheckpointOutcome {
    return this.of(partition).saveNow(state.table, this.job.meta(state), nextOffset);
  }

  /** Stops the partition's checkpoint in flight, if any: it will write nothing that counts. */
  abandon(partition: number): void {
    this.partitions.get(partition)?.abandon();
  }

  inFlight(partition: number): boolean {
    return this.partitions.get(partition)?.inFlight ?? false;
  }

  /** Waits for the partition's checkpoint in flight, if any. */
  async settled(partition: number): Promise<void> {
    await this.partitions.get(partition)?.settled();
  }

  /** The whole-state JSON file of format version 1. */
  private loadLegacy(partition: number): RestoredPartition<S> | undefined {
    const file = join(this.dir, `${partition}.json`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CheckpointError(`cannot read checkpoint ${file}: ${(err as Error).message}`);
    }
    let cp: { version: number; jobType: string; topic: string; partition: number; nextOffset: number; savedAt: number; state: unknown };
    try {
      cp = JSON.parse(text) as typeof cp;
    } catch (err) {
      throw new CheckpointError(`checkpoint ${file} is not valid JSON (${(err as Error).message}); move it away to start that partition afresh`);
    }
    if (cp.version !== 1 || cp.partition !== partition || cp.topic !== this.topic || cp.jobType !== this.job.type) {
      throw new CheckpointError(
        `checkpoint ${file} belongs to job type '${cp.jobType}', topic '${cp.topic}', partition ${cp.partition} (version ${cp.version}), ` +
          `not to '${this.job.type}' on '${this.topic}' partition ${partition}: use another checkpoint.dir or consumer group`,
      );
    }
    if (!Number.isInteger(cp.nextOffset) || cp.nextOffset < 0) throw new CheckpointError(`checkpoint ${file}: nextOffset ${String(cp.nextOffset)} is not an offset`);
    const state = this.job.fromLegacy(cp.state);
    // Written once in the new format (a base), it is not read again.
    const log = this.of(partition);
    log.saveNow(state.table, this.job.meta(state), cp.nextOffset);
    renameSync(file, `${file}.migrated`);
    return { state, nextOffset: cp.nextOffset, savedAt: cp.savedAt, detail: `version 1 checkpoint ${partition}.json, converted` };
  }
}
