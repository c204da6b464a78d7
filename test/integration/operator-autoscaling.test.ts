import { AutoscalingV2Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { conditionOf } from '../../operator/reconcile/status.js';
import type { ProcessingJob } from '../../operator/api/types.js';
import { waitFor } from '../support/cluster.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { kafka, uniqueName } from '../support/infra.js';

/**
 * The operator's side of spec.autoscaling on the test control plane, whose
 * worker pods are KWOK pods (Ready, but nothing runs in them, so they serve no
 * metrics): what a user sees, the bounds, another autoscaler on the job, the
 * recommend-only mode, and turning it off. Sizing from real workers on real
 * pods: test/e2e/autoscaling.test.ts.
 */
const cluster = testCluster();
const brokers = kafka().brokers;
const ns = uniqueName('op-auto');
const topic = uniqueName('events');
const hpas = cluster.kc.makeApiClient(AutoscalingV2Api);

const spec = (autoscaling: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'churn',
  parallelism: 1,
  kafka: { bootstrapServers: brokers, topic },
  redis: { host: 'redis.example' },
  autoscaling: { enabled: true, ...autoscaling },
  ...extra,
});

const replicas = async (name: string): Promise<number | undefined> => (await cluster.apps.readNamespacedDeployment({ namespace: ns, name: `${name}-worker` })).spec?.replicas;
const jobWhere = (what: string, name: string, test: (job: ProcessingJob) => boolean) =>
  waitFor(what, 60_000, async () => {
    const job = await cluster.getJob(ns, name);
    return job && test(job) ? job : undefined;
  });
const autoscalingCondition = (job: ProcessingJob) => conditionOf(job.status, 'Autoscaling');

operatorInNamespace(cluster, ns, topic, { autoscaleIntervalMs: 1_000 });

describe('operator: spec.autoscaling', () => {
  it('holds while the workers serve no metrics, says why in status.autoscaling, and shows DESIRED in kubectl get -o wide', async () => {
    await cluster.applyJob(ns, 'held', spec({}, { parallelism: 2 }));
    const job = await jobWhere('a hold explained', 'held', (j) => /no metrics from worker held-worker-/.test(j.status?.autoscaling?.reason ?? ''));
    expect(job.status!.autoscaling).toMatchObject({ mode: 'Scale', currentParallelism: 2, recommendedParallelism: 2, lastDecision: 'Hold', partitions: 4 });
    expect(autoscalingCondition(job)).toMatchObject({ status: 'True', reason: 'Scaling' });
    expect(await replicas('held')).toBe(2);
    const [header, row] = (await cluster.kubectl('get', 'pj.sluice.dev', 'held', '-n', ns, '-o', 'wide')).split('\n');
    // Columns are aligned under their headers (some cells of a young job are empty).
    const at = header!.indexOf('DESIRED');
    expect(at).toBeGreaterThan(0);
    expect(row!.slice(at).trim().split(/\s+/)[0]).toBe('2');
  });

  it('brings the workers inside the bounds at once, with an Event that names the bound', async () => {
    await cluster.applyJob(ns, 'bounded', spec({}));
    await waitFor('1 worker', 60_000, async () => ((await replicas('bounded')) === 1 ? true : undefined));
    await cluster.applyJob(ns, 'bounded', spec({ minParallelism: 3 }));
    await waitFor('3 workers', 60_000, async () => ((await replicas('bounded')) === 3 ? true : undefined));
    const events = await waitFor('the Autoscaled event', 30_000, async () => {
      const e = (await cluster.events(ns, 'bounded')).filter((x) => x.reason === 'Autoscaled');
      return e.length ? e : undefined;
    });
    expect(events.map((e) => e.message)).toContain('Scaled bounded from 1 to 3 workers: spec.autoscaling.minParallelism is 3');
    expect((await cluster.events(ns, 'bounded')).some((e) => e.reason === 'Scaled')).toBe(false);
    const job = await jobWhere('the scale in the status', 'bounded', (j) => j.status?.autoscaling?.lastScaleDirection === 'Up');
    expect(job.status!.autoscaling!.currentParallelism).toBe(3);
    expect(job.status!.autoscaling!.lastScaleTime).toBeDefined();
    // Capped at the topic's 4 partitions, whatever maxParallelism and spec.parallelism say.
    await cluster.applyJob(ns, 'bounded', spec({ minParallelism: 6, maxParallelism: 8 }, { parallelism: 7 }));
    await waitFor('4 workers (the partitions)', 60_000, async () => ((await replicas('bounded')) === 4 ? true : undefined));
    await waitFor('the capped minimum explained', 30_000, async () =>
      (await cluster.events(ns, 'bounded')).some((e) => e.message === "Scaled bounded from 3 to 4 workers: spec.autoscaling.minParallelism is 6 (capped at the topic's 4 partitions)") || undefined,
    );
    expect(conditionOf((await cluster.getJob(ns, 'bounded'))!.status, 'ConfigValid')?.status).toBe('True');
  });

  it('stops acting while an HPA also scales the job, says so, and acts again once it is gone', async () => {
    await cluster.applyJob(ns, 'contested', spec({ minParallelism: 2 }));
    await waitFor('2 workers', 60_000, async () => ((await replicas('contested')) === 2 ? true : undefined));
    await hpas.createNamespacedHorizontalPodAutoscaler({
      namespace: ns,
      body: {
        metadata: { name: 'contested-hpa' },
        spec: { minReplicas: 1, maxReplicas: 4, scaleTargetRef: { apiVersion: 'sluice.dev/v1alpha1', kind: 'ProcessingJob', name: 'contested' }, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }] },
      },
    });
    const job = await jobWhere('the conflict reported', 'contested', (j) => autoscalingCondition(j)?.reason === 'OtherAutoscaler');
    expect(autoscalingCondition(job)).toMatchObject({ status: 'False' });
    expect(autoscalingCondition(job)!.message).toMatch(/^HorizontalPodAutoscaler contested-hpa also scales this job: Sluice does not change the number of workers/);
    // The job runs spec.parallelism, which the HPA drives through the scale subresource.
    await waitFor('spec.parallelism (1) workers', 60_000, async () => ((await replicas('contested')) === 1 ? true : undefined));
    expect((await cluster.events(ns, 'contested')).some((e) => e.type === 'Warning' && e.reason === 'OtherAutoscaler')).toBe(true);
    await hpas.deleteNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'contested-hpa' });
    await jobWhere('autoscaling back', 'contested', (j) => autoscalingCondition(j)?.reason === 'Scaling');
    await waitFor('2 workers again', 60_000, async () => ((await replicas('contested')) === 2 ? true : undefined));
  });

  it('only recommends in mode Recommend: the Deployment keeps spec.parallelism', async () => {
    await cluster.applyJob(ns, 'advised', spec({ mode: 'Recommend', minParallelism: 3 }));
    const job = await jobWhere('a recommendation', 'advised', (j) => j.status?.autoscaling?.mode === 'Recommend');
    expect(autoscalingCondition(job)).toMatchObject({ status: 'True', reason: 'Recommending' });
    expect(job.status!.autoscaling!.lastScaleTime).toBeUndefined();
    expect(await replicas('advised')).toBe(1);
  });

  it('forgets it all when autoscaling is turned off: spec.parallelism rules again', async () => {
    await cluster.applyJob(ns, 'dropped', spec({ minParallelism: 2 }));
    await waitFor('2 workers', 60_000, async () => ((await replicas('dropped')) === 2 ? true : undefined));
    await cluster.applyJob(ns, 'dropped', spec({ enabled: false, minParallelism: 2 }));
    const job = await jobWhere('no autoscaling status', 'dropped', (j) => j.status?.autoscaling === undefined && !autoscalingCondition(j));
    expect(job.status!.conditions!.map((c) => c.type).sort()).toEqual(['ConfigValid', 'Degraded', 'Progressing', 'Ready']);
    await waitFor('spec.parallelism (1) workers', 60_000, async () => ((await replicas('dropped')) === 1 ? true : undefined));
  });
});
