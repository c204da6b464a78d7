/**
 * What only the cluster knows, reported by the operator as a condition (by
 * reason and message, naming the field) and an Event, without a hot loop: a
 * StorageClass that does not exist, a consumer group two jobs share, and a
 * child the API server refuses, for which nothing at all is applied.
 */
import { describe, expect, it } from 'vitest';
import { conditionOf } from '../../operator/reconcile/status.js';
import { waitFor } from '../support/cluster.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { kafka, uniqueName } from '../support/infra.js';

const cluster = testCluster();
const brokers = kafka().brokers;
const ns = uniqueName('op-cond');
const topic = uniqueName('events');
const base = (extra: Record<string, unknown> = {}) => ({ type: 'churn', parallelism: 1, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'redis.example' }, ...extra });
const operator = operatorInNamespace(cluster, ns, topic);

type Cond = 'ConfigValid' | 'Degraded' | 'Ready';
const condition = (name: string, type: Cond, status: string, reason: string, timeoutMs = 60_000) =>
  waitFor(`${name} ${type}=${status} (${reason})`, timeoutMs, async () => {
    const c = conditionOf((await cluster.getJob(ns, name))?.status, type);
    return c?.status === status && c.reason === reason ? c : undefined;
  });

const reconciles = async (): Promise<number> => {
  const text = await (await fetch(`http://${operator().metricsAddress}/metrics`)).text();
  return Number(/sluice_operator_reconcile_total\{result="success"\} (\d+)/.exec(text)?.[1] ?? 0);
};
const missing = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ code: 404 });

describe('operator: conditions only the cluster can know', () => {
  it('reports a StorageClass that does not exist at once, by the field, and applies nothing until it exists', async () => {
    const klass = uniqueName('fast-ssd');
    await cluster.applyJob(ns, 'noclass', base({ checkpoint: { storageClassName: klass } }));
    const c = await condition('noclass', 'ConfigValid', 'False', 'StorageClassNotFound', 20_000);
    expect(c.message).toContain(`StorageClass '${klass}' (spec.checkpoint.storageClassName) does not exist`);
    expect(conditionOf((await cluster.getJob(ns, 'noclass'))!.status, 'Degraded')).toMatchObject({ status: 'True', reason: 'StorageClassNotFound' });
    await missing(cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'noclass-checkpoints' }));
    await missing(cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'noclass-worker' }));
    const before = await reconciles();
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await reconciles()) - before, 'reconciles in 3 s (no hot loop)').toBeLessThan(5);
    expect((await cluster.events(ns, 'noclass')).filter((e) => e.type === 'Warning' && e.reason === 'StorageClassNotFound')).toHaveLength(1);

    await cluster.objects.create({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: klass },
      provisioner: 'kubernetes.io/host-path',
    } as never);
    try {
      // Re-checked every 10 s (no watch on StorageClasses): the job is applied once the class exists.
      await waitFor('the checkpoint PVC once the StorageClass exists', 30_000, async () =>
        (await cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'noclass-checkpoints' })).spec?.storageClassName,
      );
    } finally {
      await cluster.objects.delete({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: klass } }).catch(() => undefined);
    }
  });

  it('warns both jobs that share a consumer group, with an Event on each, and clears it when one goes', async () => {
    const group = uniqueName('shared-group');
    await cluster.applyJob(ns, 'first', base({ kafka: { bootstrapServers: brokers, topic, consumerGroup: group } }));
    await cluster.applyJob(ns, 'second', base({ kafka: { bootstrapServers: brokers, topic, consumerGroup: group } }));
    for (const [name, other] of [['first', 'second'], ['second', 'first']]) {
      const c = await condition(name, 'Degraded', 'True', 'ConsumerGroupShared');
      expect(c.message).toContain(`consumer group '${group}' (spec.kafka.consumerGroup) is also used by ProcessingJob ${ns}/${other}`);
      expect(c.message).toContain('each sees only part of the events');
      await waitFor(`a Warning Event on ${name}`, 20_000, async () =>
        (await cluster.events(ns, name)).some((e) => e.type === 'Warning' && e.reason === 'ConsumerGroupShared') ? true : undefined,
      );
    }
    // Both keep running: the workers are applied.
    await cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'second-worker' });
    await cluster.deleteJob(ns, 'second');
    await condition('first', 'Degraded', 'False', 'AsExpected');
    expect((await cluster.events(ns, 'first')).filter((e) => e.reason === 'ConsumerGroupShared')).toHaveLength(1);
  });

  it('applies no child at all when the API server would refuse one of them (dry run of the whole set first)', async () => {
    await cluster.applyJob(ns, 'allornone', base({ template: { tolerations: [{ key: 'a', operator: 'Sometimes' }] } }));
    const c = await condition('allornone', 'ConfigValid', 'False', 'ChildRejected');
    expect(c.message).toContain('toleration');
    await missing(cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'allornone-config' }));
    await missing(cluster.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'allornone-checkpoints' }));
    await missing(cluster.core.readNamespacedService({ namespace: ns, name: 'allornone-metrics' }));
    await missing(cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'allornone-worker' }));
    // Fixed: everything is applied.
    await cluster.applyJob(ns, 'allornone', base({ template: { tolerations: [{ key: 'a', operator: 'Exists' }] } }));
    await waitFor('the children once the spec is fixed', 60_000, async () =>
      (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'allornone-worker' })).metadata?.name,
    );
    await cluster.core.readNamespacedConfigMap({ namespace: ns, name: 'allornone-config' });
  });
});
