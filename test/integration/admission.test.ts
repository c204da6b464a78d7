/**
 * Mistakes the API server can see for itself are refused when the job is
 * written, by the field's name, with an example of what to write instead: no
 * operator runs here, only the CRD's schema and CEL rules on a real API server.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../operator/api/types.js';
import { describeError } from '../../operator/kube/client.js';
import { repoRoot, uniqueName } from '../support/infra.js';
import { testCluster } from '../support/operator.js';

const cluster = testCluster();
const ns = uniqueName('admission');

type Spec = Record<string, unknown>;
const base = (): Spec => ({ type: 'churn', kafka: { bootstrapServers: ['kafka:9092'] }, redis: { host: 'redis' } });
const cart = (alerts: Spec): Spec => ({ ...base(), type: 'cart', alerts: { smtp: { host: 'smtp.shop.example' }, from: 'sluice@shop.example', to: ['ops@shop.example'], ...alerts } });
const kafka = (k: Spec): Spec => ({ ...base(), kafka: { bootstrapServers: ['kafka:9092'], ...k } });

beforeAll(async () => {
  await cluster.installCrd();
  await cluster.createNamespace(ns);
});
afterAll(async () => {
  await cluster.deleteNamespace(ns);
});

let n = 0;
async function refusal(spec: Spec): Promise<string> {
  try {
    await cluster.applyJob(ns, `bad-${n++}`, spec);
  } catch (err) {
    return describeError(err);
  }
  throw new Error(`the API server accepted ${JSON.stringify(spec)}`);
}

/** [what is wrong, spec, what the message must say (the field, and what to write)] */
const refused: [string, Spec, string[]][] = [
  ['parallelism 0 without suspend', { ...base(), parallelism: 0 }, ['spec.parallelism', 'spec.parallelism is 0, so no worker would run', 'spec.suspend: true']],
  ['an image reference with spaces', { ...base(), image: 'my registry/sluice:1' }, ['spec.image', "'my registry/sluice:1' is not an image reference", 'registry.example.com/shop/sluice:0.1.0']],
  ['an empty image', { ...base(), image: '' }, ['spec.image']],
  ['an image with a scheme', { ...base(), image: 'https://registry.example.com/sluice:1' }, ['spec.image', 'is not an image reference']],
  ['an uppercase repository', { ...base(), image: 'registry.example.com/Shop/Sluice:1' }, ['spec.image', 'lowercase repository']],
  ['a model image reference with spaces', { ...base(), model: { source: 'image', image: { reference: 'models: v1', path: '/m.onnx' } } }, ['spec.model.image.reference', 'is not an image reference']],
  ['a relative model path inside an image', { ...base(), model: { source: 'image', image: { reference: 'models:v1', path: 'm.onnx' } } }, ['spec.model.image.path', 'for example /models/churn.onnx']],
  ['a Redis host with a scheme', { ...base(), redis: { host: 'redis://x' } }, ['spec.redis.host', "'redis://x' has a scheme", 'redis.shop.svc', 'spec.redis.port']],
  ['a Redis host with a port', { ...base(), redis: { host: 'redis:6379' } }, ['spec.redis.host', 'is not a host name or IP address', 'spec.redis.port']],
  ['an SMTP host with a scheme', cart({ smtp: { host: 'smtp://mail' } }), ['spec.alerts.smtp.host', 'has a scheme', 'spec.alerts.smtp.port']],
  ['a broker port above 65535', kafka({ bootstrapServers: ['127.0.0.1:99999'] }), ['spec.kafka.bootstrapServers[0]', "'127.0.0.1:99999' has port 99999, outside 1-65535"]],
  ['a broker port 0', kafka({ bootstrapServers: ['kafka:9092', 'kafka-1:0'] }), ['spec.kafka.bootstrapServers[1]', 'has port 0, outside 1-65535']],
  ['a broker with a scheme', kafka({ bootstrapServers: ['PLAINTEXT://kafka:9092'] }), ['spec.kafka.bootstrapServers[0]', 'is not host:port', 'kafka:9092']],
  ['a broker without a port', kafka({ bootstrapServers: ['kafka'] }), ['spec.kafka.bootstrapServers[0]', 'is not host:port']],
  ['a topic with spaces', kafka({ topic: 'user events' }), ['spec.kafka.topic', "'user events' is not a Kafka topic name", 'for example user_events']],
  ['a dead-letter topic with a slash', kafka({ deadLetterTopic: 'dlq/x' }), ['spec.kafka.deadLetterTopic', 'is not a Kafka topic name']],
  ['a CPU request that is no quantity', { ...base(), resources: { requests: { cpu: 'lots' } } }, ['spec.resources.requests', "'lots' is not a quantity", '500m']],
  ['a memory limit that is no quantity', { ...base(), resources: { limits: { memory: '1 GB' } } }, ['spec.resources.limits', 'is not a quantity', '512Mi']],
  ['a checkpoint size that is no quantity', { ...base(), checkpoint: { size: 'big' } }, ['spec.checkpoint.size', 'such as 512Mi or 1Gi']],
  ['a sender that is no address', cart({ from: 'sluice' }), ['spec.alerts.from', 'is not an email address', 'alerts@shop.example']],
  ['a recipient that is no address', cart({ to: ['ops@shop.example', 'nobody'] }), ['spec.alerts.to[1]', 'is not an email address']],
  ['a model ConfigMap key with a slash', { ...base(), model: { source: 'configMap', configMap: { name: 'm', key: 'a/b.onnx' } } }, ['spec.model.configMap.key', 'for example churn.onnx']],
];

describe('admission: each mistake refused by the field, with an example', () => {
  it.each(refused)('refuses %s', async (_what, spec, expected) => {
    const message = await refusal(spec);
    for (const piece of expected) expect(message).toContain(piece);
    // Never a bare regular expression: the user reads an example instead.
    expect(message).not.toMatch(/should match '/);
  });

  it('refuses kubectl scale to 0 of a running job, and accepts 0 with suspend or autoscaling', async () => {
    await cluster.applyJob(ns, 'scaled', { ...base(), parallelism: 2 });
    const scale = () =>
      cluster.custom.patchNamespacedCustomObjectScale(
        { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name: 'scaled', body: { spec: { replicas: 0 } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    const refusedScale = await scale().then(
      () => 'accepted',
      (err: unknown) => describeError(err),
    );
    expect(refusedScale).toContain('spec.parallelism is 0, so no worker would run');
    await cluster.applyJob(ns, 'suspended', { ...base(), parallelism: 0, suspend: true });
    expect((await cluster.getJob(ns, 'suspended'))!.spec.parallelism).toBe(0);
    await cluster.applyJob(ns, 'autoscaled', { ...base(), parallelism: 0, autoscaling: { enabled: true, minParallelism: 1, maxParallelism: 4 } });
  });

  it('accepts what the rules are meant to let through', async () => {
    const ok: Spec[] = [
      kafka({ bootstrapServers: ['kafka:9092', '10.0.0.5:9093', '[::1]:9092', 'kafka-0.kafka.shop.svc.cluster.local:65535'], topic: 'shop.user_events-v2' }),
      { ...base(), redis: { host: '10.0.0.7' } },
      { ...base(), redis: { host: '::1' } },
      { ...base(), redis: { host: 'redis-master.shop.svc.cluster.local' } },
      { ...base(), image: 'registry.example.com:5000/shop/sluice:0.1.0' },
      { ...base(), image: `sluice@sha256:${'a'.repeat(64)}` },
      { ...base(), image: 'sluice' },
      { ...base(), resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: 2, memory: '2Gi' } } },
      cart({ smtp: { host: 'mailpit', port: 1025 } }),
    ];
    for (const [i, spec] of ok.entries()) await cluster.applyJob(ns, `ok-${i}`, spec);
  });

  it('accepts every example job of the repository', async () => {
    const dir = join(repoRoot, 'examples');
    const jobs = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as { kind?: string; metadata: { name: string }; spec: Spec }))
      .filter((d) => d?.kind === 'ProcessingJob');
    expect(jobs.length).toBeGreaterThan(1);
    for (const job of jobs) await cluster.applyJob(ns, `example-${job.metadata.name}`, job.spec);
  });
});
