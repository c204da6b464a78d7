import type { V1ConfigMap, V1PersistentVolumeClaim, V1Secret, V1StorageClass } from '@kubernetes/client-node';
import type { ProcessingJob } from '../api/types.js';
import type { PartitionInfo } from '../observe/partitions.js';
import { autoscalerActs } from './autoscale.js';
import type { Validation } from './status.js';

/** The reads the checks need (the Kube client in production). */
export interface ValidationReads {
  getSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  getPvc(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  /** A StorageClass; 'unknown' when the operator may not read StorageClasses (a namespaced install). */
  getStorageClass?(name: string): Promise<V1StorageClass | undefined | 'unknown'>;
}

/** The partition count of a job's topic, as far as it is known now (see partitions.ts). */
export type PartitionLookup = (job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>) => PartitionInfo;

export interface ValidationResult {
  validation: Validation;
  /** The Kafka TLS Secret has a client certificate. */
  kafkaClientCertificate: boolean;
  /** Secrets read for the checks, by name (for Kafka credentials of the partition probe). */
  secrets: Map<string, V1Secret>;
  /** The topic's partition count, when known. */
  partitions?: number;
}

interface SecretNeed {
  name: string;
  keys: string[];
  field: string;
}

function secretNeeds(job: ProcessingJob): SecretNeed[] {
  const { kafka, redis, alerts } = job.spec;
  const needs: SecretNeed[] = [];
  if (kafka.sasl) needs.push({ name: kafka.sasl.secretName, keys: [kafka.sasl.usernameKey, kafka.sasl.passwordKey], field: 'spec.kafka.sasl.secretName' });
  if (kafka.tls?.enabled && kafka.tls.secretName) needs.push({ name: kafka.tls.secretName, keys: ['ca.crt'], field: 'spec.kafka.tls.secretName' });
  if (redis.passwordSecret) needs.push({ name: redis.passwordSecret.name, keys: [redis.passwordSecret.key], field: 'spec.redis.passwordSecret.name' });
  // The CRD allows spec.alerts on cart jobs only.
  if (alerts?.smtp.secretName) {
    needs.push({ name: alerts.smtp.secretName, keys: ['username', 'password'], field: 'spec.alerts.smtp.secretName' });
  }
  return needs;
}

const invalid = (reason: string, message: string): Validation => ({ state: 'invalid', reason, message });

async function checkSecrets(job: ProcessingJob, reads: ValidationReads, found: Map<string, V1Secret>): Promise<Validation | undefined> {
  const ns = job.metadata.namespace;
  for (const need of secretNeeds(job)) {
    const secret = found.get(need.name) ?? (await reads.getSecret(ns, need.name));
    if (!secret) return invalid('SecretNotFound', `Secret ${ns}/${need.name} (${need.field}) not found: create it or fix the name`);
    found.set(need.name, secret);
    const present = new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
    const missing = need.keys.filter((k) => !present.has(k));
    if (missing.length) {
      return invalid('SecretKeyMissing', `Secret ${ns}/${need.name} (${need.field}) has no key ${missing.map((k) => `'${k}'`).join(', ')}`);
    }
  }
  return undefined;
}

async function checkModel(job: ProcessingJob, reads: ValidationReads): Promise<Validation | undefined> {
  const model = job.spec.model;
  const ns = job.metadata.namespace;
  if (model?.source === 'configMap' && model.configMap) {
    const cm = await reads.getConfigMap(ns, model.configMap.name);
    if (!cm) return invalid('ModelNotFound', `ConfigMap ${ns}/${model.configMap.name} (spec.model.configMap.name) not found`);
    const keys = [...Object.keys(cm.binaryData ?? {}), ...Object.keys(cm.data ?? {})];
    if (!keys.includes(model.configMap.key)) {
      return invalid('ModelNotFound', `ConfigMap ${ns}/${model.configMap.name} has no key '${model.configMap.key}' (spec.model.configMap.key); it has: ${keys.join(', ') || 'nothing'}`);
    }
  }
  if (model?.source === 'pvc' && model.pvc) {
    const pvc = await reads.getPvc(ns, model.pvc.claimName);
    if (!pvc) return invalid('ModelNotFound', `PersistentVolumeClaim ${ns}/${model.pvc.claimName} (spec.model.pvc.claimName) not found`);
  }
  return undefined;
}

/**
 * A checkpoint volume of a class that does not exist stays Pending for ever:
 * say so at once, by the field, instead of a PodPendingTooLong minutes later.
 * A volume that is already bound needs no class any more.
 */
async function checkStorageClass(job: ProcessingJob, reads: ValidationReads, pvc: V1PersistentVolumeClaim | undefined): Promise<Validation | undefined> {
  const name = job.spec.checkpoint.storageClassName;
  if (!name || !reads.getStorageClass || pvc?.status?.phase === 'Bound') return undefined;
  const found = await reads.getStorageClass(name);
  if (found !== undefined) return undefined;
  return invalid(
    'StorageClassNotFound',
    `StorageClass '${name}' (spec.checkpoint.storageClassName) does not exist, so the checkpoint volume could never be provisioned: ` +
      `create it, or set spec.checkpoint.storageClassName to one of 'kubectl get storageclass' (leave it out for the cluster's default)`,
  );
}

function checkPartitions(job: ProcessingJob, info: PartitionInfo): Validation {
  const topic = job.spec.kafka.topic;
  switch (info.state) {
    case 'known':
      // An autoscaled job runs what the autoscaler says, never more than the partitions: spec.parallelism waits unused.
      if (job.spec.parallelism > info.partitions && !job.spec.suspend && !autoscalerActs(job)) {
        return invalid(
          'ParallelismAboveTopicPartitions',
          `spec.parallelism is ${job.spec.parallelism} but topic '${topic}' has ${info.partitions} partitions: extra workers would sit idle; lower spec.parallelism or add partitions`,
        );
      }
      return { state: 'valid', message: `the spec passed all checks; topic '${topic}' has ${info.partitions} partitions` };
    case 'missing':
      return invalid('TopicNotFound', `Kafka topic '${topic}' (spec.kafka.topic) does not exist on ${job.spec.kafka.bootstrapServers.join(',')}`);
    case 'unreachable':
      return { state: 'unknown', reason: 'KafkaUnreachable', message: `cannot check topic '${topic}': ${info.message}` };
    case 'pending':
      return { state: 'unknown', reason: 'CheckingKafka', message: `checking topic '${topic}' on ${job.spec.kafka.bootstrapServers.join(',')}` };
  }
}

/** What only the operator can check: Secrets, model sources, the checkpoint StorageClass, topic partitions. */
export async function validate(
  job: ProcessingJob,
  reads: ValidationReads,
  partitions: PartitionLookup,
  checkpointPvc?: V1PersistentVolumeClaim,
): Promise<ValidationResult> {
  const secrets = new Map<string, V1Secret>();
  const tlsSecret = job.spec.kafka.tls?.enabled ? job.spec.kafka.tls.secretName : undefined;
  const result = (validation: Validation): ValidationResult => {
    const tls = tlsSecret ? secrets.get(tlsSecret) : undefined;
    const keys = new Set(Object.keys(tls?.data ?? {}));
    return { validation, secrets, kafkaClientCertificate: keys.has('tls.crt') && keys.has('tls.key') };
  };
  const problem = (await checkSecrets(job, reads, secrets)) ?? (await checkModel(job, reads)) ?? (await checkStorageClass(job, reads, checkpointPvc));
  if (problem) return result(problem);
  const info = partitions(job, secrets);
  return { ...result(checkPartitions(job, info)), partitions: info.state === 'known' ? info.partitions : undefined };
}
