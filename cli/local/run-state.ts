import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The last exit of a worker process, as the supervisor saw it. */
export interface WorkerExit {
  code: number | null;
  signal: string | null;
  at: string;
  /** The worker's own last error or fatal log line (or its last line). */
  reason: string;
  /** The exit code says that restarting cannot help (a refused configuration...). */
  permanent: boolean;
}

export interface WorkerRunState {
  index: number;
  /** 0 while no process runs (between restarts, after a permanent exit). */
  pid: number;
  logFile: string;
  configFile?: string;
  metricsPort: number;
  /** starting: spawned, not ready yet; ready: /readyz said so; restarting: waiting to start again; failed: given up. */
  status?: 'starting' | 'ready' | 'restarting' | 'failed';
  restarts?: number;
  lastExit?: WorkerExit;
}

/**
 * What `sluice run` records about a local job so that `sluice stop` and
 * `sluice status` (other processes, maybe another terminal) can find it: the
 * supervisor's pid, its workers' pids, ports, logs and how they are doing. One
 * JSON file per job under `<stateDir>/`; one supervisor may run several jobs.
 */
export interface RunState {
  job: string;
  type: string;
  /** The YAML file the job came from. */
  file?: string;
  supervisorPid: number;
  /** Every job this supervisor runs (itself included): stopping all of them may simply end the supervisor. */
  siblings?: string[];
  workers: WorkerRunState[];
  startedAt: string;
  /** Set when the supervisor gave the job up (a permanent refusal): why, and the exit code it implies. */
  failed?: { at: string; reason: string; exitCode: number };
}

/** A request, left by `sluice stop`, that the supervisor stop one of its jobs. */
export function stopRequestFile(stateDir: string, job: string): string {
  return join(stateDir, `${job}.stop`);
}

export function runStateFile(stateDir: string, job: string): string {
  return join(stateDir, `${job}.json`);
}

/**
 * Creates the state directory, ignored by git from the inside (as .pytest_cache
 * does), so a local run in a checkout leaves nothing for `git status` to show.
 */
export function ensureStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true });
  const ignore = join(stateDir, '.gitignore');
  if (!existsSync(ignore)) writeFileSync(ignore, '# created by sluice run: pid files and rendered worker configs\n*\n');
}

export function writeRunState(stateDir: string, state: RunState): void {
  ensureStateDir(stateDir);
  const file = runStateFile(stateDir, state.job);
  // Write then rename, so a concurrent `sluice stop` never reads half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readRunState(stateDir: string, job: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(runStateFile(stateDir, job), 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

export function removeRunState(stateDir: string, job: string): void {
  rmSync(runStateFile(stateDir, job), { force: true });
}

export function listRunStates(stateDir: string): RunState[] {
  let files: string[];
  try {
    files = readdirSync(stateDir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files
    .map((f) => readRunState(stateDir, f.slice(0, -'.json'.length)))
    .filter((s): s is RunState => s !== undefined);
}

export function isAlive(pid: number): boolean {
  // kill(0) would signal our own process group, kill(-n) a group: neither is a pid.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pids of a run that are still alive: supervisor first. A job the
 * supervisor gave up has none, even while the supervisor runs other jobs.
 */
export function livePids(state: RunState): number[] {
  const supervisor = state.failed ? [] : [state.supervisorPid];
  return [...supervisor, ...state.workers.map((w) => w.pid)].filter((pid) => pid > 0 && isAlive(pid));
}
