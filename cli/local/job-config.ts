import type { ProcessingJob } from '../../operator/api/types.js';
import { renderWorkerConfig } from '../../operator/render/worker-config.js';
import type { WorkerDocument } from '../../lib/worker-config/config.js';
import { jobTypes } from '../../workers/jobs/registry.js';
import { CliError } from '../errors.js';
import type { JobDocument } from './job-file.js';

/** What local mode changes in the spec: addresses of this machine, and where files go. */
export interface LocalOverrides {
  parallelism?: number;
  bootstrapServers?: string[];
  redis?: { host: string; port: number };
  /** Checkpoints of job J go to `<checkpointRoot>/<J>`, shared by its workers like the PVC in a cluster. */
  checkpointRoot: string;
  /** Worker n serves metrics on metricsPorts[n] when given, else on metricsPortBase + n. */
  metricsPortBase: number;
  metricsPorts?: number[];
  /** --consumer-group, --key-prefix, --smtp of `sluice run`. */
  consumerGroup?: string;
  keyPrefix?: string;
  smtp?: { host: string; port: number };
  /** The environment the workers will see (model path variables are honoured there). */
  env?: NodeJS.ProcessEnv;
}

/**
 * One worker configuration document per local worker. The mapping is the operator's own
 * (`renderWorkerConfig`, what lands in the worker ConfigMap), so a job behaves
 * the same locally and in a cluster; only what exists in a cluster alone is
 * replaced: checkpoints go to a local directory, each worker gets its own
 * metrics port and client id, and volumes (TLS Secrets, model ConfigMaps/PVCs)
 * cannot be mounted, so those need a local file instead.
 */
/** A local worker's configuration document: the operator's rendering with this machine's addresses and its own metrics port. */
export type LocalWorkerConfig = WorkerDocument & { metrics: { port: number } };

export function localWorkerConfigs(doc: JobDocument, overrides: LocalOverrides): LocalWorkerConfig[] {
  const job = {
    ...doc,
    metadata: { ...doc.metadata, namespace: doc.metadata.namespace ?? 'default' },
  } as unknown as ProcessingJob;
  const { spec, metadata } = job;
  const env = overrides.env ?? process.env;
  if (spec.suspend && overrides.parallelism === undefined) {
    throw new CliError(`'${metadata.name}' has spec.suspend: true, so nothing runs (as in a cluster); set it to false or pass --parallelism N`);
  }
  const parallelism = overrides.parallelism ?? spec.parallelism;
  if (parallelism < 1) {
    throw new CliError(`spec.parallelism of '${metadata.name}' is ${parallelism}: nothing to run (use --parallelism N)`);
  }
  if (spec.kafka.tls?.secretName) {
    throw new CliError(
      `spec.kafka.tls.secretName ('${spec.kafka.tls.secretName}') names a Kubernetes Secret, which local mode cannot mount: ` +
        'remove it to use the system CA store',
    );
  }
  const modelSource = spec.model?.source ?? 'bundled';
  const modelPathEnv = jobTypes.get(spec.type).config.modelPathEnv;
  if (modelSource !== 'bundled' && !env[modelPathEnv]) {
    throw new CliError(
      `spec.model.source is '${modelSource}', which local mode cannot mount: set ${modelPathEnv} to the ONNX file`,
    );
  }
  const base = renderWorkerConfig(job, { workerImage: 'local' });
  applyFlags(base, overrides);
  // The model path the operator renders is a pod mount; the worker applies its type's model path variable itself.
  base.model = {};
  base.checkpoint.dir = `${overrides.checkpointRoot}/${metadata.name}`;
  // The disk state backend's local store: beside the checkpoints, not in them (each worker takes its own subdirectory).
  if (base.state) base.state.dir = `${overrides.checkpointRoot}/${metadata.name}.state`;
  return Array.from({ length: parallelism }, (_, i) => {
    const config = { ...structuredClone(base), metrics: { port: overrides.metricsPorts?.[i] ?? overrides.metricsPortBase + i } };
    config.kafka.clientId = `sluice-${metadata.name}-local-${i}`;
    return config;
  });
}

/** What `sluice run`'s flags say of this machine's addresses and names. */
function applyFlags(base: WorkerDocument, overrides: LocalOverrides): void {
  if (overrides.bootstrapServers) base.kafka.bootstrapServers = overrides.bootstrapServers;
  if (overrides.redis) Object.assign(base.redis, overrides.redis);
  if (overrides.consumerGroup) base.kafka.consumerGroup = overrides.consumerGroup;
  if (overrides.keyPrefix !== undefined) base.redis.keyPrefix = overrides.keyPrefix;
  const alerts = base.alerts as { smtp: { host: string; port: number } } | undefined;
  if (overrides.smtp && alerts) Object.assign(alerts.smtp, overrides.smtp);
}
