import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec, type SpecInput } from '../api/sample.js';
import type { PartitionInfo } from '../observe/partitions.js';
import { validate, type ValidationReads } from './validate.js';

const reads = (secrets: Record<string, V1Secret> = {}, configMaps: Record<string, V1ConfigMap> = {}): ValidationReads => ({
  getSecret: async (_ns, name) => secrets[name],
  getConfigMap: async (_ns, name) => configMaps[name],
  getPvc: async () => undefined,
});
const job = (spec: Partial<SpecInput> = {}) => defaultedJob('churn', 'shop', { ...minimalSpec(), ...spec });
const partitions = (info: PartitionInfo) => () => info;
const known = partitions({ state: 'known', partitions: 4 });

describe('operator-side checks', () => {
  it('accepts a job whose parallelism fits the partitions', async () => {
    const r = await validate(job({ parallelism: 4 }), reads(), known);
    expect(r.validation).toEqual({ state: 'valid', message: "the spec passed all checks; topic 'user_events' has 4 partitions" });
  });

  it('refuses parallelism above the partitions, but not while suspended', async () => {
    expect((await validate(job({ parallelism: 5 }), reads(), known)).validation).toMatchObject({ state: 'invalid', reason: 'ParallelismAboveTopicPartitions' });
    expect((await validate(job({ parallelism: 5, suspend: true }), reads(), known)).validation.state).toBe('valid');
  });

  it('names the missing Secret and the field that refers to it', async () => {
    const r = await validate(job({ redis: { host: 'r', passwordSecret: { name: 'redis-creds', key: 'password' } } }), reads(), known);
    expect(r.validation).toEqual({ state: 'invalid', reason: 'SecretNotFound', message: 'Secret shop/redis-creds (spec.redis.passwordSecret.name) not found: create it or fix the name' });
  });

  it('names the missing key of a Secret', async () => {
    const r = await validate(job({ kafka: { bootstrapServers: ['k:1'], sasl: { mechanism: 'plain', secretName: 's', usernameKey: 'user', passwordKey: 'pass' } } }), reads({ s: { data: { user: 'dQ==' } } }), known);
    expect(r.validation).toMatchObject({ reason: 'SecretKeyMissing', message: "Secret shop/s (spec.kafka.sasl.secretName) has no key 'pass'" });
  });

  it('sees whether the Kafka TLS Secret has a client certificate', async () => {
    const secret = { data: { 'ca.crt': 'eA==', 'tls.crt': 'eA==', 'tls.key': 'eA==' } };
    const r = await validate(job({ kafka: { bootstrapServers: ['k:1'], tls: { enabled: true, secretName: 'tls', insecureSkipVerify: false } } }), reads({ tls: secret }), known);
    expect(r.kafkaClientCertificate).toBe(true);
  });

  it('lists the keys a model ConfigMap does have', async () => {
    const r = await validate(job({ model: { source: 'configMap', configMap: { name: 'm', key: 'churn.onnx' } } }), reads({}, { m: { binaryData: { 'cart.onnx': 'AA==' } } }), known);
    expect(r.validation).toMatchObject({ reason: 'ModelNotFound', message: "ConfigMap shop/m has no key 'churn.onnx' (spec.model.configMap.key); it has: cart.onnx" });
  });

  it('does not refuse a spec when Kafka cannot be reached', async () => {
    const r = await validate(job(), reads(), partitions({ state: 'unreachable', message: 'connect ECONNREFUSED' }));
    expect(r.validation).toMatchObject({ state: 'unknown', reason: 'KafkaUnreachable' });
  });

  it('refuses a checkpoint StorageClass that does not exist, by the field, unless the volume is bound or the class unreadable', async () => {
    const classes = (found: 'none' | 'unknown'): ValidationReads => ({ ...reads(), getStorageClass: async () => (found === 'none' ? undefined : 'unknown') });
    const spec = job({ checkpoint: { storageClassName: 'fast-ssd' } as SpecInput['checkpoint'] });
    const r = await validate(spec, classes('none'), known);
    expect(r.validation).toMatchObject({ state: 'invalid', reason: 'StorageClassNotFound' });
    expect((r.validation as { message: string }).message).toContain("StorageClass 'fast-ssd' (spec.checkpoint.storageClassName) does not exist");
    expect((await validate(spec, classes('unknown'), known)).validation.state).toBe('valid');
    expect((await validate(spec, classes('none'), known, { status: { phase: 'Bound' } })).validation.state).toBe('valid');
    expect((await validate(job(), classes('none'), known)).validation.state).toBe('valid');
  });
});
