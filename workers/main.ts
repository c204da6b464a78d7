/**
 * The worker process: configuration in, a running Kafka worker out. The CLI
 * (`sluice worker`, workers/command.ts) and tests call these two functions.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { kafkaConnection } from '../lib/kafka/client.js';
import type { WorkerConfig, WorkerCredentials } from '../lib/worker-config/config.js';
import { jobTypes } from './jobs/registry.js';
import { createJob } from './runtime/job.js';
import { KafkaWorker } from './runtime/kafka-worker.js';
import { startHealthServer, WorkerMetrics } from './runtime/metrics.js';
import { RedisSink } from './runtime/redis-sink.js';
import type { StateStore } from './state/table.js';

export { loadWorkerConfig, resolveWorkerConfig, credentialsFromEnv, WorkerConfigError, type WorkerCredentials } from './config.js';

export interface RunWorkerOptions {
  /** From Secret-backed env vars (credentialsFromEnv); none by default. */
  credentials?: WorkerCredentials;
  logger?: Logger;
  /** Interface for /metrics, /healthz, /readyz; default all interfaces (a pod). Tests use 127.0.0.1. */
  metricsHost?: string;
  /** Called when the Kafka client gives up for good; the CLI exits so that the pod restarts. */
  onFatal?: (err: Error) => void;
  /** How long a caught-up partition must be quiet before the wall clock moves its event time (cart timers). */
  idleAfterMs?: number;
}

export interface RunningWorker {
  stop(): Promise<void>;
  /** The port /metrics listens on (useful with metrics.port 0). */
  readonly metricsPort: number;
  readiness(): { ready: boolean; detail: string };
}

export async function runWorker(config: WorkerConfig, opts: RunWorkerOptions = {}): Promise<RunningWorker> {
  const logger = (opts.logger ?? pino({ name: 'sluice-worker' })).child({ job: config.job.name, type: config.job.type });
  const credentials = opts.credentials ?? { kafka: {}, smtp: {} };
  const definition = jobTypes.get(config.job.type);
  const model = await definition.loadModel(config.model.path);
  logger.info({ model: config.model.path ?? 'bundled', version: model.version }, 'model loaded');
  const metrics = new WorkerMetrics({ job: config.job.name, type: config.job.type });
  const sink = RedisSink.connect(config.redis, credentials.redisPassword, logger);
  await sink.waitReady(5_000).catch((err: Error) => logger.warn({ err: err.message }, 'redis not reachable yet; results wait until it is'));
  const holder = `${hostname()}:${process.pid}:${randomUUID()}`;
  const { job, output } = createJob(definition, { config, model, sink, metrics: metrics.registry, logger, credentials, holder, state: stateStore(config) });
  if (config.state?.backend === 'disk') logger.info({ dir: config.state.dir, cacheMiB: config.state.cacheMiB }, 'state on local disk (a file of fixed-size records), rebuilt from the checkpoints');
  const worker = new KafkaWorker({
    config,
    connection: kafkaConnection(config.kafka, credentials.kafka, logger),
    job,
    sink,
    output,
    metrics,
    logger,
    idleAfterMs: opts.idleAfterMs,
    onFatal: opts.onFatal,
    memberId: `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '_'),
  });
  const server = await startHealthServer(metrics, () => worker.readiness(), config.metrics.port, opts.metricsHost ?? '0.0.0.0', () => worker.status());
  try {
    await worker.start();
  } catch (err) {
    await server.close();
    await sink.close();
    throw new Error(`cannot start the Kafka consumer (kafka.bootstrapServers ${config.kafka.bootstrapServers.join(',')}): ${(err as Error).message}`, { cause: err });
  }
  logger.info({ topic: config.kafka.topic, group: config.kafka.consumerGroup, metricsPort: server.port }, 'worker started');
  let stopped: Promise<void> | undefined;
  return {
    metricsPort: server.port,
    readiness: () => worker.readiness(),
    stop: () =>
      (stopped ??= (async () => {
        await worker.stop();
        output?.close?.();
        await sink.close();
        await server.close();
      })()),
  };
}

/**
 * The disk backend's directory for this process, emptied: what it held is
 * rebuilt from the checkpoints (so a restarted container never trusts a store
 * that may be ahead of them). Per process, so local runs can share a directory.
 */
function stateStore(config: WorkerConfig): StateStore {
  if (config.state?.backend !== 'disk') return { backend: 'memory' };
  const dir = join(config.state.dir, `worker-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return { backend: 'disk', dir, cacheMiB: config.state.cacheMiB };
}
