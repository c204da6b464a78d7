import { Command, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { runOperator } from './main.js';
import { defaultOptions, type OperatorOptions } from './options.js';

interface Flags {
  kubeconfig?: string;
  namespaces?: string;
  leaderElect: boolean;
  leaderElectionId: string;
  leaderElectionNamespace: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  workerImage: string;
  logLevel: LevelWithSilent;
  concurrency: string;
  lagCheckInterval: string;
  workerHealthInterval?: string;
  autoscaleInterval: string;
}

export function flagsToOptions(flags: Flags): Partial<OperatorOptions> {
  return {
    kubeconfig: flags.kubeconfig,
    namespaces: flags.namespaces ? flags.namespaces.split(',').map((s) => s.trim()).filter(Boolean) : [],
    leaderElect: flags.leaderElect,
    leaseName: flags.leaderElectionId,
    leaseNamespace: flags.leaderElectionNamespace,
    metricsBindAddress: flags.metricsBindAddress,
    healthProbeBindAddress: flags.healthProbeBindAddress,
    workerImage: flags.workerImage,
    logLevel: flags.logLevel,
    concurrency: Number(flags.concurrency),
    lagCheckMs: Number(flags.lagCheckInterval) * 1000,
    workerHealthMs: flags.workerHealthInterval === undefined ? undefined : Number(flags.workerHealthInterval) * 1000,
    autoscaleIntervalMs: Number(flags.autoscaleInterval) * 1000,
  };
}

/** `sluice operator`: run the ProcessingJob operator until SIGTERM/SIGINT. */
export function operatorCommand(): Command {
  const d = defaultOptions();
  return new Command('operator')
    .description('Run the Sluice operator: reconcile ProcessingJobs into worker Deployments')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config)')
    .option('--namespaces <list>', 'comma-separated namespaces to watch (default: all)')
    .option('--no-leader-elect', 'run without leader election (only one replica may run)')
    .option('--leader-election-id <name>', 'name of the leader election Lease', d.leaseName)
    .option('--leader-election-namespace <ns>', 'namespace of the leader election Lease', process.env.POD_NAMESPACE ?? d.leaseNamespace)
    .option('--metrics-bind-address <addr>', 'address of the /metrics endpoint', d.metricsBindAddress)
    .option('--health-probe-bind-address <addr>', 'address of /healthz and /readyz', d.healthProbeBindAddress)
    .option('--worker-image <image>', 'worker image when a job names none', d.workerImage)
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(d.logLevel))
    .option('--concurrency <n>', 'reconciles running at once', String(d.concurrency))
    .option('--lag-check-interval <seconds>', 'how often each job\'s consumer lag is read from Kafka (0: never)', String(d.lagCheckMs / 1000))
    .option('--worker-health-interval <seconds>', 'how often each worker pod\'s /status is read for what it waits on (0: never)', String(d.workerHealthMs / 1000))
    .option('--autoscale-interval <seconds>', 'how often a job with spec.autoscaling is observed (Kafka end offsets, worker metrics)', String(d.autoscaleIntervalMs / 1000))
    .action(async (flags: Flags) => {
      const running = await runOperator(flagsToOptions(flags));
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`${signal}: shutting down\n`);
        running.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`shutdown failed: ${String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });
}
