import type { JobType, WorkerConfig } from '../../workers/config.js';
import { CliError } from '../errors.js';
import type { JobDocument } from './job-file.js';

/** What local mode changes in the spec: addresses of this machine, and where files go. */
export interface LocalOverrides {
  parallelism?: number;
  bootstrapServers?: string[];
  redis?: { host: string; port: number };
  /** Checkpoints of job J go to `<checkpointRoot>/<J>`, shared by its workers like the PVC in a cluster. */
  checkpointRoot: string;
  /** Worker n serves metrics on metricsPortBase + n. */
  metricsPortBase: number;
  /** The environment the workers will see (model path variables are honoured there). */
  env?: NodeJS.ProcessEnv;
}

/** The slice of the ProcessingJob spec that local mode reads (defaults already applied from the CRD schema). */
interface JobSpec {
  type: JobType;
  parallelism: number;
  suspend?: boolean;
  kafka: {
    bootstrapServers: string[];
    topic: string;
    consumerGroup?: string;
    startFrom: 'earliest' | 'latest';
    deadLetterTopic?: string;
    tls?: { enabled: boolean; secretName?: string; insecureSkipVerify?: boolean };
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512' };
  };
  redis: { host: string; port: number; db: number; keyPrefix: string; ttlSeconds: number; tls: boolean };
  model?: { source: 'bundled' | 'configMap' | 'pvc' | 'image' };
  checkpoint: { intervalSeconds: number };
  cart?: { abandonWindowMinutes: number; abandonThreshold: number };
  alerts?: { smtp: { host: string; port: number; secure: boolean }; from: string; to: string[] };
}

const MODEL_PATH_ENV: Record<JobType, string> = { churn: 'CHURN_MODEL_PATH', cart: 'CART_MODEL_PATH' };

/**
 * One WorkerConfig per local worker, mapped from the spec the way the operator
 * maps it into the worker ConfigMap (same defaults: consumer group
 * `sluice-<namespace>-<name>`, dead-letter topic `<topic>.dlq`), except for what
 * only exists in a cluster: checkpoints go to a local directory, each worker
 * gets its own metrics port, and volumes (TLS Secrets, model ConfigMaps/PVCs)
 * cannot be mounted, so those need a local file instead.
 */
export function localWorkerConfigs(job: JobDocument, overrides: LocalOverrides): WorkerConfig[] {
  const spec = job.spec as unknown as JobSpec;
  const name = job.metadata.name;
  const namespace = job.metadata.namespace ?? 'default';
  const env = overrides.env ?? process.env;
  const parallelism = overrides.parallelism ?? spec.parallelism;
  if (parallelism < 1) {
    throw new CliError(`spec.parallelism of '${name}' is ${parallelism}: nothing to run (use --parallelism N)`);
  }
  if (spec.kafka.tls?.secretName) {
    throw new CliError(
      `spec.kafka.tls.secretName ('${spec.kafka.tls.secretName}') names a Kubernetes Secret, which local mode cannot mount: ` +
        'remove it to use the system CA store',
    );
  }
  const modelSource = spec.model?.source ?? 'bundled';
  if (modelSource !== 'bundled' && !env[MODEL_PATH_ENV[spec.type]]) {
    throw new CliError(
      `spec.model.source is '${modelSource}', which local mode cannot mount: set ${MODEL_PATH_ENV[spec.type]} to the ONNX file`,
    );
  }
  const topic = spec.kafka.topic;
  const base: Omit<WorkerConfig, 'metrics'> = {
    job: { name, namespace, type: spec.type },
    kafka: {
      bootstrapServers: overrides.bootstrapServers ?? spec.kafka.bootstrapServers,
      topic,
      consumerGroup: spec.kafka.consumerGroup ?? `sluice-${namespace}-${name}`,
      startFrom: spec.kafka.startFrom,
      deadLetterTopic: spec.kafka.deadLetterTopic ?? `${topic}.dlq`,
      ...(spec.kafka.tls ? { tls: { enabled: spec.kafka.tls.enabled, insecureSkipVerify: spec.kafka.tls.insecureSkipVerify } } : {}),
      ...(spec.kafka.sasl ? { sasl: { mechanism: spec.kafka.sasl.mechanism } } : {}),
    },
    redis: {
      host: overrides.redis?.host ?? spec.redis.host,
      port: overrides.redis?.port ?? spec.redis.port,
      db: spec.redis.db,
      keyPrefix: spec.redis.keyPrefix,
      ttlSeconds: spec.redis.ttlSeconds,
      tls: spec.redis.tls,
    },
    model: {},
    checkpoint: { dir: `${overrides.checkpointRoot}/${name}`, intervalSeconds: spec.checkpoint.intervalSeconds },
    ...(spec.type === 'cart'
      ? { cart: { abandonWindowMinutes: spec.cart?.abandonWindowMinutes ?? 60, abandonThreshold: spec.cart?.abandonThreshold ?? 0.75 } }
      : {}),
    ...(spec.type === 'cart' && spec.alerts
      ? {
          alerts: {
            // The Secret named by smtp.secretName reaches the worker as SMTP_USERNAME/SMTP_PASSWORD, not in the file.
            smtp: { host: spec.alerts.smtp.host, port: spec.alerts.smtp.port, secure: spec.alerts.smtp.secure },
            from: spec.alerts.from,
            to: [...spec.alerts.to],
          },
        }
      : {}),
  };
  return Array.from({ length: parallelism }, (_, i) => ({
    ...structuredClone(base),
    kafka: { ...structuredClone(base.kafka), clientId: `sluice-${name}-local-${i}` },
    metrics: { port: overrides.metricsPortBase + i },
  }));
}
