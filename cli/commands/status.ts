import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { loadKubeConfig } from '../../operator/kube/client.js';
import { CliError } from '../errors.js';
import { duration } from '../options.js';
import { collectCluster } from '../status/cluster.js';
import { collectLocal } from '../status/local.js';
import { RateTracker, type JobView } from '../status/model.js';
import { renderStatus } from '../status/render.js';

export interface StatusOptions {
  stateDir: string;
  kubeconfig?: string;
  namespace?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  interval: number;
  output: 'table' | 'json';
}

/** Where the jobs come from: the local run state, or a cluster when --kubeconfig / --namespace / -A say so. */
export function jobSource(options: Pick<StatusOptions, 'stateDir' | 'kubeconfig' | 'namespace' | 'allNamespaces'>): {
  cluster: boolean;
  collect: (rates: RateTracker) => Promise<JobView[]>;
  describe: string;
} {
  if (options.kubeconfig || options.namespace || options.allNamespaces) {
    const config = loadKubeConfig(options.kubeconfig);
    const namespace = options.allNamespaces ? undefined : (options.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default');
    return {
      cluster: true,
      collect: (rates) => collectCluster({ config, namespace }, rates),
      describe: namespace ? `ProcessingJobs in namespace ${namespace}` : 'ProcessingJobs in any namespace',
    };
  }
  const stateDir = resolve(options.stateDir);
  return { cluster: false, collect: (rates) => collectLocal(stateDir, rates), describe: `local jobs (${stateDir})` };
}

export function clusterOptions(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'where `sluice run` keeps its state', '.sluice')
    .option('--kubeconfig <file>', 'show the ProcessingJobs of a cluster instead of local jobs')
    .option('-n, --namespace <ns>', 'namespace of the ProcessingJobs (implies a cluster; default: the context\'s)')
    .option('-A, --all-namespaces', 'ProcessingJobs of every namespace (implies a cluster)');
}

export function statusCommand(): Command {
  return clusterOptions(
    new Command('status')
      .summary('Show local jobs (or a cluster\'s ProcessingJobs): workers, events/s, lag, checkpoints, DLQ, alerts, errors')
      .description(
        'Shows the jobs `sluice run` started (or, with --kubeconfig/--namespace/-A, the ProcessingJobs of a cluster):\n' +
          'each job with its workers and their state, events/s, lag per partition, last checkpoint, dead letters,\n' +
          'alerts, what a worker is stalled on (Redis, SMTP, Kafka, the DLQ) and its last error.\n' +
          'Events/s needs two looks: the first is taken, then another after --interval.',
      ),
  )
    .option('-w, --watch', 'redraw every --interval until Ctrl-C')
    .addOption(new Option('--interval <duration>', 'time between two looks').argParser(duration('--interval')).default(2, '2s'))
    .addOption(new Option('-o, --output <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action(async (options: StatusOptions) => {
      const source = jobSource(options);
      const rates = new RateTracker();
      const look = async (): Promise<JobView[]> => {
        try {
          return await source.collect(rates);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      };
      const print = (jobs: JobView[]): string => {
        if (options.output === 'json') return `${JSON.stringify({ at: new Date().toISOString(), jobs }, null, 2)}\n`;
        if (jobs.length === 0) return `no ${source.describe} running${source.cluster ? '' : ": start some with 'sluice run -f JOB.yaml'"}\n`;
        return renderStatus(jobs, Date.now());
      };
      const sleep = (): Promise<void> => new Promise((r) => setTimeout(r, options.interval * 1000));
      let jobs = await look();
      if (jobs.length > 0) {
        // A second look gives rates.
        await sleep();
        jobs = await look();
      }
      if (!options.watch) {
        process.stdout.write(print(jobs));
        return;
      }
      const tty = process.stdout.isTTY;
      let stop = false;
      const onSignal = (): void => void (stop = true);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      while (!stop) {
        const text = print(jobs);
        // On a terminal, redraw in place; otherwise one block per look (for logs and pipes).
        process.stdout.write(tty ? `\x1b[H\x1b[2J${new Date().toISOString().slice(11, 19)}  ${source.describe}\n\n${text}` : `--- ${new Date().toISOString()}\n${text}`);
        await sleep();
        if (stop) break;
        jobs = await look();
      }
    });
}
