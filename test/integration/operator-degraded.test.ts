import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { conditionOf } from '../../operator/reconcile/status.js';
import { waitFor } from '../support/cluster.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { kafka, uniqueName } from '../support/infra.js';

const cluster = testCluster();
const brokers = kafka().brokers;
const ns = uniqueName('op-degraded');
const topic = uniqueName('events');

const spec = (extra: Record<string, unknown> = {}) => ({ type: 'churn', parallelism: 2, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'r' }, ...extra });

const phaseWith = (name: string, test: (job: Awaited<ReturnType<typeof cluster.getJob>>) => boolean, what: string) =>
  waitFor(`${name}: ${what}`, 60_000, async () => {
    const job = await cluster.getJob(ns, name);
    return job && test(job) ? job : undefined;
  });
const readyJob = (name: string) => phaseWith(name, (j) => conditionOf(j!.status, 'Ready')?.status === 'True', 'Ready');

async function runningPod(job: string): Promise<V1Pod> {
  const pods = await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${job}` });
  const pod = pods.items.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  if (!pod) throw new Error(`no running pod of ${job}`);
  return pod;
}

/** Plays the kubelet: KWOK leaves pods annotated kwok.x-k8s.io/status=custom to the status the test writes. */
async function setWaiting(pod: V1Pod, reason: string, message: string): Promise<void> {
  const name = pod.metadata!.name!;
  await cluster.core.patchNamespacedPod(
    { namespace: ns, name, body: { metadata: { annotations: { 'kwok.x-k8s.io/status': 'custom' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const containerStatuses = [
    { name: 'worker', ready: false, restartCount: 4, image: 'sluice:test', imageID: '', started: false, state: { waiting: { reason, message } } },
  ];
  await cluster.core.patchNamespacedPodStatus(
    {
      namespace: ns,
      name,
      body: {
        status: {
          containerStatuses,
          conditions: [
            { type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: new Date().toISOString() },
            { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: new Date().toISOString() },
          ],
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

operatorInNamespace(cluster, ns, topic);

describe('operator: worker pod failures surface as Degraded with the reason', () => {
  it.each([
    ['CrashLoopBackOff', 'back-off 40s restarting failed container=worker'],
    ['ImagePullBackOff', 'Back-off pulling image "sluice:test"'],
  ])('reports %s, then recovers when the pod is replaced', async (reason, message) => {
    const name = reason.toLowerCase();
    await cluster.applyJob(ns, name, spec());
    await readyJob(name);
    const pod = await runningPod(name);
    await setWaiting(pod, reason, message);

    const job = await phaseWith(name, (j) => j!.status?.phase === 'Degraded', 'phase Degraded');
    const degraded = conditionOf(job.status, 'Degraded')!;
    expect(degraded).toMatchObject({ status: 'True', reason });
    expect(degraded.message).toContain(pod.metadata!.name!);
    expect(degraded.message).toContain(message);
    expect(conditionOf(job.status, 'Ready')).toMatchObject({ status: 'False', reason });
    expect((await cluster.events(ns, name)).some((e) => e.type === 'Warning' && e.reason === reason)).toBe(true);

    await cluster.core.deleteNamespacedPod({ namespace: ns, name: pod.metadata!.name!, gracePeriodSeconds: 0 });
    const healed = await phaseWith(name, (j) => j!.status?.phase === 'Running', 'Running again');
    expect(conditionOf(healed.status, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
  });

  it('reports a pod Pending longer than spec.podPendingTimeoutSeconds, with the scheduler message', async () => {
    await cluster.applyJob(ns, 'unschedulable', spec({ parallelism: 1, podPendingTimeoutSeconds: 3, template: { nodeSelector: { 'sluice.dev/no-such-pool': 'x' } } }));
    // The scheduler's reason may first be the checkpoint PVC still binding; the message follows the pod's.
    const nodeSelectorMiss = /node\(s\) didn't match|didn't match Pod's node affinity\/selector/;
    const job = await phaseWith(
      'unschedulable',
      (j) => {
        const c = conditionOf(j!.status, 'Degraded');
        return c?.reason === 'PodPendingTooLong' && nodeSelectorMiss.test(c.message);
      },
      'Degraded PodPendingTooLong naming the node selector',
    );
    const c = conditionOf(job.status, 'Degraded')!;
    expect(c.message).toContain('spec.podPendingTimeoutSeconds=3s');
    expect(job.status!.phase).toBe('Degraded');
  });
});
