/**
 * A small model of a job under load, to run the decision function in a closed
 * loop on synthetic traces (unit tests, and `npx tsx operator/autoscaling/simulate.ts`
 * to print them). The topic grows at the trace's input rate; each ready worker
 * processes at most its true rate; a scale creates or removes pods, new pods
 * become ready after `startSeconds`, and after any change the group rebalances
 * for `rebalanceSeconds` (nothing consumed, positions unknown). Not a model of
 * Kafka: of what the operator would observe.
 */
import { autoscalingDefaults } from '../api/sample.js';
import { decide, nextHistory, type Action, type Decision, type Observation, type Policy, type ScaleHistory, type WorkerSample } from './decide.js';

export interface Trace {
  name: string;
  seconds: number;
  /** Events/s produced at time t (seconds). */
  input(t: number): number;
  /** True rate of one worker at time t, events per second of busy time. */
  capacity(t: number): number;
  partitions: number;
  initialWorkers: number;
  initialLag?: number;
  /** A pod that is not ready (crashed and restarting) during [from, to) seconds. */
  outage?: { pod: number; from: number; to: number };
  policy?: Partial<Policy>;
  stepSeconds?: number;
  startSeconds?: number;
  rebalanceSeconds?: number;
}

export interface Step {
  t: number;
  workers: number;
  lag: number;
  inputRate: number;
  action: Action;
  reason: string;
}

export interface Scale {
  t: number;
  from: number;
  to: number;
  reason: string;
}

export interface TraceResult {
  trace: string;
  /** Parallelism over time, consecutive repeats collapsed: [2, 4, 2]. */
  sequence: number[];
  scales: Scale[];
  steps: Step[];
  maxLag: number;
  finalLag: number;
}

/** The CRD's defaults of spec.autoscaling. */
export const defaultPolicy: Policy = (({ enabled: _enabled, mode: _mode, ...policy }) => policy)(autoscalingDefaults());

interface Pod {
  name: string;
  readyAt: number;
  processed: number;
  busy: number;
}

/** A deterministic pseudo-random sequence in [0, 1) (mulberry32), so noisy traces repeat exactly. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Model {
  produced = 0;
  consumed = 0;
  pods: Pod[] = [];
  private serial = 0;
  private rebalanceUntil = 0;

  constructor(
    private readonly trace: Trace,
    initialLag: number,
  ) {
    this.produced = initialLag;
    for (let i = 0; i < trace.initialWorkers; i++) this.pods.push(this.pod(-1e9));
  }

  private pod(readyAt: number): Pod {
    return { name: `w${this.serial++}`, readyAt, processed: 0, busy: 0 };
  }

  private ready(p: Pod, t: number): boolean {
    const o = this.trace.outage;
    const down = o !== undefined && this.pods.indexOf(p) === o.pod && t >= o.from && t < o.to;
    return t >= p.readyAt && !down;
  }

  scaleTo(n: number, t: number): void {
    while (this.pods.length > n) this.pods.pop();
    while (this.pods.length < n) this.pods.push(this.pod(t + (this.trace.startSeconds ?? 15)));
    this.rebalanceUntil = Math.max(...this.pods.map((p) => p.readyAt), t) + (this.trace.rebalanceSeconds ?? 5);
  }

  advance(t: number, dt: number): void {
    this.produced += this.trace.input(t) * dt;
    const o = this.trace.outage;
    if (o && t >= o.to && t - dt < o.to) this.pods[o.pod].processed = this.pods[o.pod].busy = 0; // restarted: counters from zero
    if (o && t >= o.from && t - dt < o.from) this.rebalanceUntil = t + (this.trace.rebalanceSeconds ?? 5);
    if (o && t >= o.to && t - dt < o.to) this.rebalanceUntil = t + (this.trace.rebalanceSeconds ?? 5);
    if (t < this.rebalanceUntil) return;
    const ready = this.pods.filter((p) => this.ready(p, t));
    if (!ready.length) return;
    const c = this.trace.capacity(t);
    const done = Math.min(this.produced - this.consumed, ready.length * c * dt);
    this.consumed += done;
    for (const p of ready) {
      p.processed += done / ready.length;
      p.busy += done / ready.length / c;
    }
  }

  observe(t: number, replicas: number): Observation {
    const workers: WorkerSample[] = this.pods.map((p) => ({ pod: p.name, ready: this.ready(p, t), processed: Math.round(p.processed), busySeconds: p.busy }));
    const rebalancing = t < this.rebalanceUntil;
    return { at: t * 1000, endOffsets: Math.round(this.produced), lag: rebalancing ? undefined : Math.round(this.produced - this.consumed), replicas, rollingOut: false, workers };
  }
}

/** Runs the decision function every step over the trace, acting on every scale it asks for. */
export function simulate(trace: Trace): TraceResult {
  const policy: Policy = { ...defaultPolicy, ...trace.policy };
  const dt = trace.stepSeconds ?? 5;
  const model = new Model(trace, trace.initialLag ?? 0);
  let current = trace.initialWorkers;
  let history: ScaleHistory = {};
  const observations: Observation[] = [];
  const keepMs = (Math.max(policy.scaleDownStabilizationSeconds, policy.metricsWindowSeconds) + 60) * 1000;
  const steps: Step[] = [];
  const scales: Scale[] = [];
  for (let t = 0; t <= trace.seconds; t += dt) {
    model.advance(t, dt);
    observations.push(model.observe(t, current));
    while (observations.length && observations[0].at < t * 1000 - keepMs) observations.shift();
    const d: Decision = decide({ policy, partitions: trace.partitions, current, observations, history, now: t * 1000 });
    if (d.desired !== current) {
      scales.push({ t, from: current, to: d.desired, reason: d.reason });
      history = nextHistory(history, d, t * 1000);
      current = d.desired;
      model.scaleTo(current, t);
    }
    steps.push({ t, workers: current, lag: Math.round(model.produced - model.consumed), inputRate: trace.input(t), action: d.action, reason: d.reason });
  }
  const sequence = [trace.initialWorkers, ...scales.map((s) => s.to)];
  return { trace: trace.name, sequence, scales, steps, maxLag: Math.max(...steps.map((s) => s.lag)), finalLag: steps[steps.length - 1].lag };
}

/**
 * Scales that flap: a scale-down less than `windowSeconds` after a scale-up,
 * or a change of direction less than `windowSeconds` after the previous change
 * of direction (at most one per window). Empty when the job never flapped.
 */
export function flaps(scales: readonly Scale[], windowSeconds: number): Scale[] {
  const dir = (s: Scale): number => Math.sign(s.to - s.from);
  const quickDown = scales.filter((s, i) => i > 0 && dir(s) < 0 && dir(scales[i - 1]) > 0 && s.t - scales[i - 1].t < windowSeconds);
  const reversals = scales.filter((s, i) => i > 0 && dir(s) !== dir(scales[i - 1]));
  const close = reversals.filter((r, i) => i > 0 && r.t - reversals[i - 1].t < windowSeconds);
  return [...new Set([...quickDown, ...close])];
}
