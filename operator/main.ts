import type { V1Pod } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { Controller } from './processingjob/controller.js';
import { metricsRoute, probeRoutes, serve, type HttpEndpoint } from '../lib/http/server.js';
import { Kube, loadKubeConfig } from './kube/client.js';
import { LeaderElector } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { resolveOptions, type OperatorOptions } from './options.js';
import type { PartitionCounter } from './observe/partitions.js';

export interface RunningOperator {
  stop(): Promise<void>;
  /** host:port of /metrics and of /healthz + /readyz (useful with port 0). */
  metricsAddress: string;
  healthAddress: string;
  isLeader(): boolean;
}

export interface RunHooks {
  logger?: Logger;
  /** Replaces the Kafka partition check (benchmarks without a broker). */
  partitionCounter?: PartitionCounter;
  /** Where a worker pod's /status is (default: its pod IP, port 9090); tests point it at workers on this machine. */
  workerStatusUrl?: (pod: V1Pod) => string | undefined;
  /** Where a worker pod serves /metrics, for tests whose workers are local processes behind KWOK pods. */
  workerMetricsUrl?: (pod: V1Pod) => string | undefined;
}

/**
 * Starts the operator: metrics and health servers at once, then the controller
 * when this replica leads (at once without leader election). Losing the lease
 * stops the controller and the replica campaigns again.
 */
export async function runOperator(input: Partial<OperatorOptions>, hooks: RunHooks = {}): Promise<RunningOperator> {
  const options = resolveOptions(input);
  const log = hooks.logger ?? pino({ level: options.logLevel, base: { component: 'sluice-operator' } });
  const kube = new Kube(loadKubeConfig(options.kubeconfig));
  const metrics = new OperatorMetrics();
  let controller: Controller | undefined;
  let transition: Promise<void> = Promise.resolve();
  let candidate = !options.leaderElect;

  const lead = (): Promise<void> =>
    (transition = transition.then(async () => {
      metrics.leader.set(1);
      controller = new Controller(
        kube,
        { namespaces: options.namespaces, workerImage: options.workerImage, concurrency: options.concurrency, relistMs: options.resyncMs, identity: options.identity, partitionCounter: hooks.partitionCounter, lagCheckMs: options.lagCheckMs, workerHealthMs: options.workerHealthMs, workerStatusUrl: hooks.workerStatusUrl, autoscaleIntervalMs: options.autoscaleIntervalMs, workerMetricsUrl: hooks.workerMetricsUrl },
        log,
        metrics,
      );
      await controller.start();
    }));
  const follow = (): Promise<void> =>
    (transition = transition.then(async () => {
      metrics.leader.set(0);
      const c = controller;
      controller = undefined;
      await c?.stop();
    }));

  const metricsServer: HttpEndpoint = await serve(options.metricsBindAddress, { '/metrics': metricsRoute(metrics.registry) });
  // A standby is ready (it can take over); a leader once its caches are synced.
  const health: HttpEndpoint = await serve(
    options.healthProbeBindAddress,
    probeRoutes(() => {
      const ready = controller ? controller.synced : candidate;
      return { ready, detail: ready ? 'ok' : 'caches not synced' };
    }),
  );

  let elector: LeaderElector | undefined;
  if (options.leaderElect) {
    elector = new LeaderElector(
      kube,
      { namespace: options.leaseNamespace, name: options.leaseName, identity: options.identity, leaseDurationMs: options.leaseDurationMs, renewDeadlineMs: options.renewDeadlineMs, retryPeriodMs: options.retryPeriodMs },
      { onStartedLeading: () => void lead().catch((err: unknown) => log.error({ err }, 'controller failed to start')), onStoppedLeading: () => follow() },
      log,
    );
    candidate = true;
    elector.start();
  } else {
    void lead().catch((err: unknown) => log.error({ err }, 'controller failed to start'));
  }
  log.info({ metrics: metricsServer.address, health: health.address, leaderElect: options.leaderElect, identity: options.identity }, 'sluice operator started');

  return {
    metricsAddress: metricsServer.address,
    healthAddress: health.address,
    isLeader: () => (elector ? elector.isLeader : true),
    async stop() {
      log.info('stopping');
      if (elector) await elector.stop();
      else await follow();
      await transition;
      await Promise.all([metricsServer.close(), health.close()]);
      log.info('stopped');
    },
  };
}
