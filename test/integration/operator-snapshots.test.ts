/**
 * The operator's side of snapshots and restores on the real API server: what
 * it creates (task Jobs on the job's volume, finalizers, owner references),
 * what it records in status, and that a one-shot restore is done once. The
 * pods here are KWOK pods: a task Job's pod never runs, so the data path
 * (the task itself, with real workers, Kafka and Redis) is covered by
 * state-ops.test.ts.
 */
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, SNAPSHOT_PLURAL, VERSION, type ProcessingJobSnapshot } from '../../operator/api/types.js';
import { waitFor } from '../support/cluster.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { kafka, uniqueName } from '../support/infra.js';

const cluster = testCluster();
const brokers = kafka().brokers;
const ns = uniqueName('op-snap');
const topic = uniqueName('events');
operatorInNamespace(cluster, ns, topic);

const spec = (extra: Record<string, unknown> = {}) => ({ type: 'churn', parallelism: 2, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'redis.example' }, ...extra });

const snapshotApi = { group: GROUP, version: VERSION, plural: SNAPSHOT_PLURAL, namespace: ns };
const createSnapshot = (name: string, jobName: string, extra: Record<string, unknown> = {}) =>
  cluster.custom.createNamespacedCustomObject({ ...snapshotApi, body: { apiVersion: API_VERSION, kind: 'ProcessingJobSnapshot', metadata: { name }, spec: { jobName, ...extra } } });
const getSnapshot = async (name: string): Promise<ProcessingJobSnapshot | undefined> => {
  try {
    return (await cluster.custom.getNamespacedCustomObject({ ...snapshotApi, name })) as ProcessingJobSnapshot;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
};
const batch = cluster.kc.makeApiClient(BatchV1Api);
const tasks = async (op: string): Promise<V1Job[]> => (await batch.listNamespacedJob({ namespace: ns, labelSelector: `sluice.dev/task=${op}` })).items;
const workers = async (name: string): Promise<number | undefined> => (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: `${name}-worker` })).spec?.replicas;

describe('operator: snapshots and restores', () => {
  it('takes a snapshot with a task on the job volume, owns it by the job, and shows it in kubectl get', { timeout: 90_000 }, async () => {
    await cluster.applyJob(ns, 'churn', spec());
    await waitFor('churn Deployment', 30_000, () => workers('churn'));
    await createSnapshot('churn-1', 'churn');
    const running = await waitFor('snapshot Running', 30_000, async () => {
      const s = await getSnapshot('churn-1');
      return s?.status?.phase === 'Running' ? s : undefined;
    });
    const job = await cluster.getJob(ns, 'churn');
    expect(running.metadata.finalizers).toContain('sluice.dev/snapshot-files');
    expect(running.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ProcessingJob', name: 'churn', uid: job!.metadata.uid });
    expect(running.status).toMatchObject({ jobGeneration: job!.metadata.generation, jobType: 'churn', topic, origin: 'manual' });

    const [task] = await waitFor('snapshot task', 30_000, async () => ((await tasks('snapshot')).length ? tasks('snapshot') : undefined));
    const pod = task!.spec!.template.spec!;
    expect(pod.containers[0]!.args).toEqual(['state', 'snapshot', '--config', '/etc/sluice/worker.yaml', '--name', 'churn-1', '--timeout', '300']);
    expect(pod.containers[0]!.image).toBe('sluice:test');
    expect(pod.volumes!.find((v) => v.name === 'checkpoints')?.persistentVolumeClaim?.claimName).toBe('churn-checkpoints');
    expect(pod.restartPolicy).toBe('Never');
    expect(task!.metadata!.ownerReferences![0]).toMatchObject({ kind: 'ProcessingJobSnapshot', name: 'churn-1' });

    const table = await cluster.kubectl('get', 'processingjobsnapshots.sluice.dev', '-n', ns);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+JOB\s+PHASE\s+PARTITIONS\s+SIZE\s+MODEL\s+TAKEN\s+AGE/);
    expect(table).toMatch(/churn-1\s+churn\s+Running/);
  });

  it('deletes a snapshot whose files are kept without a task', { timeout: 60_000 }, async () => {
    await createSnapshot('churn-keep', 'churn', { retainFiles: true });
    await waitFor('finalizer', 30_000, async () => ((await getSnapshot('churn-keep'))?.metadata.finalizers?.length ? true : undefined));
    await cluster.custom.deleteNamespacedCustomObject({ ...snapshotApi, name: 'churn-keep' });
    await waitFor('snapshot gone', 30_000, async () => ((await getSnapshot('churn-keep')) ? undefined : true));
    expect((await tasks('delete')).length).toBe(0);
  });

  it('stops the workers for a restore, runs it once, and records it in status', { timeout: 90_000 }, async () => {
    const restore = { id: 'reprocess-1', offsets: { reset: 'timestamp', timestamp: '2024-05-01T00:00:00Z' }, state: 'drop' };
    await cluster.applyJob(ns, 'replay', spec({ restore }));
    await waitFor('restore Running', 60_000, async () => ((await cluster.getJob(ns, 'replay'))?.status?.restore?.phase === 'Running' ? true : undefined));
    expect(await workers('replay')).toBe(0);
    const job = (await cluster.getJob(ns, 'replay'))!;
    expect(job.status!.restore).toMatchObject({ id: 'reprocess-1', phase: 'Running' });
    const [task] = await tasks('restore');
    expect(task!.spec!.template.spec!.containers[0]!.args).toEqual([
      'state', 'restore', '--config', '/etc/sluice/worker.yaml', '--id', 'reprocess-1', '--offsets', '2024-05-01T00:00:00Z', '--state', 'drop',
    ]);
    // The same YAML again: still one restore task.
    await cluster.applyJob(ns, 'replay', spec({ restore }));
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await tasks('restore')).map((t) => t.metadata!.name)).toEqual([task!.metadata!.name]);
    const events = (await cluster.events(ns, 'replay')).map((e) => e.reason);
    expect(events).toContain('RestoreStarted');
  });
});
