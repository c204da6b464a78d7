import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/** One local worker process: `node bin/sluice.js worker --config FILE`, output to its own log file. */
export interface LocalWorker {
  index: number;
  configFile: string;
  logFile: string;
  metricsPort: number;
}

export interface SupervisorOptions {
  /** The sluice CLI entry point (bin/sluice.js). */
  bin: string;
  workers: LocalWorker[];
  env: NodeJS.ProcessEnv;
  /** How long a worker gets after SIGTERM (final checkpoint) before SIGKILL. */
  stopTimeoutMs: number;
  /** Human progress lines (worker started, exited, restarting). */
  report: (line: string) => void;
  /** Called whenever a worker's pid changes, so the run state can be rewritten. */
  onPidsChanged?: (pids: Map<number, number>) => void;
  /** Called when a worker refuses its configuration: restarting it cannot help. */
  onConfigRejected?: (worker: LocalWorker) => void;
}

/** `sluice worker` exits with this code when its configuration is invalid (workers/command.ts). */
export const CONFIG_REJECTED_EXIT_CODE = 2;

const RESTART_BACKOFF_MS = { first: 1_000, max: 30_000 };

/**
 * Keeps `parallelism` local worker processes running, like a Deployment does
 * in the cluster: a worker that exits on its own is restarted with backoff,
 * and `stop()` ends all of them with SIGTERM (so each writes its final
 * checkpoint), then SIGKILL for any that outlive the timeout.
 */
export class LocalSupervisor {
  private readonly children = new Map<number, ChildProcess>();
  private readonly backoff = new Map<number, number>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(private readonly options: SupervisorOptions) {}

  start(): void {
    for (const worker of this.options.workers) this.spawnWorker(worker);
  }

  pids(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [index, child] of this.children) if (child.pid !== undefined) out.set(index, child.pid);
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

  private spawnWorker(worker: LocalWorker): void {
    mkdirSync(dirname(worker.logFile), { recursive: true });
    const log = openSync(worker.logFile, 'a');
    const child = spawn(process.execPath, [this.options.bin, 'worker', '--config', worker.configFile], {
      env: this.options.env,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.children.set(worker.index, child);
    this.options.onPidsChanged?.(this.pids());
    const startedAt = Date.now();
    child.once('exit', (code, signal) => this.onExit(worker, startedAt, code, signal));
    child.once('error', (err) => this.options.report(`worker ${worker.index} could not start: ${err.message}`));
  }

  private onExit(worker: LocalWorker, startedAt: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) return;
    if (code === CONFIG_REJECTED_EXIT_CODE) {
      this.options.report(`worker ${worker.index} refused its configuration (see ${worker.logFile}); not restarting it`);
      this.options.onConfigRejected?.(worker);
      return;
    }
    // A worker that ran for a while before failing starts again from the first backoff step.
    const previous = Date.now() - startedAt > RESTART_BACKOFF_MS.max ? 0 : (this.backoff.get(worker.index) ?? 0);
    const delay = previous === 0 ? RESTART_BACKOFF_MS.first : Math.min(previous * 2, RESTART_BACKOFF_MS.max);
    this.backoff.set(worker.index, delay);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    this.options.report(
      `worker ${worker.index} ${how}; restarting in ${delay / 1000}s (see ${worker.logFile})`,
    );
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.stopping) this.spawnWorker(worker);
    }, delay);
    this.restartTimers.add(timer);
  }
}
