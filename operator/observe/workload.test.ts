import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import type { Observation } from '../autoscaling/decide.js';
import { parseSeries, total } from './prometheus-text.js';
import { lagOf, rollingOut, WorkloadObserver } from './workload.js';

const pod = (name: string, ip: string, ready = true): V1Pod => ({
  metadata: { name },
  spec: { containers: [{ name: 'worker', ports: [{ name: 'metrics', containerPort: 9090 }] }] },
  status: { podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

const deployment = (replicas: number, updated = replicas, generation = 2, observed = 2): V1Deployment => ({
  metadata: { generation },
  spec: { replicas, selector: {}, template: {} },
  status: { observedGeneration: observed, replicas, updatedReplicas: updated, readyReplicas: replicas },
});

const metrics = (processed: number, busy: number, positions: Record<number, number>): string =>
  [
    '# HELP sluice_events_in_total Records read',
    '# TYPE sluice_events_in_total counter',
    `sluice_events_in_total{job="churn",type="churn"} ${processed}`,
    `sluice_busy_seconds_total{job="churn",type="churn"} ${busy}`,
    ...Object.entries(positions).map(([p, o]) => `sluice_consumer_position{job="churn",type="churn",partition="${p}"} ${o}`),
    'sluice_consumer_lag_other 5',
  ].join('\n');

describe('the Prometheus text of a worker', () => {
  it('reads each series of the metrics asked for, with its labels', () => {
    const s = parseSeries(metrics(1200, 4.5, { 0: 10, 1: 20 }), new Set(['sluice_events_in_total', 'sluice_consumer_position']));
    expect(total(s, 'sluice_events_in_total')).toBe(1200);
    expect(s.get('sluice_consumer_position')!.map((x) => [x.labels.partition, x.value])).toEqual([['0', 10], ['1', 20]]);
    expect(total(s, 'sluice_busy_seconds_total')).toBeUndefined();
  });
});

describe('lag from the end offsets and the owners’ positions', () => {
  it('subtracts each position from its end offset', () => {
    expect(lagOf(new Map([[0, 100], [1, 50]]), new Map([[0, { position: 90 }], [1, { position: 50 }]]))).toBe(10);
  });

  it('uses the owner’s own lag without a position, counts an empty partition as 0, and gives up on an unowned one', () => {
    expect(lagOf(new Map([[0, 100], [1, 0]]), new Map([[0, { lag: 7 }]]))).toBe(7);
    expect(lagOf(new Map([[0, 100], [1, 30]]), new Map([[0, { position: 100 }]]))).toBeUndefined();
  });
});

describe('rollingOut', () => {
  it('is true while the Deployment moves to a new template or has pods of another revision', () => {
    expect(rollingOut(deployment(3))).toBe(false);
    expect(rollingOut(deployment(3, 2))).toBe(true);
    expect(rollingOut(deployment(3, 3, 3, 2))).toBe(true);
    expect(rollingOut(undefined)).toBe(true);
  });
});

describe('WorkloadObserver', () => {
  it('looks at the job in the background: end offsets, each ready pod’s counters and positions, readiness', async () => {
    const job = defaultedJob('churn', 'shop', { ...minimalSpec(), autoscaling: { enabled: true } as never });
    const pods = [pod('churn-worker-a', '10.0.0.1'), pod('churn-worker-b', '10.0.0.2'), pod('churn-worker-c', '10.0.0.3', false)];
    const pages: Record<string, string> = {
      'http://10.0.0.1:9090/metrics': metrics(500, 2, { 0: 95, 1: 40 }),
      'http://10.0.0.2:9090/metrics': metrics(300, 1, { 2: 70 }),
    };
    const requeued: string[] = [];
    const observer = new WorkloadObserver(
      {
        pods: () => pods,
        deployment: () => deployment(3),
        autoscalers: async () => [],
        fetchText: async (url) => {
          if (!pages[url]) throw new Error('connection refused');
          return pages[url]!;
        },
        endOffsets: async () => new Map([[0, 100], [1, 40], [2, 80]]),
      },
      (key) => requeued.push(key),
      pino({ level: 'silent' }),
      50,
    );
    try {
      observer.window(job, new Map());
      let window: readonly Observation[] = [];
      for (let i = 0; i < 100 && window.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        window = observer.window(job, new Map());
      }
      const o = window[0]!;
      expect(o).toMatchObject({ endOffsets: 220, lag: 15, replicas: 3, rollingOut: false });
      expect(o.workers).toEqual([
        { pod: 'churn-worker-a', ready: true, processed: 500, busySeconds: 2 },
        { pod: 'churn-worker-b', ready: true, processed: 300, busySeconds: 1 },
        { pod: 'churn-worker-c', ready: false },
      ]);
      expect(requeued[0]).toBe('shop/churn');
    } finally {
      observer.stop();
    }
  });
});
