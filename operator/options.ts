import { hostname } from 'node:os';
import type { LevelWithSilent } from 'pino';
import { defaultLeaseTimings } from './leader.js';

/** The operator's configuration, validated once at start (see command.ts for the flags). */
export interface OperatorOptions {
  /** Path of a kubeconfig; absent means in-cluster or $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Namespaces to watch; empty means all. */
  namespaces: string[];
  leaderElect: boolean;
  leaseName: string;
  leaseNamespace: string;
  /** Unique per replica; default hostname + pid. */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  workerImage: string;
  logLevel: LevelWithSilent;
  concurrency: number;
  /** Full relist and resync of every job. */
  resyncMs: number;
  /** How often each job's consumer lag is read from Kafka; 0 turns it off. */
  lagCheckMs: number;
  /** How often each running worker pod's /status is read for stalls (Redis, SMTP, Kafka, DLQ); 0 turns it off. */
  workerHealthMs: number;
  /** How often an autoscaled job is observed (Kafka end offsets, worker /metrics). */
  autoscaleIntervalMs: number;
}

export const defaultOptions = (): OperatorOptions => ({
  namespaces: [],
  leaderElect: true,
  leaseName: 'sluice-operator-leader',
  leaseNamespace: 'sluice-system',
  identity: `${hostname()}-${process.pid}`,
  ...defaultLeaseTimings,
  metricsBindAddress: ':8080',
  healthProbeBindAddress: ':8081',
  workerImage: 'sluice:latest',
  logLevel: 'info',
  concurrency: 4,
  resyncMs: 10 * 60_000,
  lagCheckMs: 60_000,
  workerHealthMs: 15_000,
  autoscaleIntervalMs: 10_000,
});

const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const levels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Fills defaults and refuses what cannot work, naming the flag. */
/** The background intervals: a number of seconds each, 0 turning off those that may be off. */
function checkIntervals(o: OperatorOptions): void {
  const atLeast: Array<[string, number, number]> = [
    ['--lag-check-interval', o.lagCheckMs, 0],
    ['--worker-health-interval', o.workerHealthMs, 0],
    ['--autoscale-interval', o.autoscaleIntervalMs, 1000],
  ];
  for (const [flag, ms, min] of atLeast) {
    if (!Number.isFinite(ms) || ms < min) throw new Error(`${flag} must be a number of seconds >= ${min / 1000}`);
  }
}

export function resolveOptions(input: Partial<OperatorOptions>): OperatorOptions {
  const o: OperatorOptions = { ...defaultOptions(), ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) };
  for (const ns of o.namespaces) if (!dns1123.test(ns)) throw new Error(`--namespaces: '${ns}' is not a valid namespace name`);
  if (!dns1123.test(o.leaseNamespace)) throw new Error(`--leader-election-namespace: '${o.leaseNamespace}' is not a valid namespace name`);
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.leaseName)) throw new Error(`--leader-election-id: '${o.leaseName}' is not a valid Lease name`);
  if (!o.workerImage) throw new Error('--worker-image must name the worker image');
  if (!levels.has(o.logLevel)) throw new Error(`--log-level: '${o.logLevel}' is not one of ${[...levels].join(', ')}`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new Error('--concurrency must be a positive integer');
  checkIntervals(o);
  if (!(o.renewDeadlineMs < o.leaseDurationMs && o.retryPeriodMs < o.renewDeadlineMs)) {
    throw new Error('lease timings: need retry period < renew deadline < lease duration');
  }
  return o;
}
