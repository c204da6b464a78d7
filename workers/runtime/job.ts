/**
 * What a job is, for the runtime: its per-partition state, how events change
 * it, and the outputs (hash fields per user, alerts) that result. A new job
 * type is a new implementation of StreamJob on the same runtime.
 */
import type { JobType } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../events/types.js';

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

export interface StreamJob<S> {
  readonly type: JobType;
  readonly modelVersion: string;
  newState(): S;
  /** JSON-serialisable copy of the state, for a checkpoint. */
  snapshot(state: S): unknown;
  /** The inverse of snapshot; throws a message naming the problem when the checkpoint does not fit. */
  restore(snapshot: unknown): S;
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
