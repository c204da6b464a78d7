import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { PERMANENT_EXIT_CODES } from '../../workers/exit-codes.js';
import { workerReason } from './worker-log.js';

/** One local worker process: `node bin/sluice.js worker --config FILE`, output to its own log file. */
export interface LocalWorker {
  index: number;
  configFile: string;
  logFile: string;
  metricsPort: number;
}

export interface WorkerExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: string;
  permanent: boolean;
}

export interface SupervisorOptions {
  /** The sluice CLI entry point (bin/sluice.js). */
  bin: string;
  /** Extra arguments of `sluice worker` (local workers listen on loopback only). */
  workerArgs?: string[];
  workers: LocalWorker[];
  env: NodeJS.ProcessEnv;
  /** How long a worker gets after SIGTERM (final checkpoint) before SIGKILL. */
  stopTimeoutMs: number;
  /** Human progress lines (worker started, exited, restarting). */
  report: (line: string) => void;
  /** Called when a worker process starts (pid) or ends (pid 0). */
  onWorkerChanged?: (worker: LocalWorker, change: { pid: number; exit?: WorkerExitInfo; restartInMs?: number }) => void;
  /** Called when a worker exits with a code that says a restart cannot help: the job should stop. */
  onPermanentExit?: (worker: LocalWorker, exit: WorkerExitInfo) => void;
  /** Called before each start of a worker; may move it to another metrics port (the old one got taken). */
  beforeStart?: (worker: LocalWorker) => Promise<void>;
}

/**
 * Restarting a worker that refused its configuration, its model or its
 * checkpoints, or that cannot use its topic, only repeats the refusal: those
 * exit codes stop the job. Any other exit is transient: restart.
 */
export { PERMANENT_EXIT_CODES };

const RESTART_BACKOFF_MS = { first: 1_000, max: 30_000 };

/**
 * Keeps `parallelism` local worker processes of one job running, like a
 * Deployment does in the cluster: a worker that exits on its own is restarted
 * with backoff, unless its exit code says the exit is permanent; every exit is
 * reported with the worker's own reason. `stop()` ends all of them with SIGTERM
 * (so each writes its final checkpoint), then SIGKILL for any that outlive the
 * timeout.
 */
export class LocalSupervisor {
  private readonly children = new Map<number, ChildProcess>();
  private readonly backoff = new Map<number, number>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(private readonly options: SupervisorOptions) {}

  async start(): Promise<void> {
    for (const worker of this.options.workers) await this.spawnWorker(worker);
  }

  pids(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [index, child] of this.children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) out.set(index, child.pid);
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    const running = [...this.children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(running.map((child) => this.stopChild(child)));
  }

  private async stopChild(child: ChildProcess): Promise<void> {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.options.report(`worker pid ${child.pid} did not stop within ${this.options.stopTimeoutMs} ms: killing it`);
      child.kill('SIGKILL');
    }, this.options.stopTimeoutMs);
    await exited;
    clearTimeout(timer);
  }

  private async spawnWorker(worker: LocalWorker): Promise<void> {
    await this.options.beforeStart?.(worker);
    if (this.stopping) return;
    mkdirSync(dirname(worker.logFile), { recursive: true });
    const log = openSync(worker.logFile, 'a');
    const child = spawn(process.execPath, [this.options.bin, 'worker', '--config', worker.configFile, ...(this.options.workerArgs ?? [])], {
      env: this.options.env,
      // The IPC channel is how a worker notices that this supervisor is gone, however it ended.
      stdio: ['ignore', log, log, 'ipc'],
    });
    closeSync(log);
    this.children.set(worker.index, child);
    this.options.onWorkerChanged?.(worker, { pid: child.pid ?? 0 });
    const startedAt = Date.now();
    child.once('exit', (code, signal) => this.onExit(worker, startedAt, code, signal));
    child.once('error', (err) => this.options.report(`worker ${worker.index} could not start: ${err.message}`));
  }

  private onExit(worker: LocalWorker, startedAt: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) {
      this.options.onWorkerChanged?.(worker, { pid: 0 });
      return;
    }
    const permanentWhy = code === null ? undefined : PERMANENT_EXIT_CODES.get(code);
    const exit: WorkerExitInfo = { code, signal, reason: workerReason(worker.logFile, startedAt), permanent: permanentWhy !== undefined };
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    if (permanentWhy) {
      this.options.report(`worker ${worker.index} ${how}: it ${permanentWhy}: ${exit.reason}; not restarting it (log: ${worker.logFile})`);
      this.options.onWorkerChanged?.(worker, { pid: 0, exit });
      this.options.onPermanentExit?.(worker, exit);
      return;
    }
    // A worker that ran for a while before failing starts again from the first backoff step.
    const previous = Date.now() - startedAt > RESTART_BACKOFF_MS.max ? 0 : (this.backoff.get(worker.index) ?? 0);
    const delay = previous === 0 ? RESTART_BACKOFF_MS.first : Math.min(previous * 2, RESTART_BACKOFF_MS.max);
    this.backoff.set(worker.index, delay);
    const why = signal ? '' : `: ${exit.reason}`;
    this.options.report(`worker ${worker.index} ${how}${why}; restarting in ${delay / 1000}s (log: ${worker.logFile})`);
    this.options.onWorkerChanged?.(worker, { pid: 0, exit, restartInMs: delay });
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.stopping) {
        this.spawnWorker(worker).catch((err: Error) => this.options.report(`worker ${worker.index} could not start: ${err.message}`));
      }
    }, delay);
    this.restartTimers.add(timer);
  }
}
