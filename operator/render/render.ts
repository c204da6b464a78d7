import { createHash } from 'node:crypto';
import type {
  V1Affinity,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1OwnerReference,
  V1PersistentVolumeClaim,
  V1ResourceRequirements,
  V1Service,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import {
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_RESTART_NONCE,
  LABEL_INSTANCE,
  LABEL_JOB,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  MANAGER,
  WORKER_APP,
  type ProcessingJob,
} from '../api/types.js';
import { childNames, paths } from './paths.js';
import { METRICS_PORT, renderWorkerConfig, type RenderContext } from './worker-config.js';

export type { RenderContext } from './worker-config.js';

/** Everything the operator applies for one job. */
export interface Children {
  configMap: V1ConfigMap;
  pvc: V1PersistentVolumeClaim;
  service: V1Service;
  deployment: V1Deployment;
  /** Hash of worker.yaml, on the pod template: a config change rolls the workers. */
  configHash: string;
  /** Deployment replicas: 0 when suspended. */
  replicas: number;
  /** The worker image. */
  image: string;
}

export const selectorLabels = (job: string): Record<string, string> => ({
  [LABEL_NAME]: WORKER_APP,
  [LABEL_INSTANCE]: job,
});

/** The label selector of the worker pods, as the scale subresource reports it. */
export const selectorString = (job: string): string =>
  Object.entries(selectorLabels(job))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export const standardLabels = (job: string): Record<string, string> => ({
  ...selectorLabels(job),
  [LABEL_MANAGED_BY]: MANAGER,
  [LABEL_JOB]: job,
});

function ownerReference(job: ProcessingJob): V1OwnerReference {
  return {
    apiVersion: job.apiVersion,
    kind: job.kind,
    name: job.metadata.name,
    uid: job.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function meta(job: ProcessingJob, name: string, owned = true): V1ConfigMap['metadata'] {
  return {
    name,
    namespace: job.metadata.namespace,
    labels: standardLabels(job.metadata.name),
    ...(owned ? { ownerReferences: [ownerReference(job)] } : {}),
  };
}

export const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

const secretEnv = (name: string, secret: string, key: string): V1EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: secret, key } },
});

/** Credentials reach the worker as env vars from secretKeyRefs: never copied, never in the ConfigMap. */
export function secretEnvVars(job: ProcessingJob): V1EnvVar[] {
  const { kafka, redis, alerts } = job.spec;
  const env: V1EnvVar[] = [];
  if (kafka.sasl) {
    env.push(secretEnv('KAFKA_SASL_USERNAME', kafka.sasl.secretName, kafka.sasl.usernameKey));
    env.push(secretEnv('KAFKA_SASL_PASSWORD', kafka.sasl.secretName, kafka.sasl.passwordKey));
  }
  if (redis.passwordSecret) env.push(secretEnv('REDIS_PASSWORD', redis.passwordSecret.name, redis.passwordSecret.key));
  // The CRD allows spec.alerts on cart jobs only.
  if (alerts?.smtp.secretName) {
    env.push(secretEnv('SMTP_USERNAME', alerts.smtp.secretName, 'username'));
    env.push(secretEnv('SMTP_PASSWORD', alerts.smtp.secretName, 'password'));
  }
  return env;
}

interface ModelMount {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  initContainers: V1Container[];
}

function modelMount(job: ProcessingJob, securityContext: V1Container['securityContext']): ModelMount {
  const model = job.spec.model;
  const mount: V1VolumeMount = { name: 'model', mountPath: paths.models, readOnly: true };
  switch (model?.source) {
    case 'configMap':
      return {
        volumes: [{ name: 'model', configMap: { name: model.configMap!.name, items: [{ key: model.configMap!.key, path: model.configMap!.key }] } }],
        mounts: [mount],
        initContainers: [],
      };
    case 'pvc':
      return {
        volumes: [{ name: 'model', persistentVolumeClaim: { claimName: model.pvc!.claimName, readOnly: true } }],
        mounts: [mount],
        initContainers: [],
      };
    case 'image':
      // Image volumes are not on every cluster yet: copy the file out of the image instead.
      return {
        volumes: [{ name: 'model', emptyDir: {} }],
        mounts: [mount],
        initContainers: [
          {
            name: 'model',
            image: model.image!.reference,
            command: ['cp', model.image!.path, `${paths.models}/model.onnx`],
            volumeMounts: [{ name: 'model', mountPath: paths.models }],
            securityContext,
          },
        ],
      };
    default:
      return { volumes: [], mounts: [], initContainers: [] };
  }
}

export function tlsMount(job: ProcessingJob): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const secretName = job.spec.kafka.tls?.enabled ? job.spec.kafka.tls.secretName : undefined;
  if (!secretName) return { volumes: [], mounts: [] };
  return {
    volumes: [{ name: 'kafka-tls', secret: { secretName } }],
    mounts: [{ name: 'kafka-tls', mountPath: paths.kafkaTls, readOnly: true }],
  };
}

/** The pod security context of workers and task pods (same user, so both read and write the checkpoint volume). */
export const podSecurity = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } };

export const containerSecurity: V1Container['securityContext'] = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};

function podAnnotations(job: ProcessingJob, configHash: string): Record<string, string> {
  const nonce = job.spec.restartNonce;
  return {
    ...job.spec.template?.annotations,
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(METRICS_PORT),
    [ANNOTATION_CONFIG_HASH]: configHash,
    ...(nonce ? { [ANNOTATION_RESTART_NONCE]: nonce } : {}),
  };
}

/** The schema accepts `cpu: 1` as well as `cpu: "1"`; the Pod API types want strings. */
function quantities(r: NonNullable<ProcessingJob['spec']['resources']>): V1ResourceRequirements {
  const strings = (m?: Record<string, string | number>) =>
    m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)])) : undefined;
  return { ...(r.requests ? { requests: strings(r.requests) } : {}), ...(r.limits ? { limits: strings(r.limits) } : {}) };
}

function workerContainer(job: ProcessingJob, image: string, model: ModelMount, tls: ReturnType<typeof tlsMount>): V1Container {
  const probe = (path: string, period: number) => ({
    httpGet: { path, port: 'metrics' },
    periodSeconds: period,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  const env = secretEnvVars(job);
  return {
    name: 'worker',
    image,
    ...(job.spec.imagePullPolicy ? { imagePullPolicy: job.spec.imagePullPolicy } : {}),
    args: ['worker', '--config', paths.configFile],
    ports: [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
    ...(env.length ? { env } : {}),
    ...(job.spec.resources ? { resources: quantities(job.spec.resources) } : {}),
    livenessProbe: { ...probe('/healthz', 10), initialDelaySeconds: 10 },
    readinessProbe: probe('/readyz', 5),
    volumeMounts: [
      { name: 'config', mountPath: paths.configDir, readOnly: true },
      { name: 'checkpoints', mountPath: paths.checkpoints },
      ...(job.spec.state?.backend === 'disk' ? [{ name: 'state', mountPath: paths.state }] : []),
      { name: 'tmp', mountPath: paths.tmp },
      ...model.mounts,
      ...tls.mounts,
    ],
    securityContext: containerSecurity,
  };
}

/** The disk state backend's store lives on the node's local disk (an emptyDir), never on the shared checkpoint volume. */
function stateVolumes(job: ProcessingJob): V1Volume[] {
  return job.spec.state?.backend === 'disk' ? [{ name: 'state', emptyDir: { sizeLimit: job.spec.state.localDiskSize } }] : [];
}

function renderDeployment(job: ProcessingJob, image: string, configHash: string, replicas: number): V1Deployment {
  const name = job.metadata.name;
  const names = childNames(name);
  const t = job.spec.template;
  const model = modelMount(job, containerSecurity);
  const tls = tlsMount(job);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(job, names.deployment),
    spec: {
      replicas,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(name) },
      template: {
        metadata: {
          labels: { ...t?.labels, ...standardLabels(name) },
          annotations: podAnnotations(job, configHash),
        },
        spec: {
          // Workers need no API access; the final checkpoint on SIGTERM needs time.
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 60,
          securityContext: podSecurity,
          ...(t?.serviceAccountName ? { serviceAccountName: t.serviceAccountName } : {}),
          ...(t?.priorityClassName ? { priorityClassName: t.priorityClassName } : {}),
          ...(t?.nodeSelector ? { nodeSelector: t.nodeSelector } : {}),
          ...(t?.tolerations ? { tolerations: t.tolerations as V1Toleration[] } : {}),
          ...(t?.affinity ? { affinity: t.affinity as V1Affinity } : {}),
          ...(t?.imagePullSecrets ? { imagePullSecrets: t.imagePullSecrets.map((n) => ({ name: n })) } : {}),
          ...(model.initContainers.length ? { initContainers: model.initContainers } : {}),
          containers: [workerContainer(job, image, model, tls)],
          volumes: [
            { name: 'config', configMap: { name: names.configMap } },
            { name: 'checkpoints', persistentVolumeClaim: { claimName: names.pvc } },
            ...stateVolumes(job),
            { name: 'tmp', emptyDir: {} },
            ...model.volumes,
            ...tls.volumes,
          ],
        },
      },
    },
  };
}

/** The children of a job: a pure function of the job and what the reconciler observed. */
export function render(job: ProcessingJob, ctx: RenderContext): Children {
  const name = job.metadata.name;
  const names = childNames(name);
  const workerYaml = stringify(renderWorkerConfig(job, ctx));
  const configHash = hashOf(workerYaml);
  const image = job.spec.image ?? ctx.workerImage;
  const replicas = job.spec.suspend ? 0 : (ctx.replicas ?? job.spec.parallelism);
  const { checkpoint } = job.spec;
  return {
    configHash,
    replicas,
    image,
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(job, names.configMap),
      data: { 'worker.yaml': workerYaml },
    },
    pvc: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      // Without an owner the garbage collector leaves the volume alone when the job goes.
      metadata: meta(job, names.pvc, !checkpoint.retainOnDelete),
      spec: {
        accessModes: [checkpoint.accessMode],
        resources: { requests: { storage: checkpoint.size } },
        ...(checkpoint.storageClassName ? { storageClassName: checkpoint.storageClassName } : {}),
      },
    },
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(job, names.service),
      spec: {
        selector: selectorLabels(name),
        ports: [{ name: 'metrics', port: METRICS_PORT, targetPort: 'metrics', protocol: 'TCP' }],
      },
    },
    deployment: renderDeployment(job, image, configHash, replicas),
  };
}
