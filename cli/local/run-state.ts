import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What `sluice run` records about a local job so that `sluice stop` (another
 * process, maybe another terminal) can end it: the supervisor's pid and its
 * workers' pids. One JSON file per job under `<stateDir>/`.
 */
export interface RunState {
  job: string;
  type: string;
  supervisorPid: number;
  workers: { index: number; pid: number; logFile: string; metricsPort: number }[];
  startedAt: string;
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
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pids of a run that are still alive: supervisor first. */
export function livePids(state: RunState): number[] {
  return [state.supervisorPid, ...state.workers.map((w) => w.pid)].filter((pid) => pid > 0 && isAlive(pid));
}
