import type { V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { Condition, ConditionType, Phase, ProcessingJob, ProcessingJobStatus, ProcessingJobStatusAutoscaling } from '../api/types.js';
import type { AutoscaleCondition } from './autoscale.js';

/** Status messages and Event notes stay short, whatever an error says. */
export const MAX_MESSAGE = 1024;
export const bounded = (text: string, max = MAX_MESSAGE): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/** What the operator-side checks found (see validate.ts). */
export type Validation =
  | { state: 'valid'; message?: string }
  | { state: 'invalid'; reason: string; message: string }
  /** The check could not run (Kafka unreachable): the children are still applied. */
  | { state: 'unknown'; reason: string; message: string };

/** A worker pod problem worth a Degraded condition. */
export interface PodProblem {
  reason: string;
  message: string;
}

const waitingReasons = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/** Reasons a worker gives in its termination message (`Reason: what to do`) that name the problem better than a crash loop. */
const workerReasons = new Set(['StateIncompatible']);

/** What the worker said it stopped for, when it names a reason of its own (`StateIncompatible: ...`). */
function saidByWorker(pod: V1Pod, cs: V1ContainerStatus): PodProblem | undefined {
  const said = /^([A-Z][A-Za-z]+): ([\s\S]+)$/.exec(cs.lastState?.terminated?.message?.trim() ?? '');
  if (!said || !workerReasons.has(said[1]!)) return undefined;
  return { reason: said[1]!, message: `pod ${pod.metadata?.name ?? '?'}: ${said[2]!}` };
}

function waitingProblem(pod: V1Pod): PodProblem | undefined {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const cs of statuses) {
    const waiting = cs.state?.waiting;
    if (!waiting?.reason || !waitingReasons.has(waiting.reason)) continue;
    const detail = waiting.message ? `: ${waiting.message}` : '';
    return saidByWorker(pod, cs) ?? { reason: waiting.reason, message: `pod ${pod.metadata?.name ?? '?'} container ${cs.name} is ${waiting.reason}${detail}` };
  }
  return undefined;
}

function pendingProblem(pod: V1Pod, pendingTimeoutSeconds: number, now: Date): PodProblem | undefined {
  if (pod.status?.phase !== 'Pending' || !pod.metadata?.creationTimestamp) return undefined;
  const age = (now.getTime() - new Date(pod.metadata.creationTimestamp).getTime()) / 1000;
  if (age <= pendingTimeoutSeconds) return undefined;
  const why = pod.status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')?.message;
  return {
    reason: 'PodPendingTooLong',
    message: `pod ${pod.metadata.name ?? '?'} has been Pending for ${Math.round(age)}s (limit spec.podPendingTimeoutSeconds=${pendingTimeoutSeconds}s)${why ? `: ${why}` : ''}`,
  };
}

function failedProblem(pod: V1Pod): PodProblem | undefined {
  if (pod.status?.phase !== 'Failed') return undefined;
  return { reason: 'PodFailed', message: `pod ${pod.metadata?.name ?? '?'} failed: ${pod.status.reason ?? ''} ${pod.status.message ?? ''}`.trim() };
}

/** The first worker pod failure, or undefined: CrashLoopBackOff, ImagePullBackOff, Pending too long... */
export function podProblem(pods: readonly V1Pod[], pendingTimeoutSeconds: number, now: Date): PodProblem | undefined {
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const problem = waitingProblem(pod) ?? failedProblem(pod) ?? pendingProblem(pod, pendingTimeoutSeconds, now);
    if (problem) return problem;
  }
  return undefined;
}

/** Seconds after which to look at pods again because a Pending one may cross its timeout. */
export function nextPendingCheck(pods: readonly V1Pod[], pendingTimeoutSeconds: number, now: Date): number | undefined {
  let soonest: number | undefined;
  for (const pod of pods) {
    if (pod.status?.phase !== 'Pending' || !pod.metadata?.creationTimestamp) continue;
    const left = pendingTimeoutSeconds - (now.getTime() - new Date(pod.metadata.creationTimestamp).getTime()) / 1000;
    if (left > 0) soonest = Math.min(soonest ?? Infinity, left);
  }
  return soonest;
}

export interface StatusInput {
  job: ProcessingJob;
  paused: boolean;
  validation: Validation;
  /** The Deployment as the cluster reports it; undefined when not applied (yet). */
  deployment?: V1Deployment;
  pods: readonly V1Pod[];
  /** Replicas asked of the Deployment (0 when suspended). */
  desiredReplicas: number;
  selector: string;
  configHash?: string;
  workerImage?: string;
  /** Something wrong that does not stop the workers (another job shares the consumer group): Degraded. */
  warning?: PodProblem;
  /** Consumer lag and last checkpoint, when known. */
  progress?: { consumerLag?: number; lastCheckpointTime?: string };
  /** What the workers say they wait on (their /status), when known. */
  stalls?: ReadonlyArray<{ pod: string; on: string; reason: string; message: string; since?: string }>;
  /** What autoscaling decided this reconcile (autoscale.ts); absent: keep what the status says. */
  autoscaling?: { status: ProcessingJobStatusAutoscaling; condition: AutoscaleCondition };
  now: Date;
}

const DEPENDENCY: Record<string, string> = { redis: 'Redis', smtp: 'the SMTP server', kafka: 'Kafka', dlq: 'the dead-letter topic' };

/** A worker waiting on a dependency, as a Degraded reason (the worker's own: RedisUnreachable, SmtpUnreachable...). */
export function stallProblem(stalls: StatusInput['stalls']): PodProblem | undefined {
  const first = stalls?.[0];
  if (!first) return undefined;
  const pods = [...new Set(stalls!.filter((s) => s.reason === first.reason).map((s) => s.pod))];
  const since = first.since ? ` since ${first.since.replace(/\.\d{3}Z$/, 'Z')}` : '';
  const who = pods.length === 1 ? `worker pod ${pods[0]} waits` : `worker pods ${pods.join(', ')} wait`;
  const meaning = first.on === 'dlq' ? 'malformed events are kept beside the checkpoint, good events go on' : 'consumption is paused, nothing is lost';
  return { reason: first.reason, message: `${who} for ${DEPENDENCY[first.on] ?? first.on}${since}: ${first.message}; ${meaning}` };
}

type Desired = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** The conditions every job has; Autoscaling only with spec.autoscaling. */
type BaseConditionType = Exclude<ConditionType, 'Autoscaling'>;

const withAutoscalingCondition = (conds: Desired[], input: StatusInput): Desired[] => {
  const c = autoscalingCondition(input);
  return c ? [...conds, c] : conds;
};

/** The Autoscaling condition: as planned, kept as it was while the job is not planned (invalid, paused), gone when autoscaling is off. */
function autoscalingCondition(input: StatusInput): Desired | undefined {
  if (!input.job.spec.autoscaling?.enabled) return undefined;
  if (input.autoscaling) return { type: 'Autoscaling', ...input.autoscaling.condition };
  const previous = input.job.status?.conditions?.find((c) => c.type === 'Autoscaling');
  return previous ? { type: 'Autoscaling', status: previous.status, reason: previous.reason, message: previous.message } : undefined;
}

/** The Deployment has rolled out the current generation to `desired` ready replicas. */
function rolledOut(d: V1Deployment, desired: number): boolean {
  const s = d.status ?? {};
  return (
    (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    (s.updatedReplicas ?? 0) >= desired &&
    (s.readyReplicas ?? 0) >= desired &&
    (s.replicas ?? 0) === desired
  );
}

export function deploymentProgress(d: V1Deployment | undefined, desired: number): { settled: boolean; failure?: PodProblem } {
  if (!d) return { settled: false };
  const failure = d.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  return {
    settled: rolledOut(d, desired),
    failure: failure ? { reason: failure.reason ?? 'ReplicaFailure', message: failure.message ?? 'the Deployment cannot create pods' } : undefined,
  };
}

function configValidCondition(validation: Validation): Desired {
  if (validation.state === 'valid') return { type: 'ConfigValid', status: 'True', reason: 'Valid', message: validation.message ?? 'the spec passed all checks' };
  return { type: 'ConfigValid', status: validation.state === 'invalid' ? 'False' : 'Unknown', reason: validation.reason, message: validation.message };
}

function degradedCondition(degradedBy: PodProblem | undefined): Desired {
  return degradedBy
    ? { type: 'Degraded', status: 'True', reason: degradedBy.reason, message: degradedBy.message }
    : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no worker problem seen' };
}

interface Counts {
  ready: number;
  want: number;
  settled: boolean;
}

function readyCondition(suspended: boolean, degradedBy: PodProblem | undefined, { ready, want, settled }: Counts): Desired {
  if (suspended) return { type: 'Ready', status: 'False', reason: 'Suspended', message: 'the job is suspended (spec.suspend); checkpoints are kept' };
  if (degradedBy) return { type: 'Ready', status: 'False', reason: degradedBy.reason, message: degradedBy.message };
  if (settled) return { type: 'Ready', status: 'True', reason: 'WorkersReady', message: `${ready}/${want} workers ready` };
  return { type: 'Ready', status: 'False', reason: 'WorkersNotReady', message: `${ready}/${want} workers ready` };
}

function progressingCondition(paused: boolean, refused: boolean, { ready, want, settled }: Counts): Desired {
  if (paused) return { type: 'Progressing', status: 'False', reason: 'Paused', message: 'reconciliation is paused by the sluice.dev/paused annotation' };
  if (refused) return { type: 'Progressing', status: 'False', reason: 'SpecRefused', message: 'the last spec was not applied: fix the problem in ConfigValid' };
  if (settled) return { type: 'Progressing', status: 'False', reason: 'Complete', message: `${want} workers up to date` };
  return { type: 'Progressing', status: 'True', reason: 'RollingOut', message: `rolling out ${want} workers (${ready} ready)` };
}

function desiredConditions(input: StatusInput, problem: PodProblem | undefined, settled: boolean): Record<BaseConditionType, Desired> {
  const { validation, job } = input;
  const counts: Counts = { ready: input.deployment?.status?.readyReplicas ?? 0, want: input.desiredReplicas, settled };
  const invalid = validation.state === 'invalid' ? validation : undefined;
  const degradedBy = invalid ?? problem ?? input.warning;
  return {
    Ready: readyCondition(Boolean(job.spec.suspend), degradedBy, counts),
    Progressing: progressingCondition(Boolean(input.paused), invalid !== undefined, counts),
    Degraded: degradedCondition(degradedBy),
    ConfigValid: configValidCondition(validation),
  };
}

function phaseOf(input: StatusInput, conds: Record<BaseConditionType, Desired>): Phase {
  if (input.paused) return 'Paused';
  if (input.job.spec.suspend) return 'Suspended';
  if (conds.Degraded.status === 'True') return 'Degraded';
  if (conds.Ready.status === 'True') return 'Running';
  return 'Pending';
}

/** Keeps lastTransitionTime of a condition whose status did not change. */
export function mergeConditions(previous: readonly Condition[] | undefined, next: Desired[], generation: number, now: Date): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { ...c, message: bounded(c.message), observedGeneration: generation, lastTransitionTime };
  });
}

/** The status the job should have, from what the cluster reports. A pure function. */
export function deriveStatus(input: StatusInput): ProcessingJobStatus {
  const { job, deployment } = input;
  const progress = deploymentProgress(deployment, input.desiredReplicas);
  const problem = podProblem(input.pods, job.spec.podPendingTimeoutSeconds, input.now) ?? progress.failure ?? stallProblem(input.stalls);
  const conds = desiredConditions(input, problem, progress.settled);
  const previous = job.status ?? {};
  const generation = input.paused ? (previous.observedGeneration ?? 0) : (job.metadata.generation ?? 0);
  const status: ProcessingJobStatus = {
    ...previous,
    observedGeneration: generation,
    replicas: deployment?.status?.replicas ?? 0,
    readyReplicas: deployment?.status?.readyReplicas ?? 0,
    selector: input.selector,
    phase: phaseOf(input, conds),
    conditions: mergeConditions(previous.conditions, withAutoscalingCondition(Object.values(conds), input), generation, input.now),
  };
  withAutoscaling(status, input);
  return { ...status, ...observed(input) };
}

/** status.autoscaling as planned; kept while the job is not planned (invalid, paused); gone when autoscaling is off. */
function withAutoscaling(status: ProcessingJobStatus, input: StatusInput): void {
  if (input.autoscaling) status.autoscaling = input.autoscaling.status;
  else if (!input.job.spec.autoscaling?.enabled) delete status.autoscaling;
}

/** What the reconciler observed besides the Deployment: the rendered config and image, Kafka progress. */
function observed(input: StatusInput): Partial<ProcessingJobStatus> {
  const out: Partial<ProcessingJobStatus> = {};
  if (input.configHash) out.configHash = input.configHash;
  if (input.workerImage) out.workerImage = input.workerImage;
  if (input.progress?.consumerLag !== undefined) out.consumerLag = input.progress.consumerLag;
  if (input.progress?.lastCheckpointTime) out.lastCheckpointTime = input.progress.lastCheckpointTime;
  return out;
}

export const statusChanged = (before: ProcessingJobStatus | undefined, after: ProcessingJobStatus): boolean =>
  !isDeepStrictEqual(JSON.parse(JSON.stringify(before ?? {})), JSON.parse(JSON.stringify(after)));

export const conditionOf = (status: ProcessingJobStatus | undefined, type: ConditionType): Condition | undefined =>
  status?.conditions?.find((c) => c.type === type);
