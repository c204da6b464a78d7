import type { WorkerConfig } from '../../lib/worker-config/config.js';
import type { ProcessingJob, ProcessingJobSpecModel } from '../api/types.js';
import { paths } from './paths.js';

/** Schema defaults of spec.cart, for a cart job that leaves the whole block out. */
export const CART_DEFAULTS = { abandonWindowMinutes: 60, abandonThreshold: 0.75 } as const;
export const METRICS_PORT = 9090;

export const defaultConsumerGroup = (job: ProcessingJob): string =>
  `sluice-${job.metadata.namespace}-${job.metadata.name}`;

export const defaultDeadLetterTopic = (topic: string): string => `${topic}.dlq`;

/** Where the worker finds the model file, given where the pod mounts it (see render/pod.ts). */
export function modelPath(model: ProcessingJobSpecModel | undefined): string | undefined {
  switch (model?.source) {
    case 'configMap':
      return `${paths.models}/${model.configMap!.key}`;
    case 'pvc':
      return `${paths.models}/${model.pvc!.path}`;
    case 'image':
      return `${paths.models}/model.onnx`;
    default:
      return undefined;
  }
}

export interface RenderContext {
  /** Image of the workers when the spec names none (the operator's --worker-image). */
  workerImage: string;
  /** The Kafka TLS Secret holds a client certificate (tls.crt and tls.key), as the reconciler observed. */
  kafkaClientCertificate?: boolean;
}

function kafkaTls(job: ProcessingJob, ctx: RenderContext): WorkerConfig['kafka']['tls'] {
  const tls = job.spec.kafka.tls;
  if (!tls?.enabled) return undefined;
  const dir = paths.kafkaTls;
  return {
    enabled: true,
    ...(tls.secretName ? { caFile: `${dir}/ca.crt` } : {}),
    ...(tls.secretName && ctx.kafkaClientCertificate ? { certFile: `${dir}/tls.crt`, keyFile: `${dir}/tls.key` } : {}),
    ...(tls.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
  };
}

/** The worker's configuration document (ConfigMap key worker.yaml): a pure function of the job. */
export function renderWorkerConfig(job: ProcessingJob, ctx: RenderContext): WorkerConfig {
  const { spec, metadata } = job;
  const tls = kafkaTls(job, ctx);
  const model = modelPath(spec.model);
  const config: WorkerConfig = {
    job: { name: metadata.name, namespace: metadata.namespace, type: spec.type },
    kafka: {
      bootstrapServers: spec.kafka.bootstrapServers,
      topic: spec.kafka.topic,
      consumerGroup: spec.kafka.consumerGroup ?? defaultConsumerGroup(job),
      startFrom: spec.kafka.startFrom,
      deadLetterTopic: spec.kafka.deadLetterTopic ?? defaultDeadLetterTopic(spec.kafka.topic),
      clientId: `sluice-${metadata.name}`,
      ...(tls ? { tls } : {}),
      ...(spec.kafka.sasl ? { sasl: { mechanism: spec.kafka.sasl.mechanism } } : {}),
    },
    redis: {
      host: spec.redis.host,
      port: spec.redis.port,
      db: spec.redis.db,
      keyPrefix: spec.redis.keyPrefix,
      ...(spec.redis.ttlSeconds > 0 ? { ttlSeconds: spec.redis.ttlSeconds } : {}),
      ...(spec.redis.tls ? { tls: true } : {}),
    },
    model: {
      ...(model ? { path: model } : {}),
      ...(spec.type === 'churn' && spec.model?.threshold !== undefined ? { threshold: spec.model.threshold } : {}),
    },
    checkpoint: { dir: paths.checkpoints, intervalSeconds: spec.checkpoint.intervalSeconds },
    // Memory is the worker's default: only the disk backend is written out (existing jobs keep their config hash).
    ...(spec.state?.backend === 'disk' ? { state: { backend: 'disk' as const, dir: paths.state, cacheMiB: spec.state.cacheMiB } } : {}),
    // Only when not the default (existing jobs keep their config hash); an older CRD has no eventTime block.
    ...((spec.eventTime?.maxFutureSkewSeconds ?? 300) !== 300 ? { eventTime: { maxFutureSkewSeconds: spec.eventTime.maxFutureSkewSeconds } } : {}),
    metrics: { port: METRICS_PORT },
  };
  if (spec.type === 'cart') {
    config.cart = { ...CART_DEFAULTS, ...spec.cart };
    if (spec.alerts) {
      config.alerts = {
        smtp: { host: spec.alerts.smtp.host, port: spec.alerts.smtp.port, secure: spec.alerts.smtp.secure },
        from: spec.alerts.from,
        to: spec.alerts.to,
        ...(spec.alerts.delivery === 'at-least-once' ? { delivery: 'at-least-once' as const } : {}),
      };
    }
  }
  return config;
}
