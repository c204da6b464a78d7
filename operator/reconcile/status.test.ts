import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import { bounded, conditionOf, deriveStatus, podProblem, stallProblem, statusChanged, type StatusInput } from './status.js';

const now = new Date('2026-11-24T12:00:00Z');
const deployment = (replicas: number, ready: number, generation = 1, observed = 1): V1Deployment => ({
  metadata: { generation },
  status: { observedGeneration: observed, replicas, readyReplicas: ready, updatedReplicas: replicas },
});
const pod = (name: string, status: V1Pod['status'], created = '2026-11-24T11:59:00Z'): V1Pod => ({
  metadata: { name, creationTimestamp: new Date(created) },
  status,
});
const input = (over: Partial<StatusInput> = {}): StatusInput => ({
  job: defaultedJob('churn', 'shop', { ...minimalSpec(), parallelism: 2 }),
  paused: false,
  validation: { state: 'valid' },
  deployment: deployment(2, 2),
  pods: [],
  desiredReplicas: 2,
  selector: 'app.kubernetes.io/instance=churn,app.kubernetes.io/name=sluice-worker',
  now,
  ...over,
});

describe('deriveStatus', () => {
  it('is Ready and Running when every worker is ready', () => {
    const s = deriveStatus(input());
    expect(s.phase).toBe('Running');
    expect(s.readyReplicas).toBe(2);
    expect(s.observedGeneration).toBe(1);
    expect(conditionOf(s, 'Ready')).toMatchObject({ status: 'True', reason: 'WorkersReady', message: '2/2 workers ready' });
    expect(conditionOf(s, 'Degraded')!.status).toBe('False');
  });

  it('is Pending and Progressing while workers start', () => {
    const s = deriveStatus(input({ deployment: deployment(2, 1) }));
    expect(s.phase).toBe('Pending');
    expect(conditionOf(s, 'Ready')!.status).toBe('False');
    expect(conditionOf(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'RollingOut' });
  });

  it('reports a crash-looping worker as Degraded with the reason, not a stuck phase', () => {
    const crashing = pod('churn-worker-1', {
      phase: 'Running',
      containerStatuses: [{ name: 'worker', ready: false, restartCount: 5, image: 'x', imageID: '', state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 5m0s' } } }],
    });
    const s = deriveStatus(input({ deployment: deployment(2, 1), pods: [crashing] }));
    expect(s.phase).toBe('Degraded');
    expect(conditionOf(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'CrashLoopBackOff' });
    expect(conditionOf(s, 'Degraded')!.message).toContain('churn-worker-1');
    expect(conditionOf(s, 'Ready')!.reason).toBe('CrashLoopBackOff');
  });

  it('reports a pod Pending past spec.podPendingTimeoutSeconds', () => {
    const pending = pod('p', { phase: 'Pending' }, '2026-11-24T11:50:00Z');
    expect(podProblem([pending], 300, now)!.reason).toBe('PodPendingTooLong');
    expect(podProblem([pending], 3600, now)).toBeUndefined();
  });

  it('reports an invalid spec in ConfigValid, Degraded and Ready', () => {
    const s = deriveStatus(input({ validation: { state: 'invalid', reason: 'SecretNotFound', message: 'Secret shop/x not found' } }));
    expect(conditionOf(s, 'ConfigValid')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(conditionOf(s, 'Degraded')!.reason).toBe('SecretNotFound');
    expect(s.phase).toBe('Degraded');
  });

  it('keeps ConfigValid Unknown when Kafka cannot be reached, without degrading', () => {
    const s = deriveStatus(input({ validation: { state: 'unknown', reason: 'KafkaUnreachable', message: 'cannot reach' } }));
    expect(conditionOf(s, 'ConfigValid')).toMatchObject({ status: 'Unknown', reason: 'KafkaUnreachable' });
    expect(s.phase).toBe('Running');
  });

  it('is Suspended when suspended', () => {
    const job = defaultedJob('churn', 'shop', { ...minimalSpec(), suspend: true });
    const s = deriveStatus(input({ job, desiredReplicas: 0, deployment: deployment(0, 0) }));
    expect(s.phase).toBe('Suspended');
    expect(conditionOf(s, 'Ready')!.reason).toBe('Suspended');
  });

  it('keeps the transition time of a condition whose status did not change, so a resync writes nothing', () => {
    const first = deriveStatus(input());
    const job = { ...input().job, status: first };
    const again = deriveStatus(input({ job, now: new Date('2026-11-24T12:05:00Z') }));
    expect(statusChanged(first, again)).toBe(false);
    const worse = deriveStatus(input({ job, deployment: deployment(2, 1), now: new Date('2026-11-24T12:05:00Z') }));
    expect(conditionOf(worse, 'Ready')!.lastTransitionTime).toBe('2026-11-24T12:05:00Z');
    expect(statusChanged(first, worse)).toBe(true);
  });

  it('bounds messages', () => {
    expect(bounded('x'.repeat(5000))).toHaveLength(1024);
  });
});

describe('worker reasons from termination messages', () => {
  it('names state a worker refused, with what to do, instead of a bare crash loop', () => {
    const pod = {
      metadata: { name: 'churn-worker-1' },
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'worker',
            ready: false,
            restartCount: 3,
            image: 'sluice',
            imageID: '',
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } },
            lastState: { terminated: { exitCode: 3, message: 'StateIncompatible: the checkpoint of partition 2 cannot be used: ... To go on: restore a snapshot' } },
          },
        ],
      },
    };
    expect(podProblem([pod as never], 300, new Date())).toEqual({
      reason: 'StateIncompatible',
      message: 'pod churn-worker-1: the checkpoint of partition 2 cannot be used: ... To go on: restore a snapshot',
    });
  });
});

describe('a worker that waits on a dependency', () => {
  it('is a Degraded reason of its own, naming the pods and what they wait for', () => {
    expect(stallProblem([])).toBeUndefined();
    expect(stallProblem([{ pod: 'cart-worker-a', on: 'smtp', reason: 'SmtpUnreachable', message: 'connect ECONNREFUSED 10.0.0.9:587', since: '2026-12-01T10:00:00.123Z' }])).toEqual({
      reason: 'SmtpUnreachable',
      message: 'worker pod cart-worker-a waits for the SMTP server since 2026-12-01T10:00:00Z: connect ECONNREFUSED 10.0.0.9:587; consumption is paused, nothing is lost',
    });
    expect(stallProblem([{ pod: 'a', on: 'redis', reason: 'RedisUnreachable', message: 'm' }, { pod: 'b', on: 'redis', reason: 'RedisUnreachable', message: 'm' }])!.message).toMatch(/^worker pods a, b wait for Redis: m;/);
  });
});
