/**
 * The contract between the stream runtime and a job type. A job type (one
 * folder under workers/jobs/, one line in workers/jobs/registry.ts) says what
 * its per-partition state is, how a batch of events changes it, what comes out
 * and how its model is bound; the runtime (Kafka, partitions, checkpoints,
 * delivery with retry, the idle clock, metrics) is the same for every type.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { JobConfigFragment, WorkerConfig, WorkerCredentials } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../events/types.js';
import type { StateFormat, StateStore, UserTable } from '../state/table.js';
import type { ResultSink, UserWrite } from './sink.js';

export type { UserWrite } from './sink.js';

/** The model as a job sees it: a batch of feature rows in, one score per row out. */
export interface ScoreModel {
  readonly version: string;
  score(features: Float32Array, rows: number): Promise<Float32Array>;
}


/**
 * What one batch (or one move of the idle clock) produced. Every job type's
 * results land in the user hashes; `emits` are the job's own outputs, which its
 * OutputStage delivers after the writes (cart: one alert per abandoned cart).
 */
export interface JobOutputs<E = unknown> {
  writes: UserWrite[];
  emits: E[];
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

export interface StreamJob<S extends PartitionState = PartitionState, E = unknown> {
  readonly type: string;
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
  process(state: S, events: readonly UserEvent[]): Promise<JobOutputs<E>>;
  /**
   * Event time moved to `watermark` without events (an idle partition, driven
   * by the wall clock): fire what became due. No-op for jobs without timers.
   */
  advanceTo(state: S, watermark: number): Promise<JobOutputs<E>>;
  /** Highest event time the state has seen (or been advanced to), or -1. */
  watermark(state: S): number;
  /**
   * Event time at which everything the state holds open has fired (cart: the
   * last open cart's timer); absent or undefined: nothing waits on time. The
   * in-process runner advances to it at the end of a finite source.
   */
  settledAt?(state: S): number | undefined;
}

/** Delivers a job's `emits` (idempotently: a replay delivers them again); throws to be retried. */
export interface OutputStage<E> {
  /** Name in logs and in `sluice_retries_total{target}`. */
  readonly target: string;
  /** `progress` runs between items (the Kafka heartbeat: a long delivery must not look like a dead member). */
  deliver(items: readonly E[], progress?: () => Promise<void>): Promise<void>;
  close?(): void;
}

/** What a job type is given to build its job: enough to fold events into state (state tasks need no more). */
export interface JobStateContext {
  config: WorkerConfig;
  model: ScoreModel;
  /** Where the users' records live: memory, or the disk backend's local store. */
  state: StateStore;
}

/** What a job type is given to build its output stage as well (a worker, the demo). */
export interface JobContext extends JobStateContext {
  sink: ResultSink;
  /** The worker's metrics registry, for the job's own metrics. */
  metrics: Registry;
  logger: Logger;
  credentials: WorkerCredentials;
  /** Unique to this process: who holds an exactly-once claim. */
  holder: string;
}

/** One job type, as registered (workers/jobs/registry.ts). */
export interface JobDefinition<S extends PartitionState = PartitionState, E = unknown> {
  /** Its part of the worker configuration: sections, defaults, environment variables. */
  readonly config: JobConfigFragment;
  /** Loads the model (a file, or the bundled one); refuses one whose inputs do not match the features. */
  loadModel(path: string | undefined): Promise<ScoreModel>;
  /** The job: its state and how events change it. */
  job(ctx: JobStateContext): StreamJob<S, E>;
  /** Delivers the job's `emits`; absent for a type that only writes user hashes. */
  output?(ctx: JobContext): OutputStage<E>;
  /** Where `sluice status` and `sluice dashboard` find its results; absent: they show its events and lag only. */
  readonly results?: ResultsView;
}

/** Where a job type's results are in its users' hashes, and what they are called on screen. */
export interface ResultsView {
  /** The hash field of the score, and of a detail shown beside it (as `label` words it). */
  score: string;
  detail: string;
  label(detail: string): string;
  /** The score's name in a column head ('churn' score), and the heading over the highest scores. */
  scoreName: string;
  topHeading: string;
  /** The job records alerts (`<prefix>alerts`, `<prefix>alert:<id>`), which status and the dashboard show. */
  alerts: boolean;
}

/** The job of a definition and its output stage, as a worker or the demo runs them. */
export function createJob<S extends PartitionState, E>(definition: JobDefinition<S, E>, ctx: JobContext): { job: StreamJob<S, E>; output?: OutputStage<E> } {
  return { job: definition.job(ctx), output: definition.output?.(ctx) };
}

export function emptyOutputs<E = never>(): JobOutputs<E> {
  return { writes: [], emits: [], scoredRows: 0, inferenceMs: 0 };
}

/** The checkpoint scalars of a state whose only scalar is its event time (churn, cart). */
export function watermarkMeta(state: { watermark: number }): StateMeta {
  return { watermark: state.watermark };
}

/** The event time that a checkpoint's scalars, or a version 1 snapshot, recorded; -1 when none. */
export function recordedWatermark(meta: { watermark?: unknown }): number {
  return Number(meta.watermark ?? -1);
}

/** A restored table, checked to be of the job's own layout: a checkpoint of another job type is refused, by name. */
export function ownTable<T extends UserTable>(jobType: string, table: UserTable, layout: abstract new (...args: never[]) => T): T {
  if (!(table instanceof layout)) throw new Error(`${jobType} job given a ${table.format.name} state`);
  return table;
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
