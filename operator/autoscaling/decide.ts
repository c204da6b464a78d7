/**
 * The autoscaler's decision: one pure function from a window of observations
 * of a job (what Kafka and the worker pods reported) to the number of workers
 * it should run, with the reason in words. No clock, no I/O: the operator
 * collects the observations and acts on the answer; the tests feed it
 * synthetic traces.
 *
 * Sizing: demand = input rate + lag / catchUpSeconds (events/s), capacity of
 * one worker = its true processing rate (events per second of busy time), so
 * workers needed = demand / (true rate x targetUtilization), rounded up and
 * clamped to [min, max, partitions]. Stability: a scale-up needs every
 * recommendation of the scale-up window to ask for more (and the load to pass
 * the threshold halfway between the target and 100%); a scale-down needs a
 * whole scale-down window without any scale in which every recommendation asked
 * for fewer, and goes to the largest of them; two changes of direction are
 * never closer than the scale-down window. Anything that makes the figures
 * untrustworthy (a rollout, a worker not ready, missing metrics, unknown
 * partitions) holds the decision instead of guessing.
 */
import type { ProcessingJobSpecAutoscaling } from '../api/types.js';
import { amount, rate, seconds, workers } from './format.js';

/** What one worker pod reported at one observation. */
export interface WorkerSample {
  pod: string;
  ready: boolean;
  /** Counters from the pod's /metrics (sluice_events_in_total, sluice_busy_seconds_total); absent when it did not answer. */
  processed?: number;
  busySeconds?: number;
}

/** One look at a job. */
export interface Observation {
  /** Milliseconds since the epoch. */
  at: number;
  /** Sum of the topic's end offsets; absent when Kafka did not answer. */
  endOffsets?: number;
  /** Events between the end of the topic and the workers' positions, all partitions; absent when a partition has no known position. */
  lag?: number;
  /** Workers the Deployment asked for at that moment. */
  replicas: number;
  /** The Deployment is rolling out (new pod template, or not all replicas updated and available). */
  rollingOut: boolean;
  workers: readonly WorkerSample[];
}

/** spec.autoscaling with its defaults, less the switches (enabled, mode) that decide whether the function is asked at all. */
export type Policy = Omit<ProcessingJobSpecAutoscaling, 'enabled' | 'mode'>;

/** What the operator remembers of past scales (kept in status.autoscaling, so a new leader knows it too). */
export interface ScaleHistory {
  lastScaleAt?: number;
  lastDirection?: 'Up' | 'Down';
  lastReversalAt?: number;
}

export interface DecisionInput {
  policy: Policy;
  /** The topic's partition count; absent while unknown. */
  partitions?: number;
  /** Workers running now (the Deployment's replicas). */
  current: number;
  /** Oldest first. Older ones than the windows need are ignored. */
  observations: readonly Observation[];
  history: ScaleHistory;
  now: number;
}

/** The figures behind a recommendation. */
export interface Signals {
  /** Events/s arriving on the topic. */
  inputRate: number;
  /** Events one worker processes per second of busy time; absent when the workers were never busy in the window. */
  ratePerWorker?: number;
  /** Events behind. */
  lag: number;
  /** Seconds of input the lag holds. */
  lagSeconds: number;
  /** Events/s to plan for: input + lag / catchUpSeconds. */
  demand: number;
  /** Demand over the capacity of the workers running now (1 = exactly saturated). */
  load?: number;
  /** Workers needed at the target utilisation, before rounding and bounds. */
  needed: number;
  /** Rounded up and clamped to the bounds. */
  recommended: number;
  /** Seconds until the lag is gone at the speed it shrank since the previous observation; absent when it did not shrink. */
  drainSeconds?: number;
}

export type Action = 'ScaleUp' | 'ScaleDown' | 'Steady' | 'Hold';

export interface Decision {
  action: Action;
  /** The parallelism to run: `current` unless the action is a scale. */
  desired: number;
  /** What the latest figures call for (current while they are unusable). */
  recommended: number;
  /** The decision in words, with its figures. */
  reason: string;
  /** For an Event: "input 38k/s, one worker does 11k/s, lag 90 s". */
  summary?: string;
  signals?: Signals;
  /** This scale goes the other way from the previous one. */
  reversal?: boolean;
  /** Lower and upper bound in force (upper = min(maxParallelism, partitions)). */
  bounds?: { min: number; max: number };
}

interface Point {
  at: number;
  signals: Signals;
}

const EPS = 1e-9;

/** The middle value (the lower of the two middle ones). */
const median = (values: number[]): number => values.slice().sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
/** Less busy time than this in a window says nothing about a worker's rate. */
const MIN_BUSY_SECONDS = 0.05;

const hold = (current: number, reason: string, extra: Partial<Decision> = {}): Decision => ({ action: 'Hold', desired: current, recommended: current, reason, ...extra });

/** The upper bound and how to name it, or why it is unknown. */
function boundsOf(policy: Policy, partitions: number | undefined): { min: number; max: number; maxName: string } | undefined {
  if (partitions === undefined || partitions < 1) return undefined;
  const capped = policy.maxParallelism === undefined || policy.maxParallelism >= partitions;
  const max = capped ? partitions : policy.maxParallelism!;
  const maxName = capped ? `the topic's ${partitions} partitions` : `spec.autoscaling.maxParallelism (${max})`;
  return { min: Math.min(policy.minParallelism, max), max, maxName };
}

/** Why an observation cannot be used for sizing, or undefined. */
export function unusable(o: Observation, current: number): string | undefined {
  if (o.replicas !== current) return `the Deployment is moving from ${o.replicas} to ${workers(current)}`;
  if (o.rollingOut) return 'a rollout of the workers is in progress';
  const missing = o.workers.find((w) => w.ready && (w.processed === undefined || w.busySeconds === undefined));
  const notReady = o.workers.filter((w) => !w.ready);
  if (notReady.length) return `worker ${notReady.map((w) => w.pod).join(', ')} ${notReady.length === 1 ? 'is' : 'are'} not ready`;
  if (o.workers.length < current) return `${o.workers.length}/${current} worker pods exist`;
  if (missing) return `no metrics from worker ${missing.pod}`;
  if (o.endOffsets === undefined) return "the topic's end offsets could not be read from Kafka";
  if (o.lag === undefined) return 'the workers do not report a position for every partition (a rebalance?)';
  return undefined;
}

/** Events processed and busy seconds over consecutive observations, per pod seen in both (a counter that went down restarted: skipped). */
function work(window: readonly Observation[]): { processed: number; busy: number } {
  let processed = 0;
  let busy = 0;
  for (let i = 1; i < window.length; i++) {
    const before = new Map(window[i - 1].workers.map((w) => [w.pod, w]));
    for (const w of window[i].workers) {
      const b = before.get(w.pod);
      if (!b || b.processed === undefined || b.busySeconds === undefined || w.processed === undefined || w.busySeconds === undefined) continue;
      const dp = w.processed - b.processed;
      const db = w.busySeconds - b.busySeconds;
      if (dp < 0 || db < 0) continue;
      processed += dp;
      busy += db;
    }
  }
  return { processed, busy };
}

function signalsAt(window: readonly Observation[], segment: readonly Observation[], input: DecisionInput, bounds: { min: number; max: number }): Signals | undefined {
  const first = window[0];
  const last = window[window.length - 1];
  const dt = (last.at - first.at) / 1000;
  if (dt <= 0) return undefined;
  const inputRate = Math.max(0, (last.endOffsets! - first.endOffsets!) / dt);
  const lag = last.lag!;
  let done = work(window);
  // Mostly idle workers say little over a short window: use the whole stretch of good observations.
  if (done.busy < MIN_BUSY_SECONDS) done = work(segment);
  const ratePerWorker = done.busy >= MIN_BUSY_SECONDS && done.processed > 0 ? done.processed / done.busy : undefined;
  const { catchUpSeconds, targetUtilization } = input.policy;
  const demand = inputRate + lag / catchUpSeconds;
  if (ratePerWorker === undefined && demand > EPS) return undefined;
  const needed = ratePerWorker === undefined ? 0 : demand / (ratePerWorker * targetUtilization);
  const recommended = Math.min(bounds.max, Math.max(bounds.min, Math.ceil(needed - EPS)));
  const running = last.replicas;
  const load = ratePerWorker === undefined || running === 0 ? undefined : demand / (running * ratePerWorker);
  let lagSeconds = 0;
  if (inputRate > EPS) lagSeconds = lag / inputRate;
  else if (lag > 0 && ratePerWorker) lagSeconds = lag / (Math.max(1, running) * ratePerWorker);
  const prev = window[window.length - 2];
  const shrink = (prev.lag! - lag) / ((last.at - prev.at) / 1000);
  const drainSeconds = shrink > 0 ? lag / shrink : undefined;
  return { inputRate, ratePerWorker, lag, lagSeconds, demand, load, needed, recommended, drainSeconds };
}

/**
 * Stretches of good observations (each one usable with the replicas it saw),
 * split where the number of workers changed: rates are never measured across
 * a change.
 */
function segmentsOf(observations: readonly Observation[]): Observation[][] {
  const segments: Observation[][] = [];
  let run: Observation[] = [];
  for (const o of observations) {
    if (unusable(o, o.replicas) || (run.length && run[run.length - 1].replicas !== o.replicas)) {
      if (run.length) segments.push(run);
      run = unusable(o, o.replicas) ? [] : [o];
    } else {
      run.push(o);
    }
  }
  if (run.length) segments.push(run);
  return segments;
}

/** A recommendation at each observation with at least half a metrics window of its stretch behind it. */
function pointsOf(segment: readonly Observation[], input: DecisionInput, bounds: { min: number; max: number }): Point[] {
  const windowMs = input.policy.metricsWindowSeconds * 1000;
  const points: Point[] = [];
  let start = 0;
  for (let i = 0; i < segment.length; i++) {
    while (segment[i].at - segment[start].at > windowMs) start++;
    if (segment[i].at - segment[start].at < windowMs / 2) continue;
    const s = signalsAt(segment.slice(start, i + 1), segment.slice(0, i + 1), input, bounds);
    if (s) points.push({ at: segment[i].at, signals: s });
  }
  return points;
}

const summaryOf = (s: Signals): string =>
  `input ${rate(s.inputRate)}, one worker does ${s.ratePerWorker === undefined ? 'an unknown rate' : rate(s.ratePerWorker)}, lag ${seconds(s.lagSeconds)}`;

function figures(s: Signals, policy: Policy): string {
  const lagPart = s.lag > 0 ? ` + lag ${amount(s.lag)} / ${policy.catchUpSeconds} s catch-up` : '';
  const per = s.ratePerWorker === undefined ? 'the workers were idle' : `one worker does ${rate(s.ratePerWorker)} of busy time`;
  return `input ${rate(s.inputRate)}${lagPart} = ${rate(s.demand)} to handle; ${per}; at ${Math.round(policy.targetUtilization * 100)}% that is ${s.needed.toFixed(2)} workers`;
}

/** The threshold the load must pass before a scale-up: halfway between the target utilisation and saturation. */
export const scaleUpThreshold = (policy: Policy): number => (policy.targetUtilization + 1) / 2;

function reversalBlocked(input: DecisionInput, direction: 'Up' | 'Down'): string | undefined {
  const { history, now, policy } = input;
  if (!history.lastDirection || history.lastDirection === direction || history.lastReversalAt === undefined) return undefined;
  const since = (now - history.lastReversalAt) / 1000;
  if (since >= policy.scaleDownStabilizationSeconds) return undefined;
  return `the last change of direction was ${seconds(since)} ago, and two are never closer than spec.autoscaling.scaleDownStabilizationSeconds (${policy.scaleDownStabilizationSeconds} s)`;
}

function scale(input: DecisionInput, to: number, why: string, latest: Signals, bounds: { min: number; max: number }): Decision {
  const direction = to > input.current ? 'Up' : 'Down';
  const blocked = reversalBlocked(input, direction);
  const verb = direction === 'Up' ? 'scale up' : 'scale down';
  if (blocked) {
    return hold(input.current, `would ${verb} from ${input.current} to ${to}, but ${blocked}: ${why}`, { recommended: to, signals: latest, summary: summaryOf(latest), bounds });
  }
  return {
    action: direction === 'Up' ? 'ScaleUp' : 'ScaleDown',
    desired: to,
    recommended: latest.recommended,
    reason: `${direction === 'Up' ? 'scaling up' : 'scaling down'} from ${input.current} to ${to}: ${why}`,
    summary: summaryOf(latest),
    signals: latest,
    reversal: input.history.lastDirection !== undefined && input.history.lastDirection !== direction,
    bounds,
  };
}

function upDecision(input: DecisionInput, points: Point[], latest: Signals, bounds: { min: number; max: number }): Decision | undefined {
  const threshold = scaleUpThreshold(input.policy);
  // A backlog the running workers are visibly working off within the catch-up target is no reason to add one.
  const drainingInTime = (s: Signals): boolean => s.lagSeconds >= 1 && s.drainSeconds !== undefined && s.drainSeconds <= input.policy.catchUpSeconds;
  const wants = (p: Point): boolean => p.signals.recommended > input.current && (p.signals.load ?? Infinity) > threshold && !drainingInTime(p.signals);
  if (!wants(points[points.length - 1])) return undefined;
  const windowMs = input.policy.scaleUpStabilizationSeconds * 1000;
  const lastAt = points[points.length - 1].at;
  const recent = points.filter((p) => p.at >= lastAt - windowMs);
  const covered = points[0].at <= lastAt - windowMs;
  const capped = latest.recommended === bounds.max && Math.ceil(latest.needed - EPS) > bounds.max;
  const why = `${figures(latest, input.policy)}${capped ? `, capped at ${bounds.max}` : ''}`;
  // To the middle of what the window asked for: one noisy look does not add a worker.
  if (covered && recent.every(wants)) {
    const target = median(recent.map((p) => p.signals.recommended));
    return scale(input, target, target === latest.recommended ? why : `${why}; the middle of the last ${input.policy.scaleUpStabilizationSeconds} s of recommendations is ${target}`, latest, bounds);
  }
  const agreeing = ((lastAt - (recent.slice().reverse().find((p) => !wants(p))?.at ?? points[0].at)) / 1000);
  return {
    action: 'Steady',
    desired: input.current,
    recommended: latest.recommended,
    reason: `${input.current} workers, ${latest.recommended} wanted: ${why}; scaling up once the whole ${input.policy.scaleUpStabilizationSeconds} s scale-up window agrees (${seconds(agreeing)} so far)`,
    summary: summaryOf(latest),
    signals: latest,
    bounds,
  };
}

/** The largest recommendation made from data of the `windowMs` before `at` (each point's data spans a metrics window). */
function largestBefore(points: readonly Point[], at: number, windowMs: number): number {
  return Math.max(...points.filter((p) => p.at <= at && p.at >= at - windowMs).map((p) => p.signals.recommended));
}

function downDecision(input: DecisionInput, points: Point[], latest: Signals, bounds: { min: number; max: number }): Decision | undefined {
  if (latest.recommended >= input.current) return undefined;
  const { policy, history, now } = input;
  const metricsMs = policy.metricsWindowSeconds * 1000;
  const windowMs = Math.max(0, policy.scaleDownStabilizationSeconds * 1000 - metricsMs);
  const lastAt = points[points.length - 1].at;
  const target = largestBefore(points, lastAt, windowMs);
  // Still falling a metrics window ago? Then the window holds recommendations made while the load was
  // dropping (rates are averages): wait for them to leave it rather than stop halfway.
  const settled = windowMs === 0 || largestBefore(points, lastAt - metricsMs, windowMs) === target;
  const sinceScale = history.lastScaleAt === undefined ? Infinity : (now - history.lastScaleAt) / 1000;
  const covered = points[0].at <= lastAt - windowMs - (windowMs === 0 ? 0 : metricsMs);
  const why = figures(latest, policy);
  if (covered && settled && sinceScale >= policy.scaleDownStabilizationSeconds && target < input.current) {
    return scale(input, target, `${why}; the most any recommendation of the last ${policy.scaleDownStabilizationSeconds} s asked for is ${target}`, latest, bounds);
  }
  const waited = Math.min((lastAt - points[0].at) / 1000 + policy.metricsWindowSeconds / 2, sinceScale, policy.scaleDownStabilizationSeconds);
  const pending = target >= input.current ? `, ${target} asked for within it` : !covered || sinceScale < policy.scaleDownStabilizationSeconds ? '' : ', recommendations still falling';
  return {
    action: 'Steady',
    desired: input.current,
    recommended: latest.recommended,
    reason: `${input.current} workers, ${latest.recommended} would do: ${why}; scaling down only after a ${policy.scaleDownStabilizationSeconds} s scale-down window that agrees (${seconds(waited)} so far${pending})`,
    summary: summaryOf(latest),
    signals: latest,
    bounds,
  };
}

/** The number of workers a job should run, and why. A pure function. */
export function decide(input: DecisionInput): Decision {
  const { current, policy, observations } = input;
  const bounds = boundsOf(policy, input.partitions);
  if (!bounds) return hold(current, "the topic's partition count is not known yet");
  if (current > bounds.max) return { action: 'ScaleDown', desired: bounds.max, recommended: bounds.max, reason: `scaling down from ${current} to ${bounds.max}: never more workers than ${boundsOf(policy, input.partitions)!.maxName}`, bounds };
  if (current < bounds.min) {
    const capped = policy.minParallelism > bounds.min ? ` (capped at ${boundsOf(policy, input.partitions)!.maxName})` : '';
    return { action: 'ScaleUp', desired: bounds.min, recommended: bounds.min, reason: `scaling up from ${current} to ${bounds.min}: spec.autoscaling.minParallelism is ${policy.minParallelism}${capped}`, bounds };
  }
  const latestObservation = observations[observations.length - 1];
  if (!latestObservation) return hold(current, 'no observation of the job yet', { bounds });
  const why = unusable(latestObservation, current);
  if (why) return hold(current, `holding at ${workers(current)}: ${why}`, { bounds });
  const keepFrom = input.now - (Math.max(policy.scaleDownStabilizationSeconds, policy.metricsWindowSeconds) + policy.metricsWindowSeconds) * 1000;
  const segments = segmentsOf(observations.filter((o) => o.at >= keepFrom));
  const last = segments[segments.length - 1] ?? [];
  const lastScaleAt = input.history.lastScaleAt;
  const usable = last.filter((o) => o.replicas === current && (lastScaleAt === undefined || o.at > lastScaleAt));
  const points = pointsOf(usable, input, bounds);
  if (points.length === 0) {
    const have = usable.length > 1 ? (usable[usable.length - 1].at - usable[0].at) / 1000 : 0;
    const idle = usable.length > 1 && unusableRate(input, usable, bounds);
    if (idle) return hold(current, `holding at ${workers(current)}: ${idle}`, { bounds });
    return hold(current, `holding at ${workers(current)}: collecting observations (${seconds(have)} of the ${seconds(policy.metricsWindowSeconds / 2)} a rate needs)`, { bounds });
  }
  const latest = points[points.length - 1].signals;
  const decision = upDecision(input, points, latest, bounds) ?? downDecision(input, points, latest, bounds);
  if (decision) return decision;
  return {
    action: 'Steady',
    desired: current,
    recommended: latest.recommended,
    reason: `${workers(current)} fit the load: ${figures(latest, policy)}${latest.load !== undefined ? ` (load ${Math.round(latest.load * 100)}% of the ${current} workers)` : ''}`,
    summary: summaryOf(latest),
    signals: latest,
    bounds,
  };
}

/** Why no rate could be computed although the window is long enough (input but no busy time), or undefined. */
function unusableRate(input: DecisionInput, usable: Observation[], bounds: { min: number; max: number }): string | undefined {
  if ((usable[usable.length - 1].at - usable[0].at) / 1000 < input.policy.metricsWindowSeconds / 2) return undefined;
  const s = signalsAt(usable, usable, input, bounds);
  return s ? undefined : 'events arrive but the workers report no busy time (are they consuming?)';
}

/** The history after acting on a decision. */
export function nextHistory(history: ScaleHistory, decision: Decision, now: number): ScaleHistory {
  if (decision.action !== 'ScaleUp' && decision.action !== 'ScaleDown') return history;
  const direction = decision.action === 'ScaleUp' ? 'Up' : 'Down';
  return {
    lastScaleAt: now,
    lastDirection: direction,
    lastReversalAt: history.lastDirection !== undefined && history.lastDirection !== direction ? now : history.lastReversalAt,
  };
}
