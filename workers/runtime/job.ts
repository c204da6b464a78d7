/**
 * What a job is, for the runtime: its per-partition state, how events change
 * it, and the outputs (hash fields per user, alerts) that result. A new job
 * type is a new implementation of StreamJob on the same runtime.
 */
import type { JobType } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../events/types.js';
import type { StateFormat, UserTable } from '../state/table.js';

/** The model as a job sees it: a batch of feature rows in, one score per row out. */
export interface ScoreModel {
  readonly version: string;
  score(features: Float32Array, rows: number): Promise<Float32Array>;
}

/** Fields to HSET into `<prefix>user:<userId>`. Values are computed from events only, so replays rewrite the same values. */
export interface UserWrite {
  userId: string;
  fields: Record<string, string>;
}

export interface CartAlert {
  cartId: string;
  userId: string;
  score: number;
  items: number;
  value: number;
  /** Last cart activity and the moment the cart counted as abandoned (event time, epoch ms). */
  lastActivity: number;
  abandonedAt: number;
  modelVersion: string;
}

export interface JobOutputs {
  writes: UserWrite[];
  /** Carts scored at or above the threshold: one alert each. */
  alerts: CartAlert[];
  /** Rows scored and time spent in the model for them. */
  scoredRows: number;
  inferenceMs: number;
}

/** Scalars of a partition's state beside its users (event time...), checkpointed as JSON. */
export type StateMeta = Record<string, number>;

/**
 * A partition's state: its users in a compact table (what checkpoints write
 * incrementally) and a few scalars. Anything else a job keeps (timers) is
 * derived from these and rebuilt on restore.
 */
export interface PartitionState {
  readonly table: UserTable;
}

export interface StreamJob<S extends PartitionState = PartitionState> {
  readonly type: JobType;
  readonly modelVersion: string;
  /** The record layout of the job's users and the features it was built for (checkpoints carry it). */
  readonly stateFormat: StateFormat;
  newState(): S;
  /** An empty table of the job's layout, to restore a checkpoint into. */
  newTable(): UserTable;
  /** The partition's scalars, for a checkpoint. */
  meta(state: S): StateMeta;
  /** The state around a restored table and its scalars; rebuilds what is derived (timers). */
  restored(table: UserTable, meta: StateMeta): S;
  /** A state from a checkpoint of format version 1 (JSON users), so that an upgrade keeps its state. */
  fromLegacy(snapshot: unknown): S;
  /** Folds the events (in offset order) into the state and scores what they made due, in one model call. */
  process(state: S, events: readonly UserEvent[]): Promise<JobOutputs>;
  /**
   * Event time moved to `watermark` without events (an idle partition, driven
   * by the wall clock): fire what became due. No-op for jobs without timers.
   */
  advanceTo(state: S, watermark: number): Promise<JobOutputs>;
  /** Highest event time the state has seen (or been advanced to), or -1. */
  watermark(state: S): number;
}

export function emptyOutputs(): JobOutputs {
  return { writes: [], alerts: [], scoredRows: 0, inferenceMs: 0 };
}

/** Scores are written rounded, so the text in Redis does not depend on float noise of batch composition. */
export function formatScore(score: number): string {
  return score.toFixed(6);
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export function usersFromSnapshot<T>(snapshot: unknown, what: string): Map<string, T> {
  if (snapshot === null || typeof snapshot !== 'object') throw new Error(`${what} checkpoint state is not an object`);
  const users = (snapshot as { users?: unknown }).users;
  if (users === null || typeof users !== 'object' || Array.isArray(users)) {
    throw new Error(`${what} checkpoint state has no 'users' mapping`);
  }
  return new Map(Object.entries(users as Record<string, T>));
}
