import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The operator's Prometheus metrics, in a registry of their own (no global state between tests). */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'sluice_operator_reconcile_total',
    help: 'Reconciles of ProcessingJobs by result (success, error, terminal: not retried).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'sluice_operator_reconcile_duration_seconds',
    help: 'Time of one reconcile.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'sluice_operator_workqueue_depth', help: 'Keys waiting in the work queue.', registers: [this.registry] });
  readonly leader = new Gauge({ name: 'sluice_operator_leader', help: '1 when this replica holds the leader lease.', registers: [this.registry] });
  readonly jobs = new Gauge({
    name: 'sluice_operator_processingjobs',
    help: 'ProcessingJobs seen by this replica, by phase.',
    labelNames: ['phase'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
