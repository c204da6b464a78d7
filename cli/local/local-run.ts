import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { LocalWorkerConfig } from './job-config.js';
import { PortAllocator, portFree } from './ports.js';
import { ensureStateDir, removeRunState, stopRequestFile, writeRunState, type RunState } from './run-state.js';
import { LocalSupervisor, PERMANENT_EXIT_CODES, type LocalWorker } from './supervisor.js';

/** One job of a local run, with its rendered worker configs. */
export interface PlannedJob {
  name: string;
  type: string;
  file: string;
  configs: LocalWorkerConfig[];
}

export interface LocalRunOptions {
  bin: string;
  stateDir: string;
  logsDir: string;
  env: NodeJS.ProcessEnv;
  stopTimeoutMs: number;
  report: (line: string) => void;
  /** Hands out a new metrics port when a worker's was taken before it could (re)start. */
  ports: PortAllocator;
}

interface RunningJob {
  plan: PlannedJob;
  state: RunState;
  workers: LocalWorker[];
  supervisor: LocalSupervisor;
  done: boolean;
  ending?: Promise<void>;
}

/** How a local run ended: exit code 0, or the largest code of a job given up, and why each was. */
export interface RunOutcome {
  exitCode: number;
  failures: string[];
}

const POLL_MS = 500;
/** How often a ready worker's /status is read for stalls. */
const STALL_POLL_MS = 2_000;

interface WorkerStall {
  on: string;
  reason: string;
  message: string;
}

/** What a worker's /status says it waits on; undefined when it does not answer. */
async function workerStalls(port: number): Promise<WorkerStall[] | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return undefined;
    return ((await res.json()) as { stalls?: WorkerStall[] }).stalls ?? [];
  } catch {
    return undefined;
  }
}

/** How long a worker may take to become ready before the terminal is told what it waits for. */
const NOT_READY_AFTER_MS = 5_000;

/**
 * Several local jobs under one supervisor process (`sluice run -f a.yaml -f b.yaml`
 * or a folder): each job has its own LocalSupervisor, run state file, metrics
 * ports and log files. A job ends when `sluice stop JOB` asks (a stop-request
 * file), when one of its workers exits permanently (it is given up, the others
 * keep running), or when the whole run gets SIGINT/SIGTERM. `run()` resolves
 * with the exit code once every job has ended: 0, or the largest code of a
 * permanent failure.
 */
export class LocalRun {
  private readonly jobs: RunningJob[] = [];
  private readonly controller = new AbortController();
  private exitCode = 0;
  private readonly failures: string[] = [];

  constructor(
    plans: PlannedJob[],
    private readonly o: LocalRunOptions,
  ) {
    ensureStateDir(o.stateDir);
    const siblings = plans.map((p) => p.name);
    for (const plan of plans) {
      const configDir = join(o.stateDir, plan.name);
      mkdirSync(configDir, { recursive: true });
      rmSync(stopRequestFile(o.stateDir, plan.name), { force: true });
      const workers: LocalWorker[] = plan.configs.map((config, index) => {
        const configFile = join(configDir, `worker-${index}.yaml`);
        writeFileSync(configFile, stringify(config));
        mkdirSync(config.checkpoint.dir, { recursive: true });
        return { index, configFile, logFile: join(o.logsDir, `${plan.name}-${index}.log`), metricsPort: config.metrics.port };
      });
      const state: RunState = {
        job: plan.name,
        type: plan.type,
        file: plan.file,
        supervisorPid: process.pid,
        siblings,
        workers: workers.map((w) => ({ index: w.index, pid: 0, logFile: w.logFile, configFile: w.configFile, metricsPort: w.metricsPort, status: 'starting', restarts: 0 })),
        startedAt: new Date().toISOString(),
      };
      const job: RunningJob = { plan, state, workers, done: false, supervisor: undefined as unknown as LocalSupervisor };
      job.supervisor = this.supervisorFor(job);
      this.jobs.push(job);
    }
  }

  private say(job: RunningJob, line: string): void {
    this.o.report(`[${job.plan.name}] ${line}`);
  }

  private save(job: RunningJob): void {
    if (!job.done) writeRunState(this.o.stateDir, job.state);
  }

  private supervisorFor(job: RunningJob): LocalSupervisor {
    return new LocalSupervisor({
      bin: this.o.bin,
      workerArgs: ['--metrics-host', '127.0.0.1'],
      workers: job.workers,
      env: this.o.env,
      stopTimeoutMs: this.o.stopTimeoutMs,
      report: (line) => this.say(job, line),
      onWorkerChanged: (worker, change) => {
        const w = job.state.workers[worker.index]!;
        w.pid = change.pid;
        if (change.pid > 0) {
          w.status = 'starting';
        } else if (change.exit) {
          w.lastExit = { ...change.exit, at: new Date().toISOString() };
          w.restarts = (w.restarts ?? 0) + (change.exit.permanent ? 0 : 1);
          w.status = change.exit.permanent ? 'failed' : 'restarting';
        }
        this.save(job);
        if (change.pid > 0) this.watchReadiness(job, worker, change.pid);
      },
      onPermanentExit: (worker, exit) => {
        const what = PERMANENT_EXIT_CODES.get(exit.code ?? -1) ?? 'failed for good';
        const reason = `a worker ${what}: ${exit.reason}`;
        job.state.failed = { at: new Date().toISOString(), reason, exitCode: exit.code ?? 1 };
        this.save(job);
        void this.endJob(job, `stopped: ${reason}`, exit.code ?? 1);
      },
      beforeStart: async (worker) => {
        if (await portFree(worker.metricsPort)) return;
        const old = worker.metricsPort;
        worker.metricsPort = await this.o.ports.take();
        const config = job.plan.configs[worker.index]!;
        config.metrics.port = worker.metricsPort;
        writeFileSync(worker.configFile, stringify(config));
        job.state.workers[worker.index]!.metricsPort = worker.metricsPort;
        this.save(job);
        this.say(job, `worker ${worker.index}: metrics port ${old} is taken by another program; using ${worker.metricsPort}`);
      },
    });
  }

  /**
   * Polls /readyz of one worker process until it is ready (and really this
   * job's worker), or that process is gone. A worker not ready after a few
   * seconds has what it waits for printed, once per change of its answer.
   */
  private watchReadiness(job: RunningJob, worker: LocalWorker, pid: number): void {
    const signal = this.controller.signal;
    const current = (): boolean => !signal.aborted && !job.done && job.state.workers[worker.index]!.pid === pid;
    const since = Date.now();
    let said = '';
    void (async () => {
      while (current()) {
        const r = await readiness(worker.metricsPort, job.plan.name);
        if (!current()) return;
        if (r.ready) {
          job.state.workers[worker.index]!.status = 'ready';
          this.save(job);
          this.say(job, `worker ${worker.index} ready (metrics: http://127.0.0.1:${worker.metricsPort}/metrics)`);
          await this.watchStalls(worker, current);
          return;
        }
        if (r.detail && r.detail !== said && Date.now() - since >= NOT_READY_AFTER_MS) {
          said = r.detail;
          this.say(job, `worker ${worker.index} not ready yet: ${r.detail}`);
        }
        await sleep(1_000);
      }
    })();
  }

  /**
   * After ready: what the worker waits on (Redis, SMTP, Kafka, the DLQ), from
   * its /status, printed when a wait begins and when it ends, so a stall is
   * never silent on the terminal.
   */
  private async watchStalls(worker: LocalWorker, current: () => boolean): Promise<void> {
    let known = new Map<string, WorkerStall>();
    const job = this.jobs.find((j) => j.workers.includes(worker))!;
    while (current()) {
      await sleep(STALL_POLL_MS);
      const stalls = await workerStalls(worker.metricsPort);
      if (!current() || stalls === undefined) continue;
      const now = new Map(stalls.map((st) => [`${st.on}/${st.reason}`, st]));
      for (const [key, st] of now) if (!known.has(key)) this.say(job, `worker ${worker.index} waiting for ${st.on} (${st.reason}): ${st.message}`);
      for (const [key, st] of known) if (!now.has(key)) this.say(job, `worker ${worker.index}: ${st.on} answers again (${st.reason} over)`);
      known = now;
    }
  }

  private endJob(job: RunningJob, why: string, code = 0): Promise<void> {
    if (job.ending) return job.ending;
    job.done = true;
    job.ending = (async () => {
      await job.supervisor.stop();
      // A job given up keeps its state file (no pids, and why) for `sluice status`; the next run removes it.
      if (code === 0) removeRunState(this.o.stateDir, job.plan.name);
      else writeRunState(this.o.stateDir, { ...job.state, workers: job.state.workers.map((w) => ({ ...w, pid: 0 })) });
      rmSync(stopRequestFile(this.o.stateDir, job.plan.name), { force: true });
      this.exitCode = Math.max(this.exitCode, code);
      if (code !== 0) this.failures.push(`job '${job.plan.name}' ${why}`);
      this.say(job, `job '${job.plan.name}' ${why}`);
    })();
    return job.ending;
  }

  /** Starts every job and resolves with the exit code once all have ended. */
  async run(): Promise<RunOutcome> {
    for (const job of this.jobs) {
      this.save(job);
      await job.supervisor.start();
      const ports = job.workers.map((w) => w.metricsPort).join(', ');
      this.say(
        job,
        `started ${job.workers.length} ${job.plan.type} worker(s) for job '${job.plan.name}' from ${job.plan.file}; metrics ports ${ports}; logs: ${job.workers.map((w) => w.logFile).join(', ')}`,
      );
    }
    const names = this.jobs.map((j) => j.plan.name);
    this.o.report(`stop with Ctrl-C or 'sluice stop${names.length > 1 ? '' : ` ${names[0]}`}'; watch with 'sluice status --watch'`);

    const onSignal = (sig: NodeJS.Signals): void => {
      const live = this.jobs.filter((j) => !j.done);
      const workers = live.reduce((n, j) => n + j.workers.length, 0);
      this.o.report(`${sig}: stopping ${workers} worker(s) (final checkpoints)...`);
      for (const job of live) void this.endJob(job, 'stopped');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      while (this.jobs.some((j) => !j.done)) {
        for (const job of this.jobs) {
          if (!job.done && existsSync(stopRequestFile(this.o.stateDir, job.plan.name))) {
            this.say(job, `'sluice stop ${job.plan.name}': stopping ${job.workers.length} worker(s) (final checkpoints)...`);
            await this.endJob(job, 'stopped');
          }
        }
        await sleep(POLL_MS);
      }
      // Jobs ended by a signal or a permanent exit may still be stopping their workers.
      await Promise.all(this.jobs.map((j) => j.ending ?? Promise.resolve()));
    } finally {
      this.controller.abort();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return { exitCode: this.exitCode, failures: this.failures };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Ready when /readyz answers 200 and /metrics carries this job's label (not a
 * worker of another job on a reused port); otherwise what /readyz says.
 */
async function readiness(port: number, job: string): Promise<{ ready: boolean; detail?: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
    const detail = (await res.text()).trim();
    if (!res.ok) return { ready: false, detail };
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    return metrics.includes(`job="${job}"`) ? { ready: true } : { ready: false, detail: `port ${port} answers for another job` };
  } catch {
    // Not listening yet (loading the model), or gone.
    return { ready: false };
  }
}
