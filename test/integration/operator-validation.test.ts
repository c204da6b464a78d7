import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeError } from '../../operator/kube/client.js';
import { conditionOf } from '../../operator/reconcile/status.js';
import { waitFor } from '../support/cluster.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { kafka, uniqueName } from '../support/infra.js';

const cluster = testCluster();
const brokers = kafka().brokers;
const ns = uniqueName('op-valid');
const topic = uniqueName('events');

const base = () => ({ type: 'churn', parallelism: 1, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'redis.example' } });
type Spec = Record<string, unknown>;
const withKafka = (kafkaExtra: Spec, extra: Spec = {}): Spec => ({ ...base(), kafka: { ...base().kafka, ...kafkaExtra }, ...extra });
const autoscaled = (autoscaling: Spec, extra: Spec = {}): Spec => ({ ...base(), autoscaling: { enabled: true, ...autoscaling }, ...extra });

/** [what is wrong, spec, a piece of the API server's message that names the problem] */
const refused: [string, Spec, string][] = [
  ['unknown job type', { ...base(), type: 'batch' }, 'spec.type: Unsupported value: "batch"'],
  ['negative parallelism', { ...base(), parallelism: -1 }, 'spec.parallelism'],
  ['parallelism above 1024', { ...base(), parallelism: 5000 }, 'spec.parallelism: Invalid value: 5000'],
  ['no kafka block', { type: 'churn', redis: { host: 'r' } }, 'spec.kafka: Required value'],
  ['no bootstrap servers', withKafka({ bootstrapServers: [] }), 'spec.kafka.bootstrapServers'],
  ['broker without a port', withKafka({ bootstrapServers: ['kafka'] }), 'spec.kafka.bootstrapServers[0]'],
  ['topic with spaces', withKafka({ topic: 'user events' }), 'spec.kafka.topic'],
  ['dead-letter topic equal to the topic', withKafka({ deadLetterTopic: topic }), 'spec.kafka.deadLetterTopic must differ from spec.kafka.topic'],
  ['unknown start position', withKafka({ startFrom: 'middle' }), 'spec.kafka.startFrom: Unsupported value'],
  ['SASL without a Secret', withKafka({ sasl: { mechanism: 'plain' } }), 'spec.kafka.sasl.secretName: Required value'],
  ['Redis port out of range', { ...base(), redis: { host: 'r', port: 70000 } }, 'spec.redis.port'],
  ['Redis without a host', { ...base(), redis: { port: 6379 } }, 'spec.redis.host: Required value'],
  ['cart settings on a churn job', { ...base(), cart: { abandonWindowMinutes: 30 } }, "spec.cart: Forbidden: spec.cart is only allowed when spec.type is 'cart'"],
  ['alerts on a churn job', { ...base(), alerts: { smtp: { host: 'm' }, from: 'a@x.io', to: ['b@x.io'] } }, "spec.alerts is only allowed when spec.type is 'cart'"],
  ['abandon threshold above 1', { ...base(), type: 'cart', cart: { abandonThreshold: 1.5 } }, 'spec.cart.abandonThreshold'],
  ['alert recipient that is no address', { ...base(), type: 'cart', alerts: { smtp: { host: 'm' }, from: 'a@x.io', to: ['nobody'] } }, 'spec.alerts.to[0]'],
  ['model source configMap without the ConfigMap', { ...base(), model: { source: 'configMap' } }, "spec.model.configMap is required when spec.model.source is 'configMap'"],
  ['model path escaping the volume', { ...base(), model: { source: 'pvc', pvc: { claimName: 'm', path: '../etc/passwd' } } }, "spec.model.pvc.path must be relative to the volume root and must not contain '..'"],
  ['checkpoint size that is no quantity', { ...base(), checkpoint: { size: 'lots' } }, 'spec.checkpoint.size must be a positive quantity'],
  ['checkpoint interval of zero', { ...base(), checkpoint: { intervalSeconds: 0 } }, 'spec.checkpoint.intervalSeconds'],
  ['a restore with neither snapshot nor offsets', { ...base(), restore: { id: 'r1' } }, 'spec.restore needs fromSnapshot, offsets, or both'],
  ['an offset reset that does not say what happens to state', { ...base(), restore: { id: 'r1', offsets: { reset: 'earliest' } } }, 'spec.restore.offsets needs an explicit spec.restore.state (keep or drop)'],
  ['an offset reset to a time without the time', { ...base(), restore: { id: 'r1', offsets: { reset: 'timestamp' }, state: 'drop' } }, "spec.restore.offsets.timestamp is required when reset is 'timestamp'"],
  ['rollback without the snapshot before the change', { ...base(), upgrade: { rollback: true } }, 'spec.upgrade.rollback needs spec.upgrade.snapshotBeforeChange'],
  ['CPU request that is no quantity', { ...base(), resources: { requests: { cpu: 'lots' } } }, 'spec.resources.requests[cpu]'],
  ['autoscaling minimum above its maximum', autoscaled({ minParallelism: 4, maxParallelism: 2 }), 'spec.autoscaling.minParallelism: Invalid value: spec.autoscaling.minParallelism must not exceed spec.autoscaling.maxParallelism'],
  ['autoscaling down to no worker on a running job', autoscaled({ minParallelism: 0 }), 'spec.autoscaling.minParallelism must be at least 1 while autoscaling is enabled'],
  [
    'a scale-down window shorter than the scale-up window',
    autoscaled({ scaleUpStabilizationSeconds: 120, scaleDownStabilizationSeconds: 60 }),
    'spec.autoscaling.scaleDownStabilizationSeconds must be at least spec.autoscaling.scaleUpStabilizationSeconds',
  ],
  ['a target utilisation above 100%', autoscaled({ targetUtilization: 1.5 }), 'spec.autoscaling.targetUtilization'],
  ['a catch-up target of zero', autoscaled({ catchUpSeconds: 0 }), 'spec.autoscaling.catchUpSeconds'],
  ['an unknown autoscaling mode', autoscaled({ mode: 'Auto' }), 'spec.autoscaling.mode: Unsupported value: "Auto"'],
  ['an autoscaling maximum of zero', autoscaled({ maxParallelism: 0 }), 'spec.autoscaling.maxParallelism'],
];

async function refusal(name: string, spec: Spec): Promise<string> {
  try {
    await cluster.applyJob(ns, name, spec);
  } catch (err) {
    return describeError(err);
  }
  throw new Error(`the API server accepted ${name}`);
}

const condition = (name: string, type: 'ConfigValid' | 'Degraded' | 'Ready', status: string, reason: string) =>
  waitFor(`${name} ${type}=${status} (${reason})`, 60_000, async () => {
    const job = await cluster.getJob(ns, name);
    const c = conditionOf(job?.status, type);
    return c?.status === status && c.reason === reason ? c : undefined;
  });

const operator = operatorInNamespace(cluster, ns, topic);

describe('operator: invalid ProcessingJobs refused at admission', () => {
  it.each(refused)('refuses %s with a message naming the field', async (_what, spec, expected) => {
    const message = await refusal(`bad-${refused.findIndex((r) => r[1] === spec)}`, spec);
    expect(message).toContain(expected);
  });

  it('refuses a name too long for the children it would get', async () => {
    expect(await refusal('x'.repeat(60), base())).toContain('metadata.name must start with a letter');
  });

  it('accepts autoscaling with every default filled in, and no minimum on a suspended job', async () => {
    const job = await cluster.applyJob(ns, 'autoscaled', autoscaled({}));
    expect(job.spec.autoscaling).toEqual({
      enabled: true,
      mode: 'Scale',
      minParallelism: 1,
      catchUpSeconds: 300,
      targetUtilization: 0.8,
      metricsWindowSeconds: 30,
      scaleUpStabilizationSeconds: 30,
      scaleDownStabilizationSeconds: 300,
    });
    expect((await cluster.applyJob(ns, 'parked', autoscaled({ minParallelism: 0 }, { suspend: true }))).spec.autoscaling?.minParallelism).toBe(0);
  });

  it('explains the autoscaling fields and their defaults in kubectl explain', async () => {
    // A cache of this test's own: kubectl's shared discovery cache may predate the CRD. The API server
    // publishes a CRD's schema in its OpenAPI document a moment after the CRD is established.
    const cacheDir = mkdtempSync(join(tmpdir(), 'kubectl-cache-'));
    const explain = (path: string): Promise<string> => cluster.kubectl('--cache-dir', cacheDir, 'explain', path);
    let last = '';
    const text = await waitFor('the CRD in the OpenAPI document', 90_000, async () => {
      last = await explain('processingjob.spec.autoscaling').catch((err: Error) => err.message);
      return last.includes('catchUpSeconds') ? last : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; kubectl explain said: ${last.slice(0, 500)}`);
    });
    for (const field of ['enabled', 'mode', 'minParallelism', 'maxParallelism', 'catchUpSeconds', 'targetUtilization', 'metricsWindowSeconds', 'scaleUpStabilizationSeconds', 'scaleDownStabilizationSeconds']) {
      expect(text).toContain(field);
    }
    expect(text).toContain("Default, and always capped at, the topic's partition count");
    expect(await explain('processingjob.status.autoscaling.processingRatePerWorker')).toContain('per second of busy time');
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('refuses to change the type of an existing job', async () => {
    await cluster.applyJob(ns, 'typed', base());
    expect(await refusal('typed', { ...base(), type: 'cart' })).toContain('spec.type is immutable');
  });
});

describe('operator: problems only the operator can see become conditions and Events', () => {
  it('reports a missing Secret, applies nothing, and recovers once the Secret exists', async () => {
    await cluster.applyJob(ns, 'nosecret', withKafka({ sasl: { mechanism: 'plain', secretName: 'kafka-creds' } }));
    const c = await condition('nosecret', 'ConfigValid', 'False', 'SecretNotFound');
    expect(c.message).toContain('kafka-creds');
    expect(c.message).toContain('spec.kafka.sasl.secretName');
    const job = await cluster.getJob(ns, 'nosecret');
    expect(job!.status!.phase).toBe('Degraded');
    expect(conditionOf(job!.status, 'Degraded')!.reason).toBe('SecretNotFound');
    await expect(cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'nosecret-worker' })).rejects.toMatchObject({ code: 404 });
    const events = await cluster.events(ns, 'nosecret');
    expect(events.filter((e) => e.reason === 'SecretNotFound' && e.type === 'Warning')).toHaveLength(1);

    await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'kafka-creds' }, stringData: { username: 'u', password: 'p' } } });
    // The operator re-checks a refused spec every 30 s: no watch on Secrets (least privilege), no hot loop.
    await waitFor('worker Deployment after the Secret appears', 60_000, async () =>
      (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'nosecret-worker' })).metadata?.name,
    );
    const env = (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'nosecret-worker' })).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'KAFKA_SASL_PASSWORD')!.valueFrom!.secretKeyRef).toEqual({ name: 'kafka-creds', key: 'password' });
    const cm = await cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'nosecret-config' });
    expect(cm.data!['worker.yaml']).not.toContain('kafka-creds');
  });

  it('reports a Secret without the key the spec names', async () => {
    await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'redis-creds' }, stringData: { pass: 'x' } } });
    await cluster.applyJob(ns, 'nokey', { ...base(), redis: { host: 'r', passwordSecret: { name: 'redis-creds' } } });
    const c = await condition('nokey', 'ConfigValid', 'False', 'SecretKeyMissing');
    expect(c.message).toContain("has no key 'password'");
  });

  it('reports an unknown model ConfigMap, a ConfigMap without the model key, and a missing model PVC', async () => {
    await cluster.applyJob(ns, 'nomodel', { ...base(), model: { source: 'configMap', configMap: { name: 'models', key: 'churn.onnx' } } });
    expect((await condition('nomodel', 'ConfigValid', 'False', 'ModelNotFound')).message).toContain('ConfigMap');
    await cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'models2' }, binaryData: { 'other.onnx': 'AAAA' } } });
    await cluster.applyJob(ns, 'nomodelkey', { ...base(), model: { source: 'configMap', configMap: { name: 'models2', key: 'churn.onnx' } } });
    expect((await condition('nomodelkey', 'ConfigValid', 'False', 'ModelNotFound')).message).toContain("has no key 'churn.onnx'");
    await cluster.applyJob(ns, 'nomodelpvc', { ...base(), model: { source: 'pvc', pvc: { claimName: 'ml-models', path: 'churn.onnx' } } });
    expect((await condition('nomodelpvc', 'ConfigValid', 'False', 'ModelNotFound')).message).toContain('ml-models');
  });

  it('refuses parallelism above the partition count of the topic', async () => {
    await cluster.applyJob(ns, 'toowide', { ...base(), parallelism: 8 });
    const c = await condition('toowide', 'ConfigValid', 'False', 'ParallelismAboveTopicPartitions');
    expect(c.message).toContain('spec.parallelism is 8');
    expect(c.message).toContain('4 partitions');
    expect((await cluster.events(ns, 'toowide')).some((e) => e.reason === 'ParallelismAboveTopicPartitions')).toBe(true);
  });

  it('reports a topic that does not exist', async () => {
    await cluster.applyJob(ns, 'notopic', withKafka({ topic: uniqueName('absent') }));
    expect((await condition('notopic', 'ConfigValid', 'False', 'TopicNotFound')).message).toContain('spec.kafka.topic');
  });

  it('treats an unreachable Kafka as a condition and still runs the workers', async () => {
    await cluster.applyJob(ns, 'nokafka', withKafka({ bootstrapServers: ['127.0.0.1:1'] }));
    await condition('nokafka', 'ConfigValid', 'Unknown', 'KafkaUnreachable');
    await condition('nokafka', 'Ready', 'True', 'WorkersReady');
  });

  it('reports a child the API server refuses (bad toleration) without a hot loop', async () => {
    await cluster.applyJob(ns, 'badpod', { ...base(), template: { tolerations: [{ key: 'a', operator: 'Sometimes' }] } });
    const c = await condition('badpod', 'ConfigValid', 'False', 'ChildRejected');
    expect(c.message).toContain('toleration');
    const metrics = await (await fetch(`http://${operator().metricsAddress}/metrics`)).text();
    const reconciles = Number(/sluice_operator_reconcile_total\{result="success"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    await new Promise((r) => setTimeout(r, 3_000));
    const later = Number(/sluice_operator_reconcile_total\{result="success"\} (\d+)/.exec(await (await fetch(`http://${operator().metricsAddress}/metrics`)).text())?.[1] ?? 0);
    expect(later - reconciles).toBeLessThan(10);
  });
});
