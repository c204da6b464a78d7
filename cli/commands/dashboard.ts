import { Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { startDashboard } from '../dashboard/server.js';
import { duration, port } from '../options.js';
import { clusterOptions, jobSource } from './status.js';

interface DashboardCommandOptions {
  stateDir: string;
  kubeconfig?: string;
  namespace?: string;
  allNamespaces?: boolean;
  host: string;
  port: number;
  interval: number;
}

export function dashboardCommand(): Command {
  return clusterOptions(
    new Command('dashboard')
      .summary('A web page of the running jobs on http://127.0.0.1:8081/ (the successor of the Flink Web UI)')
      .description(
        'Serves a page on loopback with the jobs `sluice run` started (or, with --kubeconfig/--namespace/-A, the\n' +
          "ProcessingJobs of a cluster): workers, live charts of events/s and lag, partitions with their owner and\n" +
          'checkpoint age, dead-letter reasons, recent cart alerts and the riskiest users (read from the job\'s Redis\n' +
          'and dead-letter topic, for local jobs). Open the printed address in a browser; Ctrl-C stops it.',
      ),
  )
    .option('--host <address>', 'interface to listen on (loopback: only this machine can open it)', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free one)', port('--port'), 8081)
    .addOption(new Option('--interval <duration>', 'how often the jobs are sampled').argParser(duration('--interval')).default(2, '2s'))
    .action(async (options: DashboardCommandOptions) => {
      const source = jobSource(options);
      let dashboard;
      try {
        dashboard = await startDashboard({
          host: options.host,
          port: options.port,
          collect: source.collect,
          describe: source.describe,
          intervalMs: options.interval * 1000,
          extras: !source.cluster,
        });
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      process.stdout.write(`dashboard of ${source.describe}: ${dashboard.url}  (Ctrl-C stops it)\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await dashboard.close();
    });
}
