import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { conditionOf } from '../../operator/reconcile/status.js';
import { waitFor } from '../support/cluster.js';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import kafkajs from 'kafkajs';
import { RecordProducer } from '../../lib/kafka/client.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { kafka, uniqueName } from '../support/infra.js';

const cluster = testCluster();
const brokers = kafka().brokers;
const ns = uniqueName('op-life');
const topic = uniqueName('events');

const spec = (extra: Record<string, unknown> = {}) => ({
  type: 'churn',
  parallelism: 2,
  kafka: { bootstrapServers: brokers, topic },
  redis: { host: 'redis.example', port: 6379 },
  ...extra,
});

const ready = (name: string, replicas: number) =>
  waitFor(`${name} Ready with ${replicas} ready workers`, 60_000, async () => {
    const job = await cluster.getJob(ns, name);
    const c = conditionOf(job?.status, 'Ready');
    return c?.status === 'True' && job?.status?.readyReplicas === replicas && job.status.observedGeneration === job.metadata.generation ? job : undefined;
  });
const deployment = (name: string) => cluster.apps.readNamespacedDeployment({ namespace: ns, name: `${name}-worker` });
const gone = async (read: () => Promise<unknown>): Promise<boolean | undefined> => {
  try {
    await read();
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code === 404 ? true : undefined;
  }
};

const operator = operatorInNamespace(cluster, ns, topic, { lagCheckMs: 1_000 });

describe('operator: a ProcessingJob through its life', () => {
  it('creates the ConfigMap, PVC, Service and Deployment the spec asks for and reports Ready', async () => {
    await cluster.applyJob(ns, 'churn', spec({ redis: { host: 'redis.example', port: 6380, keyPrefix: 'shop:' } }));
    const job = await ready('churn', 2);
    expect(job.status!.phase).toBe('Running');
    expect(job.status!.selector).toBe('app.kubernetes.io/instance=churn,app.kubernetes.io/name=sluice-worker');

    const cm = await cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'churn-config' });
    const cfg = parse(cm.data!['worker.yaml']) as WorkerConfig;
    expect(cfg.kafka).toMatchObject({ bootstrapServers: brokers, topic, consumerGroup: `sluice-${ns}-churn`, deadLetterTopic: `${topic}.dlq` });
    expect(cfg.redis).toMatchObject({ host: 'redis.example', port: 6380, keyPrefix: 'shop:' });
    expect(cm.metadata!.ownerReferences![0]).toMatchObject({ kind: 'ProcessingJob', name: 'churn', uid: job.metadata.uid, controller: true });

    const pvc = await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'churn-checkpoints' });
    expect(pvc.spec!.accessModes).toEqual(['ReadWriteMany']);
    expect(pvc.spec!.resources!.requests!.storage).toBe('1Gi');
    await waitFor('checkpoint PVC bound', 30_000, async () =>
      (await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'churn-checkpoints' })).status?.phase === 'Bound' || undefined,
    );

    const svc = await cluster.core.readNamespacedService({ namespace: ns, name: 'churn-metrics' });
    expect(svc.spec!.ports![0]).toMatchObject({ name: 'metrics', port: 9090 });

    const d = await deployment('churn');
    expect(d.spec!.replicas).toBe(2);
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.image).toBe('sluice:test');
    expect(c.args).toEqual(['worker', '--config', '/etc/sluice/worker.yaml']);
    expect(d.spec!.template.metadata!.annotations!['sluice.dev/config-hash']).toBe(job.status!.configHash);
    const pods = await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/instance=churn' });
    expect(pods.items.filter((p) => p.status?.phase === 'Running')).toHaveLength(2);

    const reasons = (await cluster.events(ns, 'churn')).map((e) => e.reason);
    expect(reasons).toContain('Created');
  });

  // 'pj.sluice.dev': other tests may install look-alike CRDs that share the short name for a while.
  it('shows TYPE, PARALLELISM, READY, LAG, PHASE and AGE in kubectl get pj (and the Ready reason with -o wide), and kubectl wait works', async () => {
    await ready('churn', 2);
    const table = await cluster.kubectl('get', 'pj.sluice.dev', '-n', ns);
    const [header, row] = table.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'TYPE', 'PARALLELISM', 'READY', 'LAG', 'PHASE', 'AGE']);
    // LAG stays empty until the workers have committed offsets (KWOK pods run no worker).
    expect(row!.split(/\s+/).filter((cell) => !/^\d+$/.test(cell) || cell === '2').slice(0, 5)).toEqual(['churn', 'churn', '2', '2', 'Running']);
    const wide = (await cluster.kubectl('get', 'pj.sluice.dev', '-n', ns, '-o', 'wide')).trim().split('\n');
    expect(wide[0]!.split(/\s+/)).toEqual(['NAME', 'TYPE', 'PARALLELISM', 'READY', 'LAG', 'PHASE', 'AGE', 'REASON', 'CHECKPOINT', 'TOPIC', 'DESIRED', 'LAG-SECONDS']);
    expect(wide[1]).toMatch(/\sRunning\s+\S+\s+WorkersReady\s/);
    const waited = await cluster.kubectl('wait', '--for=condition=Ready', 'processingjobs.sluice.dev/churn', '-n', ns, '--timeout=30s');
    expect(waited).toContain('condition met');
  });

  it('follows kubectl scale through the scale subresource to the Deployment', async () => {
    await cluster.kubectl('scale', 'pj.sluice.dev/churn', '-n', ns, '--replicas=4');
    await ready('churn', 4);
    expect((await deployment('churn')).spec!.replicas).toBe(4);
    const scale = await cluster.kubectl('get', '--raw', `/apis/sluice.dev/v1alpha1/namespaces/${ns}/processingjobs/churn/scale`);
    expect(JSON.parse(scale)).toMatchObject({ spec: { replicas: 4 }, status: { replicas: 4, selector: 'app.kubernetes.io/instance=churn,app.kubernetes.io/name=sluice-worker' } });
    expect((await cluster.events(ns, 'churn')).map((e) => e.message)).toContain('Scaled worker Deployment churn-worker from 2 to 4');
  });

  it('rolls the pod template when the worker config changes, and when the restart nonce changes', async () => {
    const before = (await deployment('churn')).spec!.template.metadata!.annotations!['sluice.dev/config-hash'];
    await cluster.patchJob(ns, 'churn', { spec: { checkpoint: { intervalSeconds: 15 } } });
    const rolled = await waitFor('new config hash on the pod template', 30_000, async () => {
      const hash = (await deployment('churn')).spec!.template.metadata!.annotations!['sluice.dev/config-hash'];
      return hash !== before ? hash : undefined;
    });
    const cm = await cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'churn-config' });
    expect((parse(cm.data!['worker.yaml']) as WorkerConfig).checkpoint.intervalSeconds).toBe(15);
    expect((await ready('churn', 4)).status!.configHash).toBe(rolled);

    await cluster.patchJob(ns, 'churn', { spec: { restartNonce: 'restart-1' } });
    await waitFor('restart nonce on the pod template', 30_000, async () =>
      (await deployment('churn')).spec!.template.metadata!.annotations!['sluice.dev/restart-nonce'] === 'restart-1' || undefined,
    );
    await ready('churn', 4);
  });

  it('suspends to zero workers keeping the checkpoint volume, and resumes', async () => {
    await cluster.patchJob(ns, 'churn', { spec: { suspend: true } });
    const job = await waitFor('Suspended phase', 30_000, async () => {
      const j = await cluster.getJob(ns, 'churn');
      return j?.status?.phase === 'Suspended' && j.status.replicas === 0 ? j : undefined;
    });
    expect(conditionOf(job.status, 'Ready')!.reason).toBe('Suspended');
    expect((await deployment('churn')).spec!.replicas).toBe(0);
    expect((await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'churn-checkpoints' })).metadata!.name).toBe('churn-checkpoints');
    await cluster.patchJob(ns, 'churn', { spec: { suspend: false } });
    await ready('churn', 4);
  });

  it('leaves a paused job alone until the annotation goes', async () => {
    await cluster.patchJob(ns, 'churn', { metadata: { annotations: { 'sluice.dev/paused': 'true' } } });
    await waitFor('Paused phase', 30_000, async () => ((await cluster.getJob(ns, 'churn'))?.status?.phase === 'Paused' ? true : undefined));
    await cluster.patchJob(ns, 'churn', { spec: { parallelism: 1 } });
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await deployment('churn')).spec!.replicas).toBe(4);
    await cluster.patchJob(ns, 'churn', { metadata: { annotations: { 'sluice.dev/paused': null } } });
    await ready('churn', 1);
    expect((await deployment('churn')).spec!.replicas).toBe(1);
  });

  it('puts back a child edited by hand (level-triggered: the spec wins)', async () => {
    const original = (await cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'churn-config' })).data!['worker.yaml'];
    await cluster.core.patchNamespacedConfigMap(
      { namespace: ns, name: 'churn-config', body: { data: { 'worker.yaml': 'tampered: true\n' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await cluster.kubectl('scale', 'deployment/churn-worker', '-n', ns, '--replicas=3');
    await waitFor('ConfigMap restored', 30_000, async () =>
      (await cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'churn-config' })).data!['worker.yaml'] === original || undefined,
    );
    await waitFor('Deployment replicas restored', 30_000, async () => ((await deployment('churn')).spec!.replicas === 1 ? true : undefined));
  });

  it('reports consumer lag and the last checkpoint from the group offsets the workers commit', async () => {
    const producer = await RecordProducer.connect({ brokers });
    await producer.send(topic, Array.from({ length: 40 }, (_, i) => ({ value: `{"n":${i}}`, partition: i % 4 })));
    await producer.disconnect();
    // Play the workers: they commit each partition's next offset after a checkpoint.
    const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    const group = `sluice-${ns}-churn`;
    try {
      await admin.setOffsets({ groupId: group, topic, partitions: [0, 1, 2, 3].map((p) => ({ partition: p, offset: '4' })) });
      await waitFor('consumerLag 24', 30_000, async () => ((await cluster.getJob(ns, 'churn'))?.status?.consumerLag === 24 ? true : undefined));
      await admin.setOffsets({ groupId: group, topic, partitions: [0, 1, 2, 3].map((p) => ({ partition: p, offset: '10' })) });
      const job = await waitFor('consumerLag 0', 30_000, async () => {
        const j = await cluster.getJob(ns, 'churn');
        return j?.status?.consumerLag === 0 ? j : undefined;
      });
      expect(Date.now() - Date.parse(job.status!.lastCheckpointTime!)).toBeLessThan(30_000);
    } finally {
      await admin.disconnect();
    }
  });

  it('garbage-collects the children on delete, keeping the checkpoint PVC only when retainOnDelete', async () => {
    await cluster.applyJob(ns, 'kept', spec({ parallelism: 1, checkpoint: { retainOnDelete: true } }));
    await ready('kept', 1);
    const kept = await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'kept-checkpoints' });
    expect(kept.metadata!.ownerReferences ?? []).toEqual([]);

    await cluster.deleteJob(ns, 'churn');
    await cluster.deleteJob(ns, 'kept');
    for (const job of ['churn', 'kept']) {
      await waitFor(`${job} Deployment collected`, 60_000, () => gone(() => deployment(job)));
      await waitFor(`${job} ConfigMap collected`, 60_000, () => gone(() => cluster.core.readNamespacedConfigMap({ namespace: ns, name: `${job}-config` })));
      await waitFor(`${job} Service collected`, 60_000, () => gone(() => cluster.core.readNamespacedService({ namespace: ns, name: `${job}-metrics` })));
    }
    await waitFor('churn PVC collected', 60_000, async () => {
      const pvc = await gone(() => cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'churn-checkpoints' }));
      if (pvc) return true;
      // The PVC protection finalizer holds a claim until no pod uses it: deletion requested is what GC does.
      const got = await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'churn-checkpoints' });
      return got.metadata?.deletionTimestamp ? true : undefined;
    });
    const stillThere = await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'kept-checkpoints' });
    expect(stillThere.metadata!.deletionTimestamp).toBeUndefined();
  });

  it('serves /metrics, /healthz and /readyz', async () => {
    const metrics = await (await fetch(`http://${operator().metricsAddress}/metrics`)).text();
    expect(metrics).toMatch(/sluice_operator_reconcile_total\{result="success"\} [1-9]/);
    expect((await fetch(`http://${operator().healthAddress}/healthz`)).status).toBe(200);
    expect((await fetch(`http://${operator().healthAddress}/readyz`)).status).toBe(200);
  });
});

