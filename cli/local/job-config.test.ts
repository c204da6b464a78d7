import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/package-root.js';
import { resolveWorkerConfig } from '../../workers/config.js';
import { localWorkerConfigs } from './job-config.js';
import { readJobFile, readJobs } from './job-file.js';

const example = (name: string): string => join(packageRoot(), 'examples', name);
const local = { checkpointRoot: '/tmp/ckpt', metricsPortBase: 9100, env: {} };

function jobFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-job-')), 'job.yaml');
  writeFileSync(file, yaml);
  return file;
}

const minimal = (spec: string): string => `apiVersion: sluice.dev/v1alpha1
kind: ProcessingJob
metadata: { name: mini }
spec:
${spec}`;

describe('the ProcessingJob YAML → worker config mapping of `sluice run`', () => {
  it('renders one config per worker of examples/churn-job.yaml with the CRD defaults filled in', () => {
    const configs = localWorkerConfigs(readJobFile(example('churn-job.yaml')), local);
    expect(configs).toHaveLength(2);
    const [first, second] = configs;
    expect(first).toEqual({
      job: { name: 'churn', namespace: 'default', type: 'churn' },
      kafka: {
        bootstrapServers: ['kafka:9092'],
        topic: 'user_events',
        consumerGroup: 'sluice-default-churn',
        startFrom: 'earliest',
        deadLetterTopic: 'user_events.dlq',
        clientId: 'sluice-churn-local-0',
      },
      redis: { host: 'redis', port: 6379, db: 0, keyPrefix: '', ttlSeconds: 604800 },
      model: {},
      checkpoint: { dir: '/tmp/ckpt/churn', intervalSeconds: 30 },
      metrics: { port: 9100 },
    });
    // Workers share the checkpoint directory (any of them may take over any partition) but not a port.
    expect(second!.checkpoint.dir).toBe(first!.checkpoint.dir);
    expect(second!.metrics.port).toBe(9101);
    expect(second!.kafka.clientId).toBe('sluice-churn-local-1');
  });

  it('uses the addresses given on the command line instead of the in-cluster ones', () => {
    const [config] = localWorkerConfigs(readJobFile(example('churn-job.yaml')), {
      ...local,
      parallelism: 1,
      bootstrapServers: ['127.0.0.1:39092'],
      redis: { host: '127.0.0.1', port: 36379 },
    });
    expect(config!.kafka.bootstrapServers).toEqual(['127.0.0.1:39092']);
    expect(config!.redis).toMatchObject({ host: '127.0.0.1', port: 36379 });
  });

  it('maps the cart settings and email alerts of examples/cart-job.yaml, skipping its Secret', () => {
    const [config] = localWorkerConfigs(readJobFile(example('cart-job.yaml')), local);
    expect(config!.job.type).toBe('cart');
    expect(config!.cart).toEqual({ abandonWindowMinutes: 60, abandonThreshold: 0.75 });
    expect(config!.alerts).toEqual({
      smtp: { host: 'mailpit', port: 1025, secure: false },
      from: 'alerts@shop.example',
      to: ['retention-team@shop.example'],
    });
  });

  it('defaults the cart window and threshold to the seed values when spec.cart is absent', () => {
    const file = jobFile(minimal('  type: cart\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }'));
    const [config] = localWorkerConfigs(readJobFile(file), local);
    // The document leaves spec.cart out as the user did; the worker's contract fills the defaults.
    expect(resolveWorkerConfig(config, {}).cart).toEqual({ abandonWindowMinutes: 60, abandonThreshold: 0.75 });
    expect(config!.alerts).toBeUndefined();
    expect(config!.kafka.startFrom).toBe('latest');
  });

  it('refuses a model that only a cluster can mount unless the model path variable names a file', () => {
    const file = jobFile(
      minimal(
        '  type: churn\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }\n' +
          '  model: { source: configMap, configMap: { name: m, key: model.onnx } }',
      ),
    );
    expect(() => localWorkerConfigs(readJobFile(file), local)).toThrow(/spec\.model\.source is 'configMap'.*CHURN_MODEL_PATH/);
    expect(localWorkerConfigs(readJobFile(file), { ...local, env: { CHURN_MODEL_PATH: '/m.onnx' } })).toHaveLength(1);
  });

  it('refuses a job suspended to zero workers unless --parallelism says how many', () => {
    const file = jobFile(minimal('  type: churn\n  parallelism: 0\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }'));
    expect(() => localWorkerConfigs(readJobFile(file), local)).toThrow(/spec\.parallelism of 'mini' is 0/);
    expect(localWorkerConfigs(readJobFile(file), { ...local, parallelism: 3 })).toHaveLength(3);
  });
});

it('runs nothing for a suspended job, as the cluster would, unless --parallelism asks', () => {
  const file = jobFile(minimal('  type: churn\n  suspend: true\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }'));
  expect(() => localWorkerConfigs(readJobFile(file), local)).toThrow(/'mini' has spec\.suspend: true/);
  expect(localWorkerConfigs(readJobFile(file), { ...local, parallelism: 2 })).toHaveLength(2);
});

describe('reading a ProcessingJob file', () => {
  it('names the field when the spec breaks the CRD schema', () => {
    const file = jobFile(minimal('  type: fraud\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }'));
    expect(() => readJobFile(file)).toThrow(/invalid ProcessingJob 'mini': spec\.type: must be equal to one of the allowed values \(churn, cart\)/);
  });

  it('names a missing required field', () => {
    const file = jobFile(minimal('  type: churn\n  redis: { host: r }'));
    expect(() => readJobFile(file)).toThrow(/spec: must have required property 'kafka'/);
  });

  it('says when the file has no ProcessingJob, the wrong apiVersion, or is not YAML', () => {
    expect(() => readJobFile(jobFile('apiVersion: v1\nkind: Secret\nmetadata: { name: s }\n'))).toThrow(/no document with kind: ProcessingJob/);
    expect(() => readJobFile(jobFile(minimal('  type: churn').replace('v1alpha1', 'v9')))).toThrow(/apiVersion is 'sluice.dev\/v9', expected 'sluice.dev\/v1alpha1'/);
    expect(() => readJobFile(jobFile('spec: [unclosed'))).toThrow(/not valid YAML/);
    expect(() => readJobFile('/no/such/job.yaml')).toThrow('/no/such/job.yaml: no such file');
  });

  it('asks for --name when a file holds several jobs, and finds the one named', () => {
    const one = minimal('  type: churn\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }');
    const file = jobFile(`${one}\n---\n${one.replace('name: mini', 'name: other')}`);
    expect(() => readJobFile(file)).toThrow(/several ProcessingJobs \(mini, other\); pick one with --name/);
    expect(readJobFile(file, 'other').metadata.name).toBe('other');
    expect(() => readJobFile(file, 'third')).toThrow(/no ProcessingJob named 'third'/);
  });
});

describe('reading the jobs of several files or a folder (start all)', () => {
  it('reads every ProcessingJob of the examples folder, skipping the Secret beside the cart job', () => {
    const jobs = readJobs([join(packageRoot(), 'examples')]);
    expect(jobs.map((j) => j.job.metadata.name)).toEqual(['cart', 'churn']);
    expect(jobs[0]!.file).toMatch(/examples\/cart-job\.yaml$/);
  });

  it('takes several files, and every job of a file that holds several', () => {
    const one = minimal('  type: churn\n  kafka: { bootstrapServers: ["k:9092"] }\n  redis: { host: r }');
    const two = jobFile(`${one}\n---\n${one.replace('name: mini', 'name: other')}`);
    const jobs = readJobs([example('churn-job.yaml'), two]);
    expect(jobs.map((j) => j.job.metadata.name)).toEqual(['churn', 'mini', 'other']);
    expect(readJobs([example('churn-job.yaml'), two], ['other']).map((j) => j.job.metadata.name)).toEqual(['other']);
    expect(() => readJobs([two], ['third'])).toThrow("no ProcessingJob named 'third' in");
  });

  it('refuses two jobs of one name, an empty folder, and a file without a job', () => {
    expect(() => readJobs([example('churn-job.yaml'), example('churn-job.yaml')])).toThrow(/two ProcessingJobs named 'churn'/);
    expect(() => readJobs([mkdtempSync(join(tmpdir(), 'sluice-empty-'))])).toThrow(/no \.yaml or \.yml files in this directory/);
    expect(() => readJobs([jobFile('apiVersion: v1\nkind: Secret\nmetadata: { name: s }\n')])).toThrow(/no document with kind: ProcessingJob/);
  });
});
