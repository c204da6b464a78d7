import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { CliError } from '../errors.js';
import { readJobFile } from '../local/job-file.js';
import { localWorkerConfigs, type LocalOverrides } from '../local/job-config.js';
import { ensureStateDir, isAlive, livePids, readRunState, removeRunState, writeRunState, type RunState } from '../local/run-state.js';
import { LocalSupervisor, type LocalWorker } from '../local/supervisor.js';
import { brokerList, duration, hostPort, port, positiveInt } from '../options.js';
import { sluiceBin } from '../../lib/package-root.js';

export interface RunOptions {
  file: string;
  name?: string;
  parallelism?: number;
  bootstrapServers?: string[];
  redis?: { host: string; port: number };
  logsDir: string;
  checkpointDir: string;
  stateDir: string;
  metricsPort: number;
  stopTimeout: number;
  detach?: boolean;
}

export function runCommand(): Command {
  return new Command('run')
    .summary('Run a ProcessingJob YAML locally as worker processes (no cluster)')
    .description(
      'Run a ProcessingJob locally (no cluster): the same YAML as `kubectl apply`, as `parallelism` worker processes.\n' +
        'Logs go to <logs-dir>/<job>-<n>.log, checkpoints to <checkpoint-dir>/<job>/. Ctrl-C or `sluice stop` ends them.\n' +
        'Secrets are not read locally: give credentials as KAFKA_SASL_USERNAME/PASSWORD, REDIS_PASSWORD, SMTP_USERNAME/PASSWORD.\n' +
        'As in a pod, KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, REDIS_HOST, REDIS_PORT, CHURN_MODEL_PATH, CART_MODEL_PATH,\n' +
        'CART_ABANDON_THRESHOLD and ABANDON_WINDOW_MIN in the environment override the file.',
    )
    .requiredOption('-f, --file <job.yaml>', 'ProcessingJob YAML file')
    .option('--name <job>', 'which ProcessingJob, when the file holds several')
    .option('-p, --parallelism <n>', 'number of worker processes (default: spec.parallelism)', positiveInt('--parallelism'))
    .option('--bootstrap-servers <host:port,...>', 'Kafka brokers to use instead of spec.kafka.bootstrapServers', brokerList('--bootstrap-servers'))
    .option('--redis <host:port>', 'Redis to use instead of the spec\'s', hostPort('--redis'))
    .option('--logs-dir <dir>', 'where worker logs go', 'logs')
    .option('--checkpoint-dir <dir>', 'where checkpoints go (one sub-directory per job)', 'checkpoints')
    .option('--state-dir <dir>', 'where rendered worker configs and pid files go', '.sluice')
    .option('--metrics-port <port>', 'metrics port of worker 0; worker n listens on port + n', port('--metrics-port'), 9090)
    .addOption(
      new Option('--stop-timeout <duration>', 'how long workers get to write a final checkpoint on stop')
        .argParser(duration('--stop-timeout'))
        .default(30, '30s'),
    )
    .option('-d, --detach', 'start in the background and return; end with `sluice stop <job>`')
    .action(async (options: RunOptions) => {
      await (options.detach ? runDetached(options) : runForeground(options));
    });
}

function overridesFrom(options: RunOptions): LocalOverrides {
  return {
    parallelism: options.parallelism,
    bootstrapServers: options.bootstrapServers,
    redis: options.redis,
    checkpointRoot: resolve(options.checkpointDir),
    metricsPortBase: options.metricsPort,
  };
}

function refuseIfRunning(stateDir: string, job: string): void {
  const previous = readRunState(stateDir, job);
  if (!previous) return;
  const alive = livePids(previous);
  if (alive.length > 0) {
    throw new CliError(`job '${job}' is already running locally (pids ${alive.join(', ')}): run 'sluice stop ${job}' first`);
  }
  removeRunState(stateDir, job);
}

async function runForeground(options: RunOptions): Promise<void> {
  const job = readJobFile(options.file, options.name);
  const name = job.metadata.name;
  const stateDir = resolve(options.stateDir);
  refuseIfRunning(stateDir, name);
  const configs = localWorkerConfigs(job, overridesFrom(options));

  ensureStateDir(stateDir);
  const configDir = join(stateDir, name);
  mkdirSync(configDir, { recursive: true });
  const workers: LocalWorker[] = configs.map((config, index) => {
    const configFile = join(configDir, `worker-${index}.yaml`);
    writeFileSync(configFile, stringify(config));
    mkdirSync(config.checkpoint.dir, { recursive: true });
    return { index, configFile, logFile: resolve(options.logsDir, `${name}-${index}.log`), metricsPort: config.metrics.port };
  });

  const report = (line: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const state: RunState = {
    job: name,
    type: String(job.spec.type),
    supervisorPid: process.pid,
    workers: workers.map((w) => ({ index: w.index, pid: 0, logFile: w.logFile, metricsPort: w.metricsPort })),
    startedAt: new Date().toISOString(),
  };
  let rejected: LocalWorker | undefined;
  let stopRequested: (() => void) | undefined;
  const supervisor = new LocalSupervisor({
    bin: sluiceBin(),
    workers,
    env: process.env,
    stopTimeoutMs: options.stopTimeout * 1000,
    report,
    onPidsChanged: (pids) => {
      for (const w of state.workers) w.pid = pids.get(w.index) ?? 0;
      writeRunState(stateDir, state);
    },
    onConfigRejected: (worker) => {
      rejected ??= worker;
      stopRequested?.();
    },
  });
  supervisor.start();
  report(
    `started ${workers.length} ${state.type} worker(s) for job '${name}'; logs: ${workers.map((w) => w.logFile).join(', ')}`,
  );
  report(`stop with Ctrl-C or 'sluice stop ${name}'`);
  const readiness = watchReadiness(workers, report);

  await new Promise<void>((resolveStop) => {
    const onSignal = (sig: NodeJS.Signals | 'config'): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (sig !== 'config') report(`${sig}: stopping ${workers.length} worker(s) (final checkpoints)...`);
      resolveStop();
    };
    stopRequested = () => onSignal('config');
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  readiness.abort();
  await supervisor.stop();
  removeRunState(stateDir, name);
  if (rejected) {
    throw new CliError(`job '${name}' stopped: a worker refused its configuration: ${lastLine(rejected.logFile)}`, 2);
  }
  report(`job '${name}' stopped`);
}

/** The message of the last log line of a worker (pino JSON), or the raw line. */
function lastLine(logFile: string): string {
  let line = '';
  try {
    line = readFileSync(logFile, 'utf8').trim().split('\n').pop() ?? '';
    return (JSON.parse(line) as { msg?: string }).msg ?? line;
  } catch {
    return line || `see ${logFile}`;
  }
}

/** Prints once per worker when its /readyz answers 200: partitions assigned and restored. */
function watchReadiness(workers: LocalWorker[], report: (line: string) => void): AbortController {
  const controller = new AbortController();
  for (const w of workers) {
    void (async () => {
      const url = `http://127.0.0.1:${w.metricsPort}/readyz`;
      while (!controller.signal.aborted) {
        try {
          const res = await fetch(url, { signal: controller.signal });
          if (res.ok) {
            report(`worker ${w.index} ready (metrics: http://127.0.0.1:${w.metricsPort}/metrics)`);
            return;
          }
        } catch {
          // Not listening yet.
        }
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
  }
  return controller;
}

/** `--detach`: the same command in the foreground, as a background process whose output goes to a log. */
async function runDetached(options: RunOptions): Promise<void> {
  const job = readJobFile(options.file, options.name);
  const name = job.metadata.name;
  const stateDir = resolve(options.stateDir);
  refuseIfRunning(stateDir, name);
  const args = [
    sluiceBin(), 'run', '-f', resolve(options.file), '--name', name,
    '--logs-dir', resolve(options.logsDir), '--checkpoint-dir', resolve(options.checkpointDir),
    '--state-dir', stateDir, '--metrics-port', String(options.metricsPort), '--stop-timeout', `${options.stopTimeout}s`,
  ];
  if (options.parallelism) args.push('--parallelism', String(options.parallelism));
  if (options.bootstrapServers) args.push('--bootstrap-servers', options.bootstrapServers.join(','));
  if (options.redis) args.push('--redis', `${options.redis.host}:${options.redis.port}`);

  mkdirSync(resolve(options.logsDir), { recursive: true });
  const logFile = resolve(options.logsDir, `${name}-supervisor.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env: process.env });
  closeSync(log);
  child.unref();
  const pid = child.pid ?? 0;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const state = readRunState(stateDir, name);
    if (state?.supervisorPid === pid && state.workers.every((w) => w.pid > 0)) {
      process.stdout.write(
        `job '${name}' running in the background (supervisor pid ${pid}, ${state.workers.length} worker(s)); ` +
          `logs in ${options.logsDir}/; stop with 'sluice stop ${name}'\n`,
      );
      return;
    }
    if (!isAlive(pid)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join('\n');
  throw new CliError(`job '${name}' did not start in the background; last lines of ${logFile}:\n${tail}`);
}
