/**
 * Task pods: the state operations (snapshot, restore, delete a snapshot's
 * files) run as a batch/v1 Job with the worker image, the job's worker
 * configuration and its checkpoint volume, `sluice state <op>` as command.
 * The task leaves its result as the container's termination message, which
 * the operator reads; the operator itself never mounts a volume. Pure.
 */
import type { V1Container, V1Job, V1JobCondition, V1OwnerReference, V1Pod, V1PodAffinityTerm, V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { V1Affinity, V1Toleration } from '@kubernetes/client-node';
import { LABEL_INSTANCE, LABEL_JOB, LABEL_MANAGED_BY, LABEL_NAME, LABEL_TASK, MANAGER, type ProcessingJob } from '../api/types.js';
import { childNames, paths } from './paths.js';
import { containerSecurity, hashOf, podSecurity, secretEnvVars, selectorLabels, tlsMount } from './render.js';

export const TASK_APP = 'sluice-task';
/** On a task Job: the snapshot it works for (its reconcile looks again when the task ends). */
export const ANNOTATION_TASK_SNAPSHOT = 'sluice.dev/snapshot';
/** Where a task pod mounts another job's checkpoint volume (restore from that job's snapshot). */
export const SOURCE_MOUNT = '/var/lib/sluice/source';
/** The snapshots directory on a checkpoint volume (workers/runtime/control.ts). */
export const SNAPSHOTS_ON_VOLUME = '.sluice/snapshots';

export type TaskOp =
  | { op: 'snapshot'; snapshot: string; timeoutSeconds: number }
  | { op: 'delete'; snapshot: string }
  | {
      op: 'restore';
      id: string;
      /** A snapshot, and the job whose volume holds it (this job's own unless named). */
      from?: { snapshot: string; job?: string };
      offsets?: string;
      state: 'keep' | 'drop';
    };

export interface TaskContext {
  image: string;
  /** What owns the task Job (the snapshot for snapshot tasks, the job otherwise). */
  owner: V1OwnerReference;
}

export const taskLabels = (job: string, op: TaskOp['op']): Record<string, string> => ({
  [LABEL_NAME]: TASK_APP,
  [LABEL_INSTANCE]: job,
  [LABEL_MANAGED_BY]: MANAGER,
  [LABEL_JOB]: job,
  [LABEL_TASK]: op,
});

const keyOf = (t: TaskOp): string => (t.op === 'restore' ? `restore/${t.id}` : `${t.op}/${t.snapshot}`);

/** The task Job's name: the job, the operation and a hash of what it works on (at most 63 characters). */
export const taskName = (job: string, t: TaskOp): string => `${job.slice(0, 40)}-${t.op}-${hashOf(`${job}/${keyOf(t)}`).slice(0, 10)}`;

function argsOf(t: TaskOp): string[] {
  const base = ['state', t.op, '--config', paths.configFile];
  switch (t.op) {
    case 'snapshot':
      return [...base, '--name', t.snapshot, '--timeout', String(t.timeoutSeconds)];
    case 'delete':
      return [...base, '--name', t.snapshot];
    case 'restore': {
      const from = t.from
        ? t.from.job
          ? ['--from', `${SOURCE_MOUNT}/${SNAPSHOTS_ON_VOLUME}/${t.from.snapshot}`]
          : ['--snapshot', t.from.snapshot]
        : [];
      return [...base, '--id', t.id, ...from, ...(t.offsets ? ['--offsets', t.offsets] : []), '--state', t.state];
    }
  }
}

/** How long the task may run: its own timeout plus room for the pod to start. */
function deadlineOf(t: TaskOp): number {
  return t.op === 'snapshot' ? t.timeoutSeconds + 180 : 900;
}

/** Lands beside the workers where the volume is ReadWriteOnce (one node), anywhere otherwise. */
function affinityOf(job: ProcessingJob): V1Affinity | undefined {
  const own = job.spec.template?.affinity as V1Affinity | undefined;
  if (job.spec.checkpoint.accessMode === 'ReadWriteMany') return own;
  const term: V1PodAffinityTerm = { labelSelector: { matchLabels: selectorLabels(job.metadata.name) }, topologyKey: 'kubernetes.io/hostname' };
  return {
    ...own,
    podAffinity: {
      ...own?.podAffinity,
      preferredDuringSchedulingIgnoredDuringExecution: [...(own?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []), { weight: 100, podAffinityTerm: term }],
    },
  };
}

/** The task's volumes and their mounts: its config, the job's checkpoint volume, a scratch dir, another job's volume to restore from, TLS. */
function taskStorage(job: ProcessingJob, t: TaskOp): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const name = job.metadata.name;
  const names = childNames(name);
  const tls = tlsMount(job);
  const source = t.op === 'restore' && t.from?.job && t.from.job !== name ? childNames(t.from.job).pvc : undefined;
  const volumes: V1Volume[] = [
    { name: 'config', configMap: { name: names.configMap } },
    { name: 'checkpoints', persistentVolumeClaim: { claimName: names.pvc } },
    { name: 'tmp', emptyDir: {} },
    ...(source ? [{ name: 'source', persistentVolumeClaim: { claimName: source, readOnly: true } }] : []),
    ...tls.volumes,
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'config', mountPath: paths.configDir, readOnly: true },
    { name: 'checkpoints', mountPath: paths.checkpoints },
    { name: 'tmp', mountPath: paths.tmp },
    ...(source ? [{ name: 'source', mountPath: SOURCE_MOUNT, readOnly: true }] : []),
    ...tls.mounts,
  ];
  return { volumes, mounts };
}

function taskContainer(job: ProcessingJob, t: TaskOp, image: string, mounts: V1VolumeMount[]): V1Container {
  const name = job.metadata.name;
  const env = secretEnvVars(job);
  return {
    name: 'task',
    image,
    ...(job.spec.imagePullPolicy ? { imagePullPolicy: job.spec.imagePullPolicy } : {}),
    args: argsOf(t.op === 'restore' && t.from?.job === name ? { ...t, from: { snapshot: t.from.snapshot } } : t),
    ...(env.length ? { env } : {}),
    ...(job.spec.resources ? { resources: { requests: job.spec.resources.requests as Record<string, string>, limits: job.spec.resources.limits as Record<string, string> } } : {}),
    volumeMounts: mounts,
    securityContext: containerSecurity,
    terminationMessagePolicy: 'File',
  };
}

/** Where the task's pod may run: the workers' own scheduling settings (spec.template), next to the job's pods. */
function taskScheduling(job: ProcessingJob): Partial<V1PodSpec> {
  const tpl = job.spec.template;
  const affinity = affinityOf(job);
  return {
    ...(tpl?.serviceAccountName ? { serviceAccountName: tpl.serviceAccountName } : {}),
    ...(tpl?.priorityClassName ? { priorityClassName: tpl.priorityClassName } : {}),
    ...(tpl?.nodeSelector ? { nodeSelector: tpl.nodeSelector } : {}),
    ...(tpl?.tolerations ? { tolerations: tpl.tolerations as V1Toleration[] } : {}),
    ...(affinity ? { affinity } : {}),
    ...(tpl?.imagePullSecrets ? { imagePullSecrets: tpl.imagePullSecrets.map((n) => ({ name: n })) } : {}),
  };
}

export function renderTask(job: ProcessingJob, t: TaskOp, ctx: TaskContext): V1Job {
  const name = job.metadata.name;
  const tpl = job.spec.template;
  const { volumes, mounts } = taskStorage(job, t);
  const labels = taskLabels(name, t.op);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: taskName(name, t),
      namespace: job.metadata.namespace,
      labels,
      ...(t.op === 'restore' ? {} : { annotations: { [ANNOTATION_TASK_SNAPSHOT]: t.snapshot } }),
      ownerReferences: [ctx.owner],
    },
    spec: {
      backoffLimit: 2,
      activeDeadlineSeconds: deadlineOf(t),
      // The operator reads the result within seconds; finished tasks then expire.
      ttlSecondsAfterFinished: 900,
      template: {
        metadata: { labels: { ...tpl?.labels, ...labels }, ...(tpl?.annotations ? { annotations: tpl.annotations } : {}) },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: podSecurity,
          ...taskScheduling(job),
          containers: [taskContainer(job, t, ctx.image, mounts)],
          volumes,
        },
      },
    },
  };
}

export type TaskOutcome =
  | { state: 'running'; detail: string }
  | { state: 'succeeded'; result: Record<string, unknown> }
  | { state: 'failed'; reason: string; message: string };

function terminationMessage(pod: V1Pod): { exitCode: number; message: string } | undefined {
  const t = pod.status?.containerStatuses?.find((c) => c.name === 'task')?.state?.terminated;
  return t ? { exitCode: t.exitCode, message: (t.message ?? '').trim() } : undefined;
}

type Ended = { exitCode: number; message: string };

/** A Complete task: its result is the JSON it left as the termination message of its successful try. */
function succeeded(job: V1Job, ended: readonly Ended[]): TaskOutcome {
  const ok = ended.find((t) => t.exitCode === 0);
  try {
    return { state: 'succeeded', result: JSON.parse(ok?.message ?? '') as Record<string, unknown> };
  } catch {
    return { state: 'failed', reason: 'TaskResultMissing', message: `task ${job.metadata?.name} succeeded without leaving its result (termination message '${ok?.message ?? ''}')` };
  }
}

/** A Failed task: the reason its last try gave (`Reason: message`), else the Job's. */
function failedWith(job: V1Job, failed: V1JobCondition, ended: readonly Ended[]): TaskOutcome {
  const last = ended.find((t) => t.exitCode !== 0)?.message;
  const coded = last ? /^([A-Z][A-Za-z]+): ([\s\S]*)$/.exec(last) : null;
  if (coded) return { state: 'failed', reason: coded[1]!, message: coded[2]! };
  return { state: 'failed', reason: failed.reason ?? 'TaskFailed', message: last || failed.message || `task ${job.metadata?.name} failed` };
}

/** What a task Job came to, from the Job and its pods (newest first matters: the last try speaks). */
export function taskOutcome(job: V1Job, pods: readonly V1Pod[]): TaskOutcome {
  const conds = job.status?.conditions ?? [];
  const byAge = [...pods].sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')));
  const ended = byAge.map(terminationMessage).filter((t): t is Ended => t !== undefined);
  if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return succeeded(job, ended);
  const failed = conds.find((c) => c.type === 'Failed' && c.status === 'True');
  if (failed) return failedWith(job, failed, ended);
  const pod = byAge[0];
  const waiting = pod?.status?.containerStatuses?.[0]?.state?.waiting;
  return { state: 'running', detail: waiting?.reason ? `task pod ${pod?.metadata?.name} is ${waiting.reason}` : `task ${job.metadata?.name} is running` };
}
