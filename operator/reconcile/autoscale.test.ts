import type { V1Deployment, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec, type SpecInput } from '../api/sample.js';
import type { ProcessingJob, ProcessingJobStatusAutoscaling } from '../api/types.js';
import type { Observation } from '../autoscaling/decide.js';
import { FIGURES_REFRESH_MS, otherAutoscaler, planAutoscaling, type AutoscaleInput } from './autoscale.js';

const t0 = Date.parse('2026-11-24T12:00:00Z');

function job(autoscaling: Partial<NonNullable<SpecInput['autoscaling']>> | undefined, extra: Partial<SpecInput> = {}, status?: ProcessingJobStatusAutoscaling): ProcessingJob {
  const j = defaultedJob('churn', 'shop', { ...minimalSpec(), parallelism: 2, ...extra, ...(autoscaling ? { autoscaling: { enabled: true, ...autoscaling } as SpecInput['autoscaling'] } : {}) });
  return status ? { ...j, status: { autoscaling: status } } : j;
}

const deployment = (replicas: number): V1Deployment => ({ metadata: { generation: 1 }, spec: { replicas, selector: {}, template: {} }, status: { observedGeneration: 1, replicas, readyReplicas: replicas, updatedReplicas: replicas } });

/** `seconds` of observations of `n` workers, each doing `perWorker` events/s at `busy` of its time, with `input` events/s arriving. */
function observations(n: number, seconds: number, input: number, perWorker: number, busy: number, lag = 0): Observation[] {
  const out: Observation[] = [];
  for (let t = 0; t <= seconds; t += 5) {
    out.push({
      at: t0 + t * 1000,
      endOffsets: input * t,
      lag,
      replicas: n,
      rollingOut: false,
      workers: Array.from({ length: n }, (_, i) => ({ pod: `churn-worker-${i}`, ready: true, processed: perWorker * t, busySeconds: busy * t })),
    });
  }
  return out;
}

const plan = (over: Partial<AutoscaleInput> & { job: ProcessingJob }) => {
  const obs = over.observations ?? [];
  return planAutoscaling({ deployment: deployment(2), observations: obs, partitions: 8, autoscalers: [], now: new Date(obs.at(-1)?.at ?? t0), ...over });
};

const hpa = (name: string, kind: string, target: string, labels?: Record<string, string>): V2HorizontalPodAutoscaler => ({
  metadata: { name, labels },
  spec: { maxReplicas: 4, scaleTargetRef: { apiVersion: kind === 'ProcessingJob' ? 'sluice.dev/v1alpha1' : 'apps/v1', kind, name: target } },
});

describe('planAutoscaling', () => {
  it('does nothing for a job without spec.autoscaling', () => {
    expect(plan({ job: job(undefined) })).toBeUndefined();
    expect(plan({ job: job({ enabled: false }) })).toBeUndefined();
  });

  it('sets the replicas, records the scale and sends one Event worded for people', () => {
    const p = plan({ job: job({ catchUpSeconds: 300 }), observations: observations(2, 60, 38_000, 11_000, 1, 3_420_000) })!;
    expect(p.scaled).toBe(true);
    expect(p.replicas).toBe(6);
    expect(p.event).toEqual({ type: 'Normal', reason: 'Autoscaled', message: 'Scaled churn from 2 to 6 workers: input 38k/s, one worker does 11k/s, lag 90 s' });
    expect(p.status).toMatchObject({
      mode: 'Scale',
      currentParallelism: 6,
      recommendedParallelism: 6,
      inputRate: 38_000,
      processingRatePerWorker: 11_000,
      lag: 3_400_000,
      lagSeconds: 90,
      partitions: 8,
      lastDecision: 'ScaleUp',
      lastScaleTime: '2026-11-24T12:01:00Z',
      lastScaleDirection: 'Up',
    });
    expect(p.status.lastReversalTime).toBeUndefined();
    expect(p.condition).toMatchObject({ status: 'True', reason: 'Scaling' });
  });

  it('keeps the Deployment as it is while holding, and says why', () => {
    const p = plan({ job: job({}), deployment: deployment(3), observations: [] })!;
    expect(p.replicas).toBe(3);
    expect(p.scaled).toBe(false);
    expect(p.event).toBeUndefined();
    expect(p.status).toMatchObject({ currentParallelism: 3, lastDecision: 'Hold', reason: 'no observation of the job yet' });
  });

  it('starts a new job at spec.parallelism within the bounds', () => {
    expect(plan({ job: job({ minParallelism: 3 }), deployment: undefined })!.replicas).toBe(3);
    expect(plan({ job: job({}, { parallelism: 12 }), deployment: undefined, partitions: 6 })!.replicas).toBe(6);
  });

  it('only recommends in mode Recommend: the spec decides, the Event says what it would do, once', () => {
    const j = job({ mode: 'Recommend' });
    const obs = observations(2, 60, 5000, 1000, 1, 50_000);
    const p = plan({ job: j, observations: obs })!;
    expect(p.replicas).toBeUndefined();
    expect(p.scaled).toBe(false);
    expect(p.status).toMatchObject({ mode: 'Recommend', currentParallelism: 2, recommendedParallelism: 7, lastDecision: 'ScaleUp' });
    expect(p.status.lastScaleTime).toBeUndefined();
    expect(p.event).toMatchObject({ reason: 'AutoscaleRecommended', message: expect.stringMatching(/^Would scale churn from 2 to 7 workers: input 5k\/s/) as unknown });
    expect(p.condition).toMatchObject({ status: 'True', reason: 'Recommending' });
    expect(plan({ job: { ...j, status: { autoscaling: p.status } }, observations: obs })!.event).toBeUndefined();
  });

  it('stops acting while an HPA or a KEDA ScaledObject also scales the job, and says which', () => {
    const obs = observations(2, 60, 38_000, 11_000, 1, 3_420_000);
    const p = plan({ job: job({}), observations: obs, autoscalers: [hpa('keda-hpa-churn', 'ProcessingJob', 'churn', { 'scaledobject.keda.sh/name': 'churn' })] })!;
    expect(p.replicas).toBeUndefined();
    expect(p.scaled).toBe(false);
    expect(p.decision.action).toBe('Hold');
    expect(p.condition).toMatchObject({ status: 'False', reason: 'OtherAutoscaler' });
    expect(p.condition.message).toMatch(/^KEDA ScaledObject churn \(through HorizontalPodAutoscaler keda-hpa-churn\) also scales this job: Sluice does not change/);
    expect(p.status.reason).toMatch(/so Sluice does not act; it would: scaling up from 2 to 6/);
  });

  it('tells an HPA on the worker Deployment from one on something else', () => {
    const j = job({});
    expect(otherAutoscaler(j, [hpa('web', 'Deployment', 'web'), hpa('other', 'ProcessingJob', 'cart')])).toBeUndefined();
    expect(otherAutoscaler(j, [hpa('w', 'Deployment', 'churn-worker')])).toBe('HorizontalPodAutoscaler w also scales Deployment churn-worker');
  });

  it('reports a suspended job as not sized', () => {
    const p = plan({ job: job({ minParallelism: 0 }, { suspend: true }) })!;
    expect(p.replicas).toBeUndefined();
    expect(p.condition).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(p.status.currentParallelism).toBe(0);
  });

  it('rewrites moving figures at most every 30 s when the decision is the same', () => {
    const obs = observations(4, 60, 3000, 750, 0.75);
    const first = plan({ job: job({}), deployment: deployment(4), observations: obs })!;
    expect(first.status.lastDecision).toBe('Steady');
    const moved = observations(4, 65, 3100, 775, 0.775);
    const again = plan({ job: job({}, {}, first.status), deployment: deployment(4), observations: moved, figuresAgeMs: 10_000 })!;
    expect(again.figuresRefreshed).toBe(false);
    expect(again.status).toEqual(first.status);
    const later = plan({ job: job({}, {}, first.status), deployment: deployment(4), observations: moved, figuresAgeMs: FIGURES_REFRESH_MS })!;
    expect(later.figuresRefreshed).toBe(true);
    expect(later.status.inputRate).toBe(3100);
  });
});
