import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type ProcessingJob } from '../../operator/api/types.js';
import { describeError } from '../../operator/kube/client.js';
import { rollUp, withMetrics, type ConditionView, type JobView, type RateTracker, type WorkerView } from './model.js';

/** The worker container's metrics port (render.ts: containerPort `metrics`). */
const METRICS_PORT = 9090;

export interface ClusterScope {
  config: KubeConfig;
  /** undefined: every namespace. */
  namespace?: string;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

/** A pod's /metrics through the API server's pod proxy (needs `pods/proxy` get); undefined when it cannot be had. */
async function podMetrics(core: CoreV1Api, pod: V1Pod): Promise<string | undefined> {
  if (pod.status?.phase !== 'Running') return undefined;
  const name = `${pod.metadata!.name!}:${METRICS_PORT}`;
  return withTimeout(core.connectGetNamespacedPodProxyWithPath({ name, namespace: pod.metadata!.namespace!, path: 'metrics' }), 2_000);
}

function lastExit(pod: V1Pod): string | undefined {
  const t = (pod.status?.containerStatuses ?? []).find((c) => c.lastState?.terminated)?.lastState?.terminated;
  if (!t) return undefined;
  return `last exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message}` : ''}`;
}

function podState(pod: V1Pod): { state: string; restarts: number; lastError?: string } {
  const cs = pod.status?.containerStatuses ?? [];
  const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const waiting = cs.find((c) => c.state?.waiting?.reason)?.state?.waiting;
  const state = pod.metadata?.deletionTimestamp ? 'Terminating' : (waiting?.reason ?? runningState(pod));
  return { state, restarts, lastError: waiting?.message ?? lastExit(pod) };
}

function runningState(pod: V1Pod): string {
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  return ready ? 'ready' : (pod.status?.phase ?? 'Unknown');
}

async function workerViews(core: CoreV1Api, job: ProcessingJob, rates: RateTracker, now: number): Promise<WorkerView[]> {
  const selector = job.status?.selector;
  if (!selector) return [];
  const pods = (await core.listNamespacedPod({ namespace: job.metadata.namespace, labelSelector: selector })).items;
  return Promise.all(
    pods
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
      .map(async (pod) => {
        const id = pod.metadata!.name!;
        const base = podState(pod);
        const text = await podMetrics(core, pod);
        const view: WorkerView = { id, state: base.state, restarts: base.restarts, stalls: [], partitions: [], reachable: text !== undefined, lastError: base.lastError };
        return withMetrics(view, text, { rates, rateKey: `${job.metadata.namespace}/${id}`, owner: id, now });
      }),
  );
}

/** Conditions worth a look: anything but Ready/ConfigValid True and Progressing/Degraded False. */
export function notableConditions(conditions: ConditionView[]): ConditionView[] {
  const normal: Record<string, string> = { Ready: 'True', ConfigValid: 'True', Progressing: 'False', Degraded: 'False' };
  return conditions.filter((c) => normal[c.type] !== c.status && !(c.type === 'Progressing' && c.status === 'True'));
}

/** The ProcessingJobs of a namespace (or all), with their pods and, where the pod proxy allows, their workers' metrics. */
export async function collectCluster(scope: ClusterScope, rates: RateTracker, now = Date.now()): Promise<JobView[]> {
  const custom = scope.config.makeApiClient(CustomObjectsApi);
  const core = scope.config.makeApiClient(CoreV1Api);
  let list: { items: ProcessingJob[] };
  try {
    list = (scope.namespace
      ? await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: scope.namespace })
      : await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as { items: ProcessingJob[] };
  } catch (err) {
    throw new Error(`cannot list ProcessingJobs${scope.namespace ? ` in namespace ${scope.namespace}` : ''}: ${describeError(err)}`);
  }
  const jobs = list.items.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  return Promise.all(
    jobs.map(async (job) => {
      const workers = await workerViews(core, job, rates, now).catch(() => []);
      const conditions: ConditionView[] = (job.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
      const view = rollUp({
        name: job.metadata.name,
        namespace: job.metadata.namespace,
        type: job.spec.type,
        source: 'cluster',
        state: job.status?.phase ?? 'Pending',
        ready: job.status?.readyReplicas ?? 0,
        workers,
        conditions,
        detail: job.spec.kafka.topic,
      });
      // The operator's figures, when the workers' own cannot be read.
      view.lag ??= job.status?.consumerLag;
      view.lastCheckpoint ??= job.status?.lastCheckpointTime;
      const bad = notableConditions(conditions)[0];
      view.lastError ??= bad ? `${bad.type}=${bad.status} ${bad.reason}: ${bad.message}` : undefined;
      return view;
    }),
  );
}
