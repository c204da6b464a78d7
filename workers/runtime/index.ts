/** The worker runtime's public surface. */
export { runJobInProcess, type InProcessOptions, type InProcessRun } from './in-process.js';
export { MemoryStore, type StoredAlert } from './memory-store.js';
export type { ResultSink, AlertClaim } from './sink.js';
export { RedisSink } from './redis-sink.js';
export { WorkerMetrics, startHealthServer } from './metrics.js';
export { KafkaWorker, DLQ_HEADERS } from './kafka-worker.js';
export { AlertDispatcher, SmtpMailer, type Mailer } from '../jobs/cart/alerts.js';
export { CheckpointStore, CheckpointError, type RestoredPartition } from './checkpoint.js';
export { loadModel, buildJob } from '../jobs/registry.js';
export * from '../../lib/kafka/client.js';
export * from '../../lib/worker-config/resolve.js';
