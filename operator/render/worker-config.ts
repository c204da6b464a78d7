import type { WorkerDocument } from '../../lib/worker-config/config.js';
import type { CommonConfig } from '../../lib/worker-config/schema.js';
import { clientIdOf, consumerGroupOf, deadLetterTopicOf } from '../../lib/worker-config/names.js';
import { commonSchema } from '../../lib/worker-config/schema.js';
import type { ProcessingJob, ProcessingJobSpecModel } from '../api/types.js';
import { paths } from './paths.js';

/** The worker's metrics port: the worker configuration's default, which the pod's port and probes name. */
export const METRICS_PORT = commonSchema.properties.metrics.properties.port.default;

/** The worker's future-skew bound when the spec keeps the default (then not written out). */
const DEFAULT_SKEW = commonSchema.properties.eventTime.properties.maxFutureSkewSeconds.default;

/** The consumer group the job's workers join. */
export const consumerGroup = (job: ProcessingJob): string => job.spec.kafka.consumerGroup ?? consumerGroupOf(job.metadata);

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
  /** Worker replicas chosen by the autoscaler; absent: spec.parallelism (0 when suspended either way). */
  replicas?: number;
}

function kafkaTls(job: ProcessingJob, ctx: RenderContext): CommonConfig['kafka']['tls'] {
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

/**
 * The worker's configuration document (ConfigMap key worker.yaml): a pure
 * function of the job. The spec's job-type sections (`cart`, `alerts`; the CRD
 * allows each only on its type) are passed as written: the worker applies
 * their defaults from its job type's configuration fragment.
 */
export function renderWorkerConfig(job: ProcessingJob, ctx: RenderContext): WorkerDocument {
  const { spec, metadata } = job;
  const tls = kafkaTls(job, ctx);
  const config: WorkerDocument = {
    job: { name: metadata.name, namespace: metadata.namespace, type: spec.type },
    kafka: {
      bootstrapServers: spec.kafka.bootstrapServers,
      topic: spec.kafka.topic,
      consumerGroup: consumerGroup(job),
      startFrom: spec.kafka.startFrom,
      deadLetterTopic: spec.kafka.deadLetterTopic ?? deadLetterTopicOf(spec.kafka.topic),
      clientId: clientIdOf(metadata),
      ...(tls ? { tls } : {}),
      ...(spec.kafka.sasl ? { sasl: { mechanism: spec.kafka.sasl.mechanism } } : {}),
    },
    redis: redisSection(spec.redis),
    model: modelSection(spec.model),
    checkpoint: { dir: paths.checkpoints, intervalSeconds: spec.checkpoint.intervalSeconds },
    ...optionalSections(spec),
    metrics: { port: METRICS_PORT },
  };
  if (spec.cart) config.cart = { ...spec.cart };
  if (spec.alerts) {
    const { smtp } = spec.alerts;
    config.alerts = {
      smtp: { host: smtp.host, port: smtp.port, secure: smtp.secure },
      from: spec.alerts.from,
      to: spec.alerts.to,
      // Only when not the default (existing jobs keep their config hash).
      ...(spec.alerts.delivery === 'at-least-once' ? { delivery: 'at-least-once' as const } : {}),
    };
  }
  return config;
}

function redisSection(redis: ProcessingJob['spec']['redis']): WorkerDocument['redis'] {
  return {
    host: redis.host,
    port: redis.port,
    db: redis.db,
    keyPrefix: redis.keyPrefix,
    ...(redis.ttlSeconds > 0 ? { ttlSeconds: redis.ttlSeconds } : {}),
    ...(redis.tls ? { tls: true } : {}),
  };
}

function modelSection(spec: ProcessingJobSpecModel | undefined): NonNullable<WorkerDocument['model']> {
  const model = modelPath(spec);
  return {
    ...(model ? { path: model } : {}),
    ...(spec?.threshold !== undefined ? { threshold: spec.threshold } : {}),
  };
}

/** The sections written only when they differ from the worker's default, so that existing jobs keep their config hash. */
function optionalSections(spec: ProcessingJob['spec']): Pick<WorkerDocument, 'state' | 'eventTime' | 'throttle'> {
  return {
    // spec.throttle only when asked, so other jobs keep their config hash.
    ...(spec.throttle ? { throttle: { eventsPerSecond: spec.throttle.eventsPerSecondPerWorker } } : {}),
    // Memory is the worker's default: only the disk backend is written out.
    ...(spec.state?.backend === 'disk' ? { state: { backend: 'disk' as const, dir: paths.state, cacheMiB: spec.state.cacheMiB } } : {}),
    // An older CRD has no eventTime block.
    ...((spec.eventTime?.maxFutureSkewSeconds ?? DEFAULT_SKEW) !== DEFAULT_SKEW ? { eventTime: { maxFutureSkewSeconds: spec.eventTime.maxFutureSkewSeconds } } : {}),
  };
}
