import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { runOperator, type RunHooks, type RunningOperator } from '../../operator/main.js';
import type { OperatorOptions } from '../../operator/options.js';
import { TestCluster } from './cluster.js';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { infraDir, kafka, kube } from './infra.js';

/** The test control plane from hack/kube.sh, with its kubectl. */
export function testCluster(): TestCluster {
  return new TestCluster(kube().kubeconfig, kube().kubectl);
}

/**
 * For one test file: installs the CRD, makes the namespace and a 4-partition
 * topic, and runs the operator in process watching only that namespace (log in
 * .infra/logs/<ns>.operator.log); all of it is removed after the file.
 * Returns the running operator once beforeAll has run.
 */
export function operatorInNamespace(
  cluster: TestCluster,
  ns: string,
  topic: string,
  options: Partial<OperatorOptions> = {},
  hooks: Omit<RunHooks, 'logger'> = {},
): () => RunningOperator {
  let operator: RunningOperator | undefined;
  const brokers = kafka().brokers;
  beforeAll(async () => {
    await cluster.installCrd();
    await cluster.createNamespace(ns);
    await createTopic({ brokers }, topic, 4);
    mkdirSync(join(infraDir, 'logs'), { recursive: true });
    operator = await runOperator(
      {
        kubeconfig: kube().kubeconfig,
        namespaces: [ns],
        leaderElect: false,
        metricsBindAddress: '127.0.0.1:0',
        healthProbeBindAddress: '127.0.0.1:0',
        workerImage: 'sluice:test',
        ...options,
      },
      { ...hooks, logger: pino({ level: 'debug' }, pino.destination(join(infraDir, 'logs', `${ns}.operator.log`))) },
    );
  });
  afterAll(async () => {
    await operator?.stop();
    // A snapshot keeps its files' finalizer until an operator removes it: with the operator stopped (and task
    // pods that never run on KWOK), the test's own snapshots are released, or the namespace would stay Terminating.
    const snapshots = await cluster.kubectl('get', 'processingjobsnapshots.sluice.dev', '-n', ns, '-o', 'name').catch(() => '');
    for (const name of snapshots.split(/\s+/).filter(Boolean)) {
      await cluster.kubectl('patch', name, '-n', ns, '--type=merge', '-p', '{"metadata":{"finalizers":null}}').catch(() => undefined);
    }
    await cluster.deleteNamespace(ns);
    await deleteTopics({ brokers }, [topic]).catch(() => undefined);
  });
  return () => {
    if (!operator) throw new Error('the operator is not running: operatorInNamespace starts it in beforeAll');
    return operator;
  };
}
