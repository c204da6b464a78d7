import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultedJob, minimalSpec, type SpecInput } from '../api/sample.js';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { render, selectorString } from './render.js';

const ctx = { workerImage: 'sluice:dev' };
const job = (spec: Partial<SpecInput> = {}) => defaultedJob('churn', 'shop', { ...minimalSpec(), ...spec });
const workerYaml = (c: ReturnType<typeof render>): WorkerConfig => parse(c.configMap.data!['worker.yaml']) as WorkerConfig;
const container = (c: ReturnType<typeof render>) => c.deployment.spec!.template.spec!.containers[0]!;

describe('render', () => {
  it('names the children after the job and labels them', () => {
    const c = render(job(), ctx);
    expect(c.deployment.metadata!.name).toBe('churn-worker');
    expect(c.configMap.metadata!.name).toBe('churn-config');
    expect(c.pvc.metadata!.name).toBe('churn-checkpoints');
    expect(c.service.metadata!.name).toBe('churn-metrics');
    for (const child of [c.deployment, c.configMap, c.pvc, c.service]) {
      expect(child.metadata!.namespace).toBe('shop');
      expect(child.metadata!.labels).toEqual({
        'app.kubernetes.io/name': 'sluice-worker',
        'app.kubernetes.io/instance': 'churn',
        'app.kubernetes.io/managed-by': 'sluice-operator',
        'sluice.dev/job': 'churn',
      });
    }
    expect(c.deployment.metadata!.ownerReferences![0]).toMatchObject({ kind: 'ProcessingJob', name: 'churn', controller: true });
    expect(selectorString('churn')).toBe('app.kubernetes.io/instance=churn,app.kubernetes.io/name=sluice-worker');
  });

  it('renders the worker config with the seed defaults (user_events, 60 s checkpoints)', () => {
    const cfg = workerYaml(render(job(), ctx));
    expect(cfg).toEqual({
      job: { name: 'churn', namespace: 'shop', type: 'churn' },
      kafka: {
        bootstrapServers: ['kafka:9092'],
        topic: 'user_events',
        consumerGroup: 'sluice-shop-churn',
        startFrom: 'latest',
        deadLetterTopic: 'user_events.dlq',
        clientId: 'sluice-churn',
      },
      redis: { host: 'redis', port: 6379, db: 0, keyPrefix: '' },
      model: {},
      checkpoint: { dir: '/var/lib/sluice/checkpoints', intervalSeconds: 60 },
      metrics: { port: 9090 },
    });
  });

  it('passes the model threshold of a churn job to the worker, which bands risk with it', () => {
    expect(workerYaml(render(job({ model: { threshold: 0.85 } } as Partial<SpecInput>), ctx)).model).toEqual({ threshold: 0.85 });
  });

  // The worker fills the cart defaults (60 min, 0.75) from its job type's fragment: test/contract/worker-config.test.ts.
  it('passes a cart job its alerts, and spec.cart only as written', () => {
    const cfg = workerYaml(
      render(job({ type: 'cart', alerts: { smtp: { host: 'mail', port: 25, secure: false }, from: 'a@x.io', to: ['b@x.io'], delivery: 'at-least-once' } }), ctx),
    );
    expect(cfg.cart).toBeUndefined();
    expect(cfg.alerts).toEqual({ smtp: { host: 'mail', port: 25, secure: false }, from: 'a@x.io', to: ['b@x.io'], delivery: 'at-least-once' });
    // Defaults are not written out, so existing jobs keep their config hash; another skew is.
    expect(cfg.eventTime).toBeUndefined();
    expect(workerYaml(render(job({ eventTime: { maxFutureSkewSeconds: 60 } }), ctx)).eventTime).toEqual({ maxFutureSkewSeconds: 60 });
  });

  it('scales the Deployment to parallelism, and to zero when suspended', () => {
    expect(render(job({ parallelism: 4 }), ctx).deployment.spec!.replicas).toBe(4);
    expect(render(job({ parallelism: 4, suspend: true }), ctx).deployment.spec!.replicas).toBe(0);
  });

  it("scales the Deployment to the autoscaler's choice without rolling the workers", () => {
    const plain = render(job({ parallelism: 2 }), ctx);
    const scaled = render(job({ parallelism: 2 }), { ...ctx, replicas: 5 });
    expect(scaled.deployment.spec!.replicas).toBe(5);
    expect(scaled.configHash).toBe(plain.configHash);
    expect(render(job({ parallelism: 2, suspend: true }), { ...ctx, replicas: 5 }).deployment.spec!.replicas).toBe(0);
  });

  it('passes spec.throttle to the worker, and nothing when it is absent', () => {
    expect(workerYaml(render(job({ throttle: { eventsPerSecondPerWorker: 250 } }), ctx)).throttle).toEqual({ eventsPerSecond: 250 });
    expect(workerYaml(render(job(), ctx)).throttle).toBeUndefined();
  });

  it('runs the worker command with the mounted config, probes and metrics port', () => {
    const c = render(job(), ctx);
    const w = container(c);
    expect(w.name).toBe('worker');
    expect(w.image).toBe('sluice:dev');
    expect(w.args).toEqual(['worker', '--config', '/etc/sluice/worker.yaml']);
    expect(w.ports).toEqual([{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }]);
    expect(w.livenessProbe!.httpGet!.path).toBe('/healthz');
    expect(w.readinessProbe!.httpGet!.path).toBe('/readyz');
    const mounts = Object.fromEntries(w.volumeMounts!.map((m) => [m.mountPath, m.name]));
    expect(mounts['/etc/sluice']).toBe('config');
    expect(mounts['/var/lib/sluice/checkpoints']).toBe('checkpoints');
    const volumes = c.deployment.spec!.template.spec!.volumes!;
    expect(volumes.find((v) => v.name === 'checkpoints')!.persistentVolumeClaim!.claimName).toBe('churn-checkpoints');
    expect(volumes.find((v) => v.name === 'config')!.configMap!.name).toBe('churn-config');
  });

  it('prefers the image of the spec to the operator default', () => {
    expect(container(render(job({ image: 'registry/x:1' }), ctx)).image).toBe('registry/x:1');
  });

  it('references secrets through secretKeyRef env vars and never copies them into the ConfigMap', () => {
    const c = render(
      job({
        type: 'cart',
        kafka: { bootstrapServers: ['k:9093'], sasl: { mechanism: 'plain', secretName: 'kafka-creds', usernameKey: 'u', passwordKey: 'p' } },
        redis: { host: 'redis', passwordSecret: { name: 'redis-creds', key: 'pw' } },
        alerts: { smtp: { host: 'mail', port: 587, secure: false, secretName: 'smtp-creds' }, from: 'a@x.io', to: ['b@x.io'], delivery: 'at-most-once' },
      }),
      ctx,
    );
    expect(container(c).env).toEqual([
      { name: 'KAFKA_SASL_USERNAME', valueFrom: { secretKeyRef: { name: 'kafka-creds', key: 'u' } } },
      { name: 'KAFKA_SASL_PASSWORD', valueFrom: { secretKeyRef: { name: 'kafka-creds', key: 'p' } } },
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-creds', key: 'pw' } } },
      { name: 'SMTP_USERNAME', valueFrom: { secretKeyRef: { name: 'smtp-creds', key: 'username' } } },
      { name: 'SMTP_PASSWORD', valueFrom: { secretKeyRef: { name: 'smtp-creds', key: 'password' } } },
    ]);
    expect(workerYaml(c).kafka.sasl).toEqual({ mechanism: 'plain' });
    expect(c.configMap.data!['worker.yaml']).not.toMatch(/creds/);
  });

  it('mounts a model from a ConfigMap, a PVC or an image under /var/lib/sluice/models', () => {
    const fromCm = render(job({ model: { source: 'configMap', configMap: { name: 'models', key: 'churn.onnx' } } }), ctx);
    expect(workerYaml(fromCm).model.path).toBe('/var/lib/sluice/models/churn.onnx');
    expect(fromCm.deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'model')!.configMap!.name).toBe('models');

    const fromPvc = render(job({ model: { source: 'pvc', pvc: { claimName: 'ml', path: 'v3/churn.onnx' } } }), ctx);
    expect(workerYaml(fromPvc).model.path).toBe('/var/lib/sluice/models/v3/churn.onnx');
    expect(fromPvc.deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'model')!.persistentVolumeClaim).toEqual({ claimName: 'ml', readOnly: true });

    const fromImage = render(job({ model: { source: 'image', image: { reference: 'reg/models:7', path: '/m/churn.onnx' } } }), ctx);
    expect(workerYaml(fromImage).model.path).toBe('/var/lib/sluice/models/model.onnx');
    const init = fromImage.deployment.spec!.template.spec!.initContainers![0]!;
    expect(init.image).toBe('reg/models:7');
    expect(init.command).toEqual(['cp', '/m/churn.onnx', '/var/lib/sluice/models/model.onnx']);
  });

  it('changes the config hash on the pod template when the worker config changes, not otherwise', () => {
    const a = render(job(), ctx);
    const b = render(job({ parallelism: 3 }), ctx);
    const c = render(job({ kafka: { bootstrapServers: ['kafka:9092'], topic: 'other' } }), ctx);
    const hash = (x: typeof a) => x.deployment.spec!.template.metadata!.annotations!['sluice.dev/config-hash'];
    expect(hash(a)).toBe(a.configHash);
    expect(hash(b)).toBe(hash(a));
    expect(hash(c)).not.toBe(hash(a));
  });

  it('rolls the pods when the restart nonce changes', () => {
    const t = render(job({ restartNonce: '2026-11-24T10:00' }), ctx).deployment.spec!.template.metadata!.annotations!;
    expect(t['sluice.dev/restart-nonce']).toBe('2026-11-24T10:00');
  });

  it('gives the checkpoint PVC ReadWriteMany by default and no owner when retained', () => {
    const owned = render(job(), ctx).pvc;
    expect(owned.spec).toEqual({ accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } });
    expect(owned.metadata!.ownerReferences).toHaveLength(1);
    const kept = render(job({ checkpoint: { retainOnDelete: true, storageClassName: 'fast', size: '5Gi' } as SpecInput['checkpoint'] }), ctx).pvc;
    expect(kept.metadata!.ownerReferences).toBeUndefined();
    expect(kept.spec!.storageClassName).toBe('fast');
    expect(kept.spec!.resources!.requests!.storage).toBe('5Gi');
  });

  it('keeps state in memory by default; the disk backend gets an emptyDir on local disk, never the checkpoint volume', () => {
    const memory = render(job(), ctx);
    expect(workerYaml(memory).state).toBeUndefined();
    expect(memory.deployment.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain('state');
    const disk = render(job({ state: { backend: 'disk', localDiskSize: '20Gi' } as SpecInput['state'] }), ctx);
    expect(workerYaml(disk).state).toEqual({ backend: 'disk', dir: '/var/lib/sluice/state', cacheMiB: 256 });
    expect(disk.deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'state')).toEqual({ name: 'state', emptyDir: { sizeLimit: '20Gi' } });
    expect(container(disk).volumeMounts).toContainEqual({ name: 'state', mountPath: '/var/lib/sluice/state' });
    expect(disk.configHash).not.toBe(memory.configHash);
  });

  it('applies pod template overrides while keeping the operator labels', () => {
    const c = render(
      job({
        template: {
          labels: { team: 'growth', 'app.kubernetes.io/name': 'hijack' },
          annotations: { note: 'x' },
          nodeSelector: { pool: 'stream' },
          tolerations: [{ key: 'dedicated', operator: 'Exists' }],
          serviceAccountName: 'scorer',
        },
        resources: { requests: { cpu: '500m' }, limits: { memory: '1Gi' } },
      }),
      ctx,
    );
    const t = c.deployment.spec!.template;
    expect(t.metadata!.labels!.team).toBe('growth');
    expect(t.metadata!.labels!['app.kubernetes.io/name']).toBe('sluice-worker');
    expect(t.metadata!.annotations!.note).toBe('x');
    expect(t.spec!.nodeSelector).toEqual({ pool: 'stream' });
    expect(t.spec!.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists' }]);
    expect(t.spec!.serviceAccountName).toBe('scorer');
    expect(container(c).resources).toEqual({ requests: { cpu: '500m' }, limits: { memory: '1Gi' } });
  });

  it('mounts the Kafka TLS secret and points the worker at its files', () => {
    const c = render(job({ kafka: { bootstrapServers: ['k:9093'], tls: { enabled: true, secretName: 'kafka-ca', insecureSkipVerify: false } } }), {
      ...ctx,
      kafkaClientCertificate: true,
    });
    expect(workerYaml(c).kafka.tls).toEqual({
      enabled: true,
      caFile: '/var/run/secrets/sluice/kafka-tls/ca.crt',
      certFile: '/var/run/secrets/sluice/kafka-tls/tls.crt',
      keyFile: '/var/run/secrets/sluice/kafka-tls/tls.key',
    });
    expect(c.deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'kafka-tls')!.secret!.secretName).toBe('kafka-ca');
  });
});
