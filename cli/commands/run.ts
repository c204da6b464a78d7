import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { layeredEnv, readDotEnv } from '../local/dotenv.js';
import { readJobs } from '../local/job-file.js';
import { localWorkerConfigs, type LocalOverrides } from '../local/job-config.js';
import { LocalRun, type PlannedJob } from '../local/local-run.js';
import { PortAllocator } from '../local/ports.js';
import { isAlive, listRunStates, livePids, readRunState, removeRunState, type RunState } from '../local/run-state.js';
import { brokerList, duration, hostPort, port, positiveInt } from '../options.js';
import { sluiceBin } from '../../lib/package-root.js';
import { workerVariables } from '../../workers/config.js';

export interface RunOptions {
  file: string[];
  name?: string[];
  parallelism?: number;
  bootstrapServers?: string[];
  redis?: { host: string; port: number };
  smtp?: { host: string; port: number };
  consumerGroup?: string;
  keyPrefix?: string;
  envFile: string | false;
  logsDir: string;
  checkpointDir: string;
  stateDir: string;
  metricsPort: number;
  stopTimeout: number;
  detach?: boolean;
  wait: number;
}

const DEFAULT_ENV_FILE = '.env';

export function runCommand(): Command {
  return new Command('run')
    .summary('Run ProcessingJob YAMLs locally as worker processes (no cluster)')
    .description(
      'Run ProcessingJobs locally (no cluster): the same YAML as `kubectl apply`, each as `parallelism` worker processes.\n' +
        'Several -f files, a file with several jobs, or a folder of YAML files start all their jobs at once.\n' +
        'Each worker gets a free metrics port from --metrics-port upward, shown at start and in `sluice status`.\n' +
        'Logs go to <logs-dir>/<job>-<n>.log, checkpoints to <checkpoint-dir>/<job>/. Ctrl-C or `sluice stop` ends them.\n' +
        'Settings, highest precedence first: flags, then the environment, then the .env file, then the job file.\n' +
        `Variables (as in a pod): ${workerVariables().join(', ')};\n` +
        'credentials (Secrets are not read locally): KAFKA_SASL_USERNAME/PASSWORD, REDIS_PASSWORD, SMTP_USERNAME/PASSWORD.',
    )
    .requiredOption('-f, --file <path...>', 'ProcessingJob YAML files or folders (repeatable)')
    .option('--name <job...>', 'run only these jobs of the files')
    .option('-p, --parallelism <n>', 'number of worker processes of each job (default: spec.parallelism)', positiveInt('--parallelism'))
    .option('--bootstrap-servers <host:port,...>', 'Kafka brokers (KAFKA_BOOTSTRAP_SERVERS) instead of spec.kafka.bootstrapServers', brokerList('--bootstrap-servers'))
    .option('--redis <host:port>', "Redis (REDIS_HOST, REDIS_PORT) instead of the spec's", hostPort('--redis'))
    .option('--smtp <host:port>', 'SMTP server of jobs with spec.alerts instead of spec.alerts.smtp', hostPort('--smtp'))
    .option('--consumer-group <group>', 'consumer group instead of spec.kafka.consumerGroup (one job only)')
    .option('--key-prefix <prefix>', 'Redis key prefix instead of spec.redis.keyPrefix')
    .option('--env-file <file>', 'variables to read before the environment', DEFAULT_ENV_FILE)
    .option('--no-env-file', 'read no .env file')
    .option('--logs-dir <dir>', 'where worker logs go', 'logs')
    .option('--checkpoint-dir <dir>', 'where checkpoints go (one sub-directory per job)', 'checkpoints')
    .option('--state-dir <dir>', 'where rendered worker configs and pid files go', '.sluice')
    .option('--metrics-port <port>', 'first metrics port to try; each worker takes the next free one', port('--metrics-port'), 9090)
    .addOption(
      new Option('--stop-timeout <duration>', 'how long workers get to write a final checkpoint on stop')
        .argParser(duration('--stop-timeout'))
        .default(30, '30s'),
    )
    .option('-d, --detach', 'start in the background and return once the workers are ready; end with `sluice stop`')
    .addOption(
      new Option('--wait <duration>', 'with --detach: how long to wait for the workers to be ready')
        .argParser(duration('--wait'))
        .default(60, '60s'),
    )
    .action(async (options: RunOptions) => {
      await (options.detach ? runDetached(options) : runForeground(options));
    });
}

function refuseIfRunning(stateDir: string, job: string): void {
  const previous = readRunState(stateDir, job);
  if (!previous) return;
  // A job given up (a permanent refusal) only left its state for `sluice status`.
  const alive = livePids(previous);
  if (alive.length > 0) {
    throw new CliError(`job '${job}' is already running locally (pids ${alive.join(', ')}): run 'sluice stop ${job}' first`);
  }
  removeRunState(stateDir, job);
}

/** The environment of the workers: .env, then the real environment, then the flags that have a variable. */
function workerEnv(options: RunOptions): NodeJS.ProcessEnv {
  const dotenv = options.envFile === false ? {} : readDotEnv(resolve(options.envFile), options.envFile !== DEFAULT_ENV_FILE);
  return layeredEnv(dotenv, process.env, {
    KAFKA_BOOTSTRAP_SERVERS: options.bootstrapServers?.join(','),
    REDIS_HOST: options.redis?.host,
    REDIS_PORT: options.redis ? String(options.redis.port) : undefined,
    SMTP_HOST: options.smtp?.host,
    SMTP_PORT: options.smtp ? String(options.smtp.port) : undefined,
    KAFKA_CONSUMER_GROUP: options.consumerGroup,
    REDIS_KEY_PREFIX: options.keyPrefix,
  });
}

/** Ports that running local jobs (other supervisors) have recorded: never hand those out again. */
function reservedPorts(stateDir: string): Set<number> {
  const taken = new Set<number>();
  for (const state of listRunStates(stateDir)) {
    if (livePids(state).length === 0) continue;
    for (const w of state.workers) taken.add(w.metricsPort);
  }
  return taken;
}

async function plan(options: RunOptions, env: NodeJS.ProcessEnv, ports: PortAllocator): Promise<PlannedJob[]> {
  const sources = readJobs(options.file, options.name);
  if (options.consumerGroup && sources.length > 1) {
    throw new CliError(`--consumer-group names one group, but ${sources.length} jobs would share it: run them one at a time`);
  }
  const stateDir = resolve(options.stateDir);
  for (const { job } of sources) refuseIfRunning(stateDir, job.metadata.name);
  const plans: PlannedJob[] = [];
  for (const { file, job } of sources) {
    const overrides: LocalOverrides = {
      parallelism: options.parallelism,
      bootstrapServers: options.bootstrapServers,
      redis: options.redis,
      smtp: options.smtp,
      consumerGroup: options.consumerGroup,
      keyPrefix: options.keyPrefix,
      checkpointRoot: resolve(options.checkpointDir),
      metricsPortBase: options.metricsPort,
      env,
    };
    // Rendered first (it refuses what cannot run locally), ports after.
    const configs = localWorkerConfigs(job, overrides);
    overrides.metricsPorts = [];
    for (let i = 0; i < configs.length; i++) overrides.metricsPorts.push(await ports.take());
    plans.push({ name: job.metadata.name, type: String(job.spec.type), file, configs: localWorkerConfigs(job, overrides) });
  }
  return plans;
}

async function runForeground(options: RunOptions): Promise<void> {
  const env = workerEnv(options);
  const stateDir = resolve(options.stateDir);
  const ports = new PortAllocator(options.metricsPort, reservedPorts(stateDir));
  const plans = await plan(options, env, ports);
  const report = (line: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const run = new LocalRun(plans, {
    bin: sluiceBin(),
    stateDir,
    logsDir: resolve(options.logsDir),
    env,
    stopTimeoutMs: options.stopTimeout * 1000,
    report,
    ports,
  });
  const outcome = await run.run();
  if (outcome.exitCode !== 0) throw new CliError(outcome.failures.join('\n'), outcome.exitCode);
}

/** The command line of this run without --detach: the background supervisor runs exactly that. */
function foregroundArgs(): string[] {
  return process.argv.slice(2).filter((a) => a !== '-d' && a !== '--detach');
}

interface JobProgress {
  name: string;
  state?: RunState;
}

function summary(p: JobProgress): { done: boolean; ok: boolean; line: string } {
  const s = p.state;
  if (!s) return { done: true, ok: false, line: `job '${p.name}': not running (see the supervisor log)` };
  if (s.failed) return { done: true, ok: false, line: `job '${p.name}' stopped: ${s.failed.reason}` };
  const ready = s.workers.filter((w) => w.status === 'ready').length;
  const troubled = s.workers.filter((w) => w.lastExit && w.status !== 'ready');
  const ports = s.workers.map((w) => w.metricsPort).join(', ');
  if (troubled.length > 0) {
    const w = troubled[0]!;
    const how = w.lastExit!.signal ? `was killed by ${w.lastExit!.signal}` : `exited with code ${w.lastExit!.code}`;
    return {
      done: true,
      ok: false,
      line: `job '${p.name}': worker ${w.index} ${how}: ${w.lastExit!.reason} (${ready}/${s.workers.length} ready; still retrying in the background: 'sluice stop ${p.name}' ends it, 'sluice status' follows it)`,
    };
  }
  const line = `job '${p.name}': ${ready}/${s.workers.length} ${s.type} worker(s) ready; metrics ports ${ports}`;
  return { done: ready === s.workers.length, ok: true, line };
}

/** `--detach`: the same command in the foreground, as a background process whose output goes to a log. */
async function runDetached(options: RunOptions): Promise<void> {
  // Everything the foreground would refuse (files, ports, a job already running) is refused here, before forking.
  workerEnv(options); // a broken --env-file is refused here, not in the background
  const stateDir = resolve(options.stateDir);
  const names = readJobs(options.file, options.name).map((s) => s.job.metadata.name);
  for (const name of names) refuseIfRunning(stateDir, name);
  mkdirSync(resolve(options.logsDir), { recursive: true });
  const logFile = resolve(options.logsDir, names.length === 1 ? `${names[0]}-supervisor.log` : 'supervisor.log');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [sluiceBin(), ...foregroundArgs()], { detached: true, stdio: ['ignore', log, log], env: process.env, cwd: process.cwd() });
  closeSync(log);
  child.unref();
  const pid = child.pid ?? 0;
  const deadline = Date.now() + options.wait * 1000;
  let progress: JobProgress[] = names.map((name) => ({ name }));
  let started = false;
  for (;;) {
    progress = names.map((name) => ({ name, state: readRunState(stateDir, name) }));
    started ||= progress.every((p) => p.state?.supervisorPid === pid);
    const views = progress.map(summary);
    const settled = started && views.every((v) => v.done);
    if (settled || !isAlive(pid) || Date.now() >= deadline) {
      if (!started) {
        const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join('\n');
        throw new CliError(`the jobs did not start in the background; last lines of ${logFile}:\n${tail}`);
      }
      const lines = views.map((v) => v.line);
      const ok = views.every((v) => v.ok);
      const waiting = !settled && isAlive(pid) ? ` (waited ${options.wait}s; 'sluice status --watch' follows them)` : '';
      process.stdout.write(
        `${lines.join('\n')}\nrunning in the background (supervisor pid ${pid})${waiting}; logs in ${options.logsDir}/; stop with 'sluice stop'\n`,
      );
      if (!ok) throw new CliError(`not every job started cleanly (supervisor log: ${logFile})`);
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
