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

  /** Per autoscaled job (namespace, job): what status.autoscaling shows, unrounded. */
  readonly autoscaling = {
    current: new Gauge({ name: 'sluice_operator_autoscaling_current_workers', help: 'Workers an autoscaled job runs.', labelNames: ['namespace', 'job'] as const, registers: [this.registry] }),
    recommended: new Gauge({ name: 'sluice_operator_autoscaling_recommended_workers', help: 'Workers the autoscaler calls for.', labelNames: ['namespace', 'job'] as const, registers: [this.registry] }),
    inputRate: new Gauge({ name: 'sluice_operator_autoscaling_input_events_per_second', help: "Events per second arriving on the job's topic (growth of its end offsets).", labelNames: ['namespace', 'job'] as const, registers: [this.registry] }),
    ratePerWorker: new Gauge({ name: 'sluice_operator_autoscaling_worker_events_per_busy_second', help: 'True processing rate of one worker: events per second of busy time.', labelNames: ['namespace', 'job'] as const, registers: [this.registry] }),
    lag: new Gauge({ name: 'sluice_operator_autoscaling_lag_events', help: "Events between the end of the topic and the workers' positions.", labelNames: ['namespace', 'job'] as const, registers: [this.registry] }),
    lagSeconds: new Gauge({ name: 'sluice_operator_autoscaling_lag_seconds', help: 'Seconds of input the lag holds.', labelNames: ['namespace', 'job'] as const, registers: [this.registry] }),
    scales: new Counter({ name: 'sluice_operator_autoscaling_scales_total', help: 'Changes of the number of workers made by the autoscaler, by direction (up, down).', labelNames: ['namespace', 'job', 'direction'] as const, registers: [this.registry] }),
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
