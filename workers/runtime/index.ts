/** The worker runtime's public surface (no job type in it: see workers/jobs/registry.ts). */
export { runJobInProcess, type InProcessOptions, type InProcessRun } from './in-process.js';
export { MemoryStore } from './memory-store.js';
export type { ResultSink, RecordWrite, OnceClaim } from './sink.js';
export type { JobDefinition, JobContext, JobStateContext, JobOutputs, OutputStage, StreamJob, ScoreModel, UserWrite } from './job.js';
export { RedisSink } from './redis-sink.js';
export { WorkerMetrics, startHealthServer } from './metrics.js';
export { KafkaWorker, DLQ_HEADERS } from './kafka-worker.js';
export { CheckpointStore, CheckpointError, type RestoredPartition } from './checkpoint.js';
