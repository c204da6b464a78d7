/**
 * What the state benchmark drives: one worker's partitions of one job type,
 * behind a small interface so that today's state and checkpoints (an older
 * commit, loaded from its own source) and the current ones run the same
 * measurements in the same run.
 */
import type { UserEvent } from '../../workers/events/types.js';

export type JobKind = 'churn' | 'cart';

/** The model as the jobs see it. */
export interface BenchModel {
  readonly version: string;
  score(features: Float32Array, rows: number): Promise<Float32Array>;
}

export interface CheckpointResult {
  /** Bytes written by this checkpoint. */
  bytes: number;
  kind: 'full' | 'incremental';
}

export interface BackendUnderTest {
  readonly label: string;
  /** Folds events (all of partition p, in order) into p's state and scores what they made due. */
  process(p: number, events: readonly UserEvent[]): Promise<void>;
  /**
   * Checkpoints partition p at `nextOffset`. What runs before the first await
   * is the time the checkpoint holds the event loop; the promise settles when
   * the checkpoint is durable. `full` asks for a complete one (a base).
   */
  checkpoint(p: number, nextOffset: number, full?: boolean): Promise<CheckpointResult>;
  /** Forgets the state in memory and restores every partition from the checkpoint directory. */
  restore(): Promise<void>;
  /** Users held, over all partitions. */
  users(): number;
  /** Bytes of live state on local disk (a disk-backed store), 0 in memory. */
  localDiskBytes(): number;
  close(): Promise<void>;
}

export interface BackendOptions {
  job: JobKind;
  partitions: number;
  /** Where checkpoints go (the checkpoint volume). */
  checkpointDir: string;
  /** Where a disk-backed store keeps its live files (the pod's local disk). */
  localDir: string;
  model: BenchModel;
}
