/**
 * The API server is SIGKILLed under a running operator (leader election on)
 * and started again: the operator loses its lease, takes it back, re-lists,
 * and converges on what changed meanwhile and after, with no hot loop. The
 * API server is this test's own, on the shared etcd under its own key prefix.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { runOperator, type RunningOperator } from '../../operator/main.js';
import { conditionOf } from '../../operator/reconcile/status.js';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { TestCluster, waitFor } from '../support/cluster.js';
import { kafka, kube, uniqueName } from '../support/infra.js';
import { PrivateApiServer } from '../support/private-servers.js';
import { removeTempDirsAfterAll, tempDir } from '../support/workers.js';

removeTempDirsAfterAll();
const brokers = kafka().brokers;
const topic = uniqueName('events');
const ns = uniqueName('op-apisrv');
let server: PrivateApiServer | undefined;
let operator: RunningOperator | undefined;

afterAll(async () => {
  await operator?.stop();
  await server?.remove();
  await deleteTopics({ brokers }, [topic]).catch(() => undefined);
});

const spec = (parallelism: number) => ({ type: 'churn', parallelism, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'redis.example' } });

it('converges after its API server is SIGKILLed and restarted: lease taken back, changes applied, no hot loop', { timeout: 240_000 }, async () => {
  const dir = tempDir('sluice-apisrv-');
  server = await PrivateApiServer.create(join(dir, 'apiserver'), kube());
  const firstStartMs = await server.start();
  const cluster = new TestCluster(server.kubeconfig, kube().kubectl);
  await cluster.installCrd();
  await cluster.createNamespace(ns);
  await createTopic({ brokers }, topic, 4);
  operator = await runOperator(
    {
      kubeconfig: server.kubeconfig,
      namespaces: [ns],
      leaderElect: true,
      leaseNamespace: ns,
      leaseDurationMs: 6_000,
      renewDeadlineMs: 4_000,
      retryPeriodMs: 1_000,
      metricsBindAddress: '127.0.0.1:0',
      healthProbeBindAddress: '127.0.0.1:0',
      workerImage: 'sluice:test',
    },
    { logger: pino({ level: 'debug' }, pino.destination(join(dir, 'operator.log'))) },
  );
  const converged = (name: string, replicas: number) =>
    waitFor(`${name} converged on ${replicas} replicas`, 120_000, async () => {
      const job = await cluster.getJob(ns, name);
      const d = await cluster.apps.readNamespacedDeployment({ namespace: ns, name: `${name}-worker` });
      const valid = conditionOf(job?.status, 'ConfigValid');
      return job?.status?.observedGeneration === job?.metadata.generation && d.spec?.replicas === replicas && valid?.status === 'True' ? true : undefined;
    });

  await cluster.applyJob(ns, 'before', spec(1));
  await converged('before', 1);

  // A change the operator is about to apply when the server dies.
  await cluster.applyJob(ns, 'before', spec(3));
  await server.kill();
  const downAt = Date.now();
  // Down until the operator gives up its lease (it cannot renew it within renewDeadlineMs).
  await waitFor('the operator to step down', 30_000, () => (operator!.isLeader() ? undefined : true));
  const steppedDownMs = Date.now() - downAt;
  const restartMs = await server.start();
  const backAt = Date.now();

  await cluster.applyJob(ns, 'after', spec(2));
  await converged('before', 3);
  await converged('after', 2);
  const convergedMs = Date.now() - backAt;

  // Steady again: a few reconciles in 5 s (resyncs, lag reads), not a loop.
  const count = async () => Number(/sluice_operator_reconcile_total\{result="success"\} (\d+)/.exec(await (await fetch(`http://${operator!.metricsAddress}/metrics`)).text())?.[1] ?? 0);
  await waitFor('the operator to lead again', 30_000, () => (operator!.isLeader() ? true : undefined));
  const before = await count();
  await new Promise((r) => setTimeout(r, 3_000));
  expect((await count()) - before, 'reconciles in 3 s (no hot loop)').toBeLessThan(6);
  const lease = await cluster.coordination.readNamespacedLease({ namespace: ns, name: 'sluice-operator-leader' });
  expect(lease.spec?.holderIdentity).toBeTruthy();
  console.log(
    `API server fault: SIGKILLed, down ${Math.round((backAt - downAt) / 1000)} s (the operator stepped down after ${steppedDownMs} ms; start ${firstStartMs} ms, restart ${restartMs} ms); ` +
      `operator converged on both jobs ${convergedMs} ms after the server was back`,
  );
});
