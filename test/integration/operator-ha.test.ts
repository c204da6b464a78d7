import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conditionOf } from '../../operator/reconcile/status.js';
import { spawnOperator, waitFor, type OperatorProcess } from '../support/cluster.js';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { infraDir, kafka, kube, uniqueName } from '../support/infra.js';
import { testCluster } from '../support/operator.js';

const cluster = testCluster();
const brokers = kafka().brokers;
const topic = uniqueName('events');
const namespaces: string[] = [];
const processes: OperatorProcess[] = [];
const logDir = join(infraDir, 'logs');

const spec = (parallelism = 1) => ({ type: 'churn', parallelism, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'r' } });
const local = ['--metrics-bind-address', '127.0.0.1:0', '--health-probe-bind-address', '127.0.0.1:0', '--worker-image', 'sluice:test', '--log-level', 'debug'];

function start(ns: string, tag: string, extra: string[]): OperatorProcess {
  const p = spawnOperator(kube().kubeconfig, ['--namespaces', ns, ...local, ...extra], join(logDir, `${ns}.${tag}.log`));
  processes.push(p);
  return p;
}

async function allReady(ns: string, names: string[]): Promise<void> {
  await waitFor(`${names.length} jobs Ready in ${ns}`, 120_000, async () => {
    for (const name of names) {
      const job = await cluster.getJob(ns, name);
      if (conditionOf(job?.status, 'Ready')?.status !== 'True' || job?.status?.observedGeneration !== job?.metadata.generation) return undefined;
    }
    return true;
  }, 500);
}

/** Children per job by kind, from the labels: exactly one of each means no duplicates. */
async function childCounts(ns: string): Promise<Map<string, Record<string, number>>> {
  const labelSelector = 'app.kubernetes.io/managed-by=sluice-operator';
  const lists = {
    Deployment: (await cluster.apps.listNamespacedDeployment({ namespace: ns, labelSelector })).items,
    ConfigMap: (await cluster.core.listNamespacedConfigMap({ namespace: ns, labelSelector })).items,
    PersistentVolumeClaim: (await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector })).items,
    Service: (await cluster.core.listNamespacedService({ namespace: ns, labelSelector })).items,
    ReplicaSet: (await cluster.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app.kubernetes.io/name=sluice-worker' })).items,
    Pod: (await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/name=sluice-worker' })).items.filter((p) => !p.metadata?.deletionTimestamp),
  };
  const counts = new Map<string, Record<string, number>>();
  for (const [kind, items] of Object.entries(lists)) {
    for (const item of items) {
      const job = item.metadata?.labels?.['sluice.dev/job'] ?? '?';
      const c = counts.get(job) ?? {};
      c[kind] = (c[kind] ?? 0) + 1;
      counts.set(job, c);
    }
  }
  return counts;
}

const metricOf = async (address: string, name: string): Promise<number> => {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};
const addressesOf = (p: OperatorProcess) =>
  waitFor('operator listening', 60_000, () => {
    const line = p.log().split('\n').find((l) => l.includes('sluice operator started'));
    return line ? (JSON.parse(line) as { metrics: string; health: string; identity: string }) : undefined;
  });

beforeAll(async () => {
  mkdirSync(logDir, { recursive: true });
  await cluster.installCrd();
  await createTopic({ brokers }, topic, 8);
});

afterAll(async () => {
  for (const p of processes) await p.kill();
  for (const ns of namespaces) await cluster.deleteNamespace(ns);
  await deleteTopics({ brokers }, [topic]).catch(() => undefined);
});

describe('operator: crashes and replicas', () => {
  it('converges with no duplicate children after being killed in the middle of reconciling', async () => {
    const ns = uniqueName('op-kill');
    namespaces.push(ns);
    await cluster.createNamespace(ns);
    const names = Array.from({ length: 40 }, (_, i) => `job-${i}`);
    await Promise.all(names.map((n, i) => cluster.applyJob(ns, n, spec(1 + (i % 3)))));

    const first = start(ns, 'first', ['--no-leader-elect', '--concurrency', '1']);
    const atKill = await waitFor('the first worker Deployments', 60_000, async () => {
      const n = (await cluster.apps.listNamespacedDeployment({ namespace: ns })).items.length;
      return n > 0 ? n : undefined;
    }, 50);
    await first.kill();
    const afterKill = (await cluster.apps.listNamespacedDeployment({ namespace: ns })).items.length;
    expect(afterKill, 'the kill must land before every job was reconciled').toBeLessThan(names.length);

    const second = start(ns, 'second', ['--no-leader-elect']);
    await allReady(ns, names);
    // Let any late duplicate show up before counting.
    await new Promise((r) => setTimeout(r, 2_000));
    const counts = await childCounts(ns);
    for (const [i, name] of names.entries()) {
      expect(counts.get(name), name).toEqual({ Deployment: 1, ConfigMap: 1, PersistentVolumeClaim: 1, Service: 1, ReplicaSet: 1, Pod: 1 + (i % 3) });
    }
    expect(counts.size).toBe(names.length);
    expect(atKill).toBeGreaterThan(0);
    await second.stop();
  });

  it('lets only the leader write, and a standby takes over when the leader dies', async () => {
    const ns = uniqueName('op-ha');
    namespaces.push(ns);
    await cluster.createNamespace(ns);
    const lease = ['--leader-election-namespace', ns, '--leader-election-id', 'sluice-test-leader'];
    const a = start(ns, 'a', lease);
    const b = start(ns, 'b', lease);
    const [addrA, addrB] = await Promise.all([addressesOf(a), addressesOf(b)]);

    const holder = await waitFor('a lease holder', 30_000, async () => {
      const l = await cluster.coordination.readNamespacedLease({ namespace: ns, name: 'sluice-test-leader' }).catch(() => undefined);
      return l?.spec?.holderIdentity || undefined;
    });
    expect([`${hostname()}-${a.child.pid}`, `${hostname()}-${b.child.pid}`]).toContain(holder);
    const [leader, standby, leaderAddr, standbyAddr] = holder === addrA.identity ? [a, b, addrA, addrB] : [b, a, addrB, addrA];

    await cluster.applyJob(ns, 'one', spec(2));
    await allReady(ns, ['one']);
    expect(await metricOf(leaderAddr.metrics, 'sluice_operator_leader')).toBe(1);
    expect(await metricOf(standbyAddr.metrics, 'sluice_operator_leader')).toBe(0);
    expect(await metricOf(leaderAddr.metrics, 'sluice_operator_reconcile_total')).toBeGreaterThan(0);
    expect(await metricOf(standbyAddr.metrics, 'sluice_operator_reconcile_total')).toBe(0);
    const managers = (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'one-worker' })).metadata!.managedFields!.map((f) => f.manager);
    expect(managers).toContain('sluice-operator');
    const instances = (await cluster.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.involvedObject.kind === 'ProcessingJob').map((e) => e.reportingInstance);
    expect(new Set(instances)).toEqual(new Set([leaderAddr.identity]));
    expect((await fetch(`http://${standbyAddr.health}/readyz`)).status).toBe(200);

    const killedAt = Date.now();
    await leader.kill();
    await cluster.applyJob(ns, 'two', spec(1));
    await waitFor('the new leader applying the new job', 60_000, async () =>
      (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: 'two-worker' })).metadata?.name,
    );
    const takeoverMs = Date.now() - killedAt;
    await allReady(ns, ['two']);
    const after = await cluster.coordination.readNamespacedLease({ namespace: ns, name: 'sluice-test-leader' });
    expect(after.spec!.holderIdentity).toBe(standbyAddr.identity);
    expect(await metricOf(standbyAddr.metrics, 'sluice_operator_leader')).toBe(1);
    // The dead leader's lease expires after 15 s; the standby retries every 2 s, then syncs and applies.
    expect(takeoverMs).toBeLessThan(30_000);
    console.log(`standby took over and applied a new job ${takeoverMs} ms after the leader was killed`);

    const released = Date.now();
    expect(await standby.stop()).toBe(0);
    const lease2 = await cluster.coordination.readNamespacedLease({ namespace: ns, name: 'sluice-test-leader' });
    expect(lease2.spec!.holderIdentity ?? '').toBe('');
    expect(Date.now() - released).toBeLessThan(15_000);
  });
});
