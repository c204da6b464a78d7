/**
 * Autoscaling inside a reconcile: from the job, its Deployment, the window of
 * observations and the partition count to the replicas to apply, the
 * status.autoscaling block, the Autoscaling condition and the Event to send.
 * Pure: the decision itself is operator/autoscaling/decide.ts.
 */
import type { V1Deployment, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { ProcessingJob, ProcessingJobSpecAutoscaling, ProcessingJobStatusAutoscaling } from '../api/types.js';
import { decide, nextHistory, type Decision, type Observation, type Policy, type ScaleHistory } from '../autoscaling/decide.js';
import { rounded, workers } from '../autoscaling/format.js';
import { childNames } from '../render/paths.js';

export interface AutoscaleInput {
  job: ProcessingJob;
  deployment?: V1Deployment;
  observations: readonly Observation[];
  /** The topic's partition count, when known. */
  partitions?: number;
  /** HorizontalPodAutoscalers in the job's namespace. */
  autoscalers: readonly V2HorizontalPodAutoscaler[];
  now: Date;
  /** How long ago this operator last wrote the figures of status.autoscaling (undefined: never). */
  figuresAgeMs?: number;
  /** Why the workers are stopped by something else (a restore): the autoscaler holds. */
  stopped?: string;
}

export interface AutoscaleCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface AutoscalePlan {
  /** The replicas to apply; undefined: the spec's (mode Recommend, or another autoscaler drives the job). */
  replicas?: number;
  status: ProcessingJobStatusAutoscaling;
  condition: AutoscaleCondition;
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
  decision: Decision;
  /** This plan changes the number of workers. */
  scaled: boolean;
  /** status.autoscaling carries this look's figures (not the previous ones). */
  figuresRefreshed: boolean;
}

/** Figures and reason of status.autoscaling are rewritten at most this often when nothing else changed. */
export const FIGURES_REFRESH_MS = 30_000;

const KEDA_LABEL = 'scaledobject.keda.sh/name';

export function policyOf(a: ProcessingJobSpecAutoscaling): Policy {
  return {
    minParallelism: a.minParallelism,
    maxParallelism: a.maxParallelism,
    catchUpSeconds: a.catchUpSeconds,
    targetUtilization: a.targetUtilization,
    metricsWindowSeconds: a.metricsWindowSeconds,
    scaleUpStabilizationSeconds: a.scaleUpStabilizationSeconds,
    scaleDownStabilizationSeconds: a.scaleDownStabilizationSeconds,
  };
}

/** The job is autoscaled and the operator sets its worker count (not only recommends). */
export const autoscalerActs = (job: ProcessingJob): boolean => job.spec.autoscaling?.enabled === true && job.spec.autoscaling.mode === 'Scale' && !job.spec.suspend;

/** What an HPA scales, if it is this job or its worker Deployment. */
function targetOf(job: ProcessingJob, hpa: V2HorizontalPodAutoscaler): string | undefined {
  const ref = hpa.spec?.scaleTargetRef;
  if (!ref) return undefined;
  if (ref.kind === job.kind && ref.name === job.metadata.name && (ref.apiVersion ?? '').startsWith('sluice.dev/')) return 'this job';
  const deployment = childNames(job.metadata.name).deployment;
  return ref.kind === 'Deployment' && ref.name === deployment ? `Deployment ${deployment}` : undefined;
}

/** An HPA (or KEDA's HPA for a ScaledObject) that scales this job or its worker Deployment, in words. */
export function otherAutoscaler(job: ProcessingJob, hpas: readonly V2HorizontalPodAutoscaler[]): string | undefined {
  for (const hpa of hpas) {
    const target = targetOf(job, hpa);
    if (!target) continue;
    const name = hpa.metadata?.name;
    const keda = hpa.metadata?.labels?.[KEDA_LABEL];
    const who = keda ? `KEDA ScaledObject ${keda} (through HorizontalPodAutoscaler ${name})` : `HorizontalPodAutoscaler ${name}`;
    return `${who} also scales ${target}`;
  }
  return undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const ms = (time: string | undefined): number | undefined => (time ? Date.parse(time) : undefined);

function historyOf(status: ProcessingJobStatusAutoscaling | undefined): ScaleHistory {
  return { lastScaleAt: ms(status?.lastScaleTime), lastDirection: status?.lastScaleDirection, lastReversalAt: ms(status?.lastReversalTime) };
}

/** Workers to start from when the Deployment does not exist yet: spec.parallelism within the bounds. */
function initialReplicas(job: ProcessingJob, partitions: number | undefined): number {
  const a = job.spec.autoscaling!;
  const max = Math.min(a.maxParallelism ?? Infinity, partitions ?? Infinity);
  return Math.max(Math.min(a.minParallelism, max), Math.min(job.spec.parallelism, max));
}

/** The figures that move with every look, kept from the previous status while they are fresh enough. */
const VOLATILE = ['inputRate', 'processingRatePerWorker', 'lag', 'lagSeconds', 'reason'] as const;

function settleFigures(previous: ProcessingJobStatusAutoscaling | undefined, next: ProcessingJobStatusAutoscaling, ageMs: number | undefined): { status: ProcessingJobStatusAutoscaling; refreshed: boolean } {
  if (!previous || ageMs === undefined || ageMs >= FIGURES_REFRESH_MS) return { status: next, refreshed: true };
  const stable = (s: ProcessingJobStatusAutoscaling) => JSON.stringify({ ...s, ...Object.fromEntries(VOLATILE.map((k) => [k, undefined])) });
  if (stable(previous) !== stable(next)) return { status: next, refreshed: true };
  const kept: ProcessingJobStatusAutoscaling = { ...next };
  for (const k of VOLATILE) (kept as Record<string, unknown>)[k] = previous[k];
  return { status: kept, refreshed: false };
}

function conditionOf(job: ProcessingJob, conflict: string | undefined, decision: Decision): AutoscaleCondition {
  const a = job.spec.autoscaling!;
  if (job.spec.suspend) return { status: 'False', reason: 'Suspended', message: 'the job is suspended (spec.suspend): no worker runs and nothing is sized' };
  if (conflict) {
    return { status: 'False', reason: 'OtherAutoscaler', message: `${conflict}: Sluice does not change the number of workers while another autoscaler does; delete one of them (the job runs spec.parallelism workers)` };
  }
  const max = decision.bounds ? String(decision.bounds.max) : `${a.maxParallelism ?? "the topic's partitions"}`;
  if (a.mode === 'Recommend') {
    return { status: 'True', reason: 'Recommending', message: `recommending only (spec.autoscaling.mode Recommend): the job runs spec.parallelism (${job.spec.parallelism}) workers; recommendations between ${a.minParallelism} and ${max}` };
  }
  return { status: 'True', reason: 'Scaling', message: `the operator sets the number of workers, between ${a.minParallelism} and ${max}; spec.parallelism (${job.spec.parallelism}) applies when autoscaling is off` };
}

function eventOf(job: ProcessingJob, decision: Decision, from: number, acting: boolean, previous: ProcessingJobStatusAutoscaling | undefined): AutoscalePlan['event'] {
  if (decision.action !== 'ScaleUp' && decision.action !== 'ScaleDown') return undefined;
  const why = decision.summary ?? decision.reason.replace(/^scaling (up|down) from \d+ to \d+: /, '');
  if (acting) return { type: 'Normal', reason: 'Autoscaled', message: `Scaled ${job.metadata.name} from ${from} to ${workers(decision.desired)}: ${why}` };
  // Recommend mode: once per new recommendation.
  if (previous?.lastDecision === decision.action && previous.recommendedParallelism === decision.desired) return undefined;
  return { type: 'Normal', reason: 'AutoscaleRecommended', message: `Would scale ${job.metadata.name} from ${from} to ${workers(decision.desired)}: ${why}` };
}

/** The decision, turned into a hold when another autoscaler drives the job. */
function decisionOf(input: AutoscaleInput, current: number, conflict: string | undefined): Decision {
  const { job } = input;
  if (job.spec.suspend) return { action: 'Hold', desired: 0, recommended: 0, reason: 'the job is suspended' };
  if (input.stopped) return { action: 'Hold', desired: current, recommended: current, reason: `holding: ${input.stopped}` };
  const history = historyOf(job.status?.autoscaling);
  const decision = decide({ policy: policyOf(job.spec.autoscaling!), partitions: input.partitions, current, observations: input.observations, history, now: input.now.getTime() });
  if (!conflict || decision.action === 'Hold') return decision;
  return { ...decision, action: 'Hold', desired: current, reason: `${conflict}, so Sluice does not act; it would: ${decision.reason}` };
}

const FIGURES = ['inputRate', 'processingRatePerWorker', 'lag', 'lagSeconds'] as const;

function figuresOf(decision: Decision, previous: ProcessingJobStatusAutoscaling | undefined): Pick<ProcessingJobStatusAutoscaling, (typeof FIGURES)[number]> {
  const s = decision.signals;
  // Holding without figures: keep the last ones a person saw.
  if (!s) return Object.fromEntries(FIGURES.filter((k) => previous?.[k] !== undefined).map((k) => [k, previous![k]]));
  const figures: Pick<ProcessingJobStatusAutoscaling, (typeof FIGURES)[number]> = { inputRate: rounded(s.inputRate), lag: rounded(s.lag), lagSeconds: Math.round(s.lagSeconds) };
  if (s.ratePerWorker !== undefined) figures.processingRatePerWorker = rounded(s.ratePerWorker);
  return figures;
}

function historyFields(h: ScaleHistory): Pick<ProcessingJobStatusAutoscaling, 'lastScaleTime' | 'lastScaleDirection' | 'lastReversalTime'> {
  const out: Pick<ProcessingJobStatusAutoscaling, 'lastScaleTime' | 'lastScaleDirection' | 'lastReversalTime'> = {};
  if (h.lastScaleAt !== undefined) out.lastScaleTime = iso(h.lastScaleAt);
  if (h.lastDirection) out.lastScaleDirection = h.lastDirection;
  if (h.lastReversalAt !== undefined) out.lastReversalTime = iso(h.lastReversalAt);
  return out;
}

/** Workers running now: the Deployment's; before it exists, what the spec (or the bounds) start with. */
function currentOf(input: AutoscaleInput, follows: boolean): number {
  const replicas = input.deployment?.spec?.replicas;
  if (replicas !== undefined) return replicas;
  return follows ? input.job.spec.parallelism : initialReplicas(input.job, input.partitions);
}

interface Outcome {
  decision: Decision;
  current: number;
  acting: boolean;
  scales: boolean;
}

function statusOf(input: AutoscaleInput, o: Outcome): ProcessingJobStatusAutoscaling {
  const { job } = input;
  const a = job.spec.autoscaling!;
  const previous = job.status?.autoscaling;
  const history = historyOf(previous);
  const after = o.acting && o.scales ? nextHistory(history, o.decision, input.now.getTime()) : history;
  const partitions = o.decision.bounds ? input.partitions : previous?.partitions;
  const recommendOnly = a.mode === 'Recommend';
  let current = o.acting && o.scales ? o.decision.desired : o.current;
  if (job.spec.suspend) current = 0;
  return {
    mode: a.mode,
    currentParallelism: current,
    recommendedParallelism: recommendOnly && o.scales ? o.decision.desired : o.decision.recommended,
    ...figuresOf(o.decision, previous),
    ...(partitions !== undefined ? { partitions } : {}),
    lastDecision: o.decision.action,
    reason: o.decision.reason.slice(0, 1024),
    ...historyFields(after),
  };
}

/** What autoscaling asks of this reconcile; undefined when spec.autoscaling is off. */
export function planAutoscaling(input: AutoscaleInput): AutoscalePlan | undefined {
  const { job } = input;
  if (!job.spec.autoscaling?.enabled) return undefined;
  const conflict = otherAutoscaler(job, input.autoscalers);
  const recommendOnly = job.spec.autoscaling.mode === 'Recommend';
  const current = currentOf(input, recommendOnly || conflict !== undefined);
  const decision = decisionOf(input, current, conflict);
  const acting = !recommendOnly && !conflict && !job.spec.suspend && !input.stopped;
  const scales = decision.action === 'ScaleUp' || decision.action === 'ScaleDown';
  const previous = job.status?.autoscaling;
  const settled = settleFigures(previous, statusOf(input, { decision, current, acting, scales }), input.figuresAgeMs);
  return {
    replicas: acting ? decision.desired : undefined,
    status: settled.status,
    condition: conditionOf(job, conflict, decision),
    event: job.spec.suspend ? undefined : eventOf(job, decision, current, acting, previous),
    decision,
    scaled: acting && scales,
    figuresRefreshed: settled.refreshed,
  };
}
