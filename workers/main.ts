/**
 * The worker process: configuration in, a running Kafka worker out. The CLI
 * (`sluice worker`, workers/command.ts) and tests call these two functions.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { WorkerConfig } from '../lib/worker-config/config.js';
import { AlertDispatcher, SmtpMailer } from './jobs/cart/alerts.js';
import { buildJob, loadModel } from './jobs/registry.js';
import { kafkaConnection } from '../lib/kafka/client.js';
import { KafkaWorker } from './runtime/kafka-worker.js';
import { startHealthServer, WorkerMetrics } from './runtime/metrics.js';
import { RedisSink } from './runtime/redis-sink.js';
import type { StateStore } from './state/table.js';
import type { WorkerCredentials } from '../lib/worker-config/resolve.js';

export { loadWorkerConfig, resolveWorkerConfig, credentialsFromEnv, WorkerConfigError, type WorkerCredentials } from '../lib/worker-config/resolve.js';

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
  const model = await loadModel(config.job.type, config.model.path);
  logger.info({ model: config.model.path ?? 'bundled', version: model.version }, 'model loaded');
  const job = buildJob(config.job.type, model, config.cart, config.model.threshold, stateStore(config));
  if (config.state?.backend === 'disk') logger.info({ dir: config.state.dir, cacheMiB: config.state.cacheMiB }, 'state on local disk (LMDB), rebuilt from the checkpoints');
  const metrics = new WorkerMetrics({ job: config.job.name, type: config.job.type });
  const sink = RedisSink.connect(config.redis, credentials.redisPassword, logger);
  await sink.waitReady(5_000).catch((err: Error) => logger.warn({ err: err.message }, 'redis not reachable yet; results wait until it is'));
  const mailer = config.alerts ? new SmtpMailer(config.alerts.smtp, credentials.smtp) : undefined;
  const holder = `${hostname()}:${process.pid}:${randomUUID()}`;
  const alerts = new AlertDispatcher(sink, mailer, config.alerts, holder, metrics, logger);
  const worker = new KafkaWorker({
    config,
    connection: kafkaConnection(config.kafka, credentials.kafka, logger),
    job,
    sink,
    alerts,
    metrics,
    logger,
    idleAfterMs: opts.idleAfterMs,
    onFatal: opts.onFatal,
    memberId: `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '_'),
  });
  const server = await startHealthServer(metrics, () => worker.readiness(), config.metrics.port, opts.metricsHost ?? '0.0.0.0');
  try {
    await worker.start();
  } catch (err) {
    await server.close();
    await sink.close();
    throw new Error(`cannot start the Kafka consumer (kafka.bootstrapServers ${config.kafka.bootstrapServers.join(',')}): ${(err as Error).message}`);
  }
  logger.info({ topic: config.kafka.topic, group: config.kafka.consumerGroup, metricsPort: server.port }, 'worker started');
  let stopped: Promise<void> | undefined;
  return {
    metricsPort: server.port,
    readiness: () => worker.readiness(),
    stop: () =>
      (stopped ??= (async () => {
        await worker.stop();
        mailer?.close();
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
