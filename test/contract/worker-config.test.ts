/**
 * The worker configuration is one contract: the same ProcessingJob gives the
 * same effective worker configuration under the operator, under `sluice run`
 * and under `sluice worker` started from the seed's environment variables; and
 * the defaults of the worker's schema are the CRD's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { leafDefaults, type SchemaNode } from '../../lib/worker-config/schema-kit.js';
import { localWorkerConfigs } from '../../cli/local/job-config.js';
import { readJobFile } from '../../cli/local/job-file.js';
import { defaultedJob } from '../../operator/api/sample.js';
import { crdPath } from '../../operator/api/paths.js';
import { loadCrdSchema, type JsonSchema } from '../../operator/api/schema-to-ts.js';
import { render } from '../../operator/render/render.js';
import { loadWorkerConfig, resolveWorkerConfig, workerConfig, type WorkerConfig } from '../../workers/config.js';
import { jobTypes } from '../../workers/jobs/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const jobYaml = `apiVersion: sluice.dev/v1alpha1
kind: ProcessingJob
metadata: { name: shop-cart }
spec:
  type: cart
  kafka: { bootstrapServers: ["kafka:9092"], topic: shop_events }
  redis: { host: redis, port: 6380 }
  cart: { abandonWindowMinutes: 30, abandonThreshold: 0.6 }
`;

/** The seed's variables for the same job (plus its name, which the seed's processors did not have). */
const seedEnv = {
  SLUICE_JOB_NAME: 'shop-cart',
  KAFKA_BOOTSTRAP_SERVERS: 'kafka:9092',
  KAFKA_TOPIC: 'shop_events',
  REDIS_HOST: 'redis',
  REDIS_PORT: '6380',
  CART_ABANDON_THRESHOLD: '0.6',
  ABANDON_WINDOW_MIN: '30',
};

/** Under the operator: render the ConfigMap, then what the worker in the pod reads from /etc/sluice/worker.yaml. */
function underOperator(): WorkerConfig {
  const doc = parse(jobYaml) as { metadata: { name: string }; spec: Parameters<typeof defaultedJob>[2] };
  const children = render(defaultedJob(doc.metadata.name, 'default', doc.spec), { workerImage: 'sluice:test' });
  const file = join(dir, 'pod-worker.yaml');
  writeFileSync(file, children.configMap.data!['worker.yaml']!);
  return loadWorkerConfig(file, {});
}

/** Under `sluice run -f job.yaml`: the file it renders for worker 0, read by that worker. */
function underSluiceRun(): WorkerConfig {
  const jobFile = join(dir, 'job.yaml');
  writeFileSync(jobFile, jobYaml);
  const [first] = localWorkerConfigs(readJobFile(jobFile), { checkpointRoot: join(dir, 'checkpoints'), metricsPortBase: 9090, env: {} });
  const file = join(dir, 'worker-0.yaml');
  writeFileSync(file, stringify(first));
  return loadWorkerConfig(file, {});
}

/** Under `sluice worker --type cart` with no file: the environment alone. */
const underSluiceWorker = (): WorkerConfig => loadWorkerConfig(undefined, seedEnv, { type: 'cart' });

/** Where a process keeps its files and how it names itself to Kafka differ by door on purpose. */
function placementFree(c: WorkerConfig): WorkerConfig {
  const copy = structuredClone(c);
  delete (copy.checkpoint as { dir?: string }).dir;
  delete copy.kafka.clientId;
  return copy;
}

describe('one ProcessingJob, three ways to start its worker', () => {
  it('gives the same effective worker configuration under the operator, sluice run and sluice worker with the seed variables', () => {
    const [operator, run, worker] = [underOperator(), underSluiceRun(), underSluiceWorker()];
    expect(placementFree(run)).toEqual(placementFree(operator));
    expect(placementFree(worker)).toEqual(placementFree(operator));
    expect(operator).toMatchObject({
      job: { name: 'shop-cart', namespace: 'default', type: 'cart' },
      kafka: { topic: 'shop_events', consumerGroup: 'sluice-default-shop-cart', deadLetterTopic: 'shop_events.dlq', startFrom: 'latest', sessionTimeoutSeconds: 30 },
      redis: { host: 'redis', port: 6380, db: 0, keyPrefix: '' },
      checkpoint: { intervalSeconds: 60 },
      cart: { abandonWindowMinutes: 30, abandonThreshold: 0.6 },
      metrics: { port: 9090 },
    });
    expect([operator.checkpoint.dir, run.checkpoint.dir, worker.checkpoint.dir]).toEqual(['/var/lib/sluice/checkpoints', join(dir, 'checkpoints', 'shop-cart'), 'checkpoints']);
  });

  it('gives a cart job that leaves spec.cart out its window and threshold defaults (60 min, 0.75) and its alerts', () => {
    const spec = { type: 'cart' as const, kafka: { bootstrapServers: ['kafka:9092'] }, redis: { host: 'redis' }, alerts: { smtp: { host: 'mail', port: 25, secure: false }, from: 'a@x.io', to: ['b@x.io'], delivery: 'at-most-once' as const } };
    const yaml = render(defaultedJob('cart', 'shop', spec), { workerImage: 'sluice:test' }).configMap.data!['worker.yaml']!;
    const config = resolveWorkerConfig(parse(yaml), {});
    expect(config.cart).toEqual({ abandonWindowMinutes: 60, abandonThreshold: 0.75 });
    expect(config.alerts).toEqual({ smtp: { host: 'mail', port: 25, secure: false }, from: 'a@x.io', to: ['b@x.io'], delivery: 'at-most-once' });
    // The default is not written out (existing jobs keep their config hash): the worker's default is the CRD's.
    expect((parse(yaml) as { alerts: object }).alerts).not.toHaveProperty('delivery');
  });
});

function at(schema: JsonSchema | undefined, path: string[]): JsonSchema | undefined {
  return path.reduce<JsonSchema | undefined>((s, key) => s?.properties?.[key], schema);
}

describe('defaults have one source', () => {
  it('gives every worker field that the ProcessingJob also has the CRD default', () => {
    const spec = loadCrdSchema(crdPath).properties!.spec;
    const compared: string[] = [];
    for (const type of jobTypes.types()) {
      for (const [path, value] of leafDefaults(workerConfig.schemaFor(type) as SchemaNode)) {
        const crd = at(spec, path.split('.'));
        if (crd?.default === undefined) continue;
        expect(value, `${path}: worker default vs spec.${path} in the CRD`).toEqual(crd.default);
        compared.push(path);
      }
    }
    // The test bites: the defaults a user sees in `kubectl explain` are among those compared.
    expect(new Set(compared)).toEqual(
      new Set(['kafka.topic', 'kafka.startFrom', 'redis.port', 'redis.db', 'redis.keyPrefix', 'checkpoint.intervalSeconds', 'cart.abandonWindowMinutes', 'cart.abandonThreshold', 'alerts.smtp.port', 'alerts.smtp.secure', 'alerts.delivery', 'eventTime.maxFutureSkewSeconds', 'state.backend', 'state.cacheMiB']),
    );
  });
});
