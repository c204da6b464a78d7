/**
 * The exit codes of `sluice worker`, in one place: they tell a refusal that
 * restarting cannot fix from a transient failure. The supervisor of
 * `sluice run` stops a job on a permanent one (cli/local/supervisor.ts); in a
 * pod, CrashLoopBackOff shows the code. docs/workers.md lists them for users.
 */
export const EXIT_CODES = {
  /** Something went wrong that a restart may fix (Kafka unreachable, a port in use...). */
  transient: 1,
  /** The configuration is invalid (a field, an environment variable). */
  config: 2,
  /** The model does not fit the job's features, or is not an ONNX model. */
  model: 3,
  /** The input topic cannot be used (this worker may not read it, or the broker says it does not exist). */
  topic: 4,
  /** The checkpoints are of another state format: restore a snapshot or drop the state (docs/operations.md). */
  stateIncompatible: 5,
} as const;

/** What each permanent exit code means, as the terminal says it ("a worker refused its model"). */
export const PERMANENT_EXIT_CODES: ReadonlyMap<number, string> = new Map([
  [EXIT_CODES.config, 'refused its configuration'],
  [EXIT_CODES.model, 'refused its model'],
  [EXIT_CODES.topic, 'cannot use its Kafka topic'],
  [EXIT_CODES.stateIncompatible, 'refused its checkpoints (state of another format: restore a snapshot, or drop the state)'],
]);
