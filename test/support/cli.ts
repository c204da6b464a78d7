import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './infra.js';

/** The built CLI (`npm run build` first; `npm test` does it in pretest). */
export const sluiceBin = join(repoRoot, 'bin', 'sluice.js');

export interface CliProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the output matches, rejects when the process exits first or the time is up. */
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, [sluiceBin, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = text.match(pattern);
        if (m) {
          cleanup();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output so far:\n${text}`));
      }, timeoutMs);
      const onExit = (): void => {
        cleanup();
        reject(new Error(`sluice ${args[0]} exited before printing ${pattern}; output:\n${text}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });
  return { child, output: () => text, waitFor, exited };
}

/** Runs the CLI to completion. */
export async function runCliToEnd(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  const p = startCli(args, opts);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, output: p.output() };
}

export { freePorts } from './ports.js';

/**
 * Ends a `sluice run` a test started, even when the test failed half-way: SIGINT
 * (the workers checkpoint and leave), SIGKILL after `graceMs`, then any worker
 * process its run state still names (a supervisor killed hard leaves them behind).
 */
export async function stopLocalRun(run: CliProcess, stateDir: string, graceMs = 15_000): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) {
    run.child.kill('SIGINT');
    const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs);
    await run.exited;
    clearTimeout(timer);
  }
  let files: string[] = [];
  try {
    files = readdirSync(stateDir).filter((f) => f.endsWith('.json'));
  } catch {
    return;
  }
  for (const f of files) {
    let state: { workers?: Array<{ pid?: number }> };
    try {
      state = JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as typeof state;
    } catch {
      continue;
    }
    for (const { pid } of state.workers ?? []) if (pid && isSluiceWorker(pid)) process.kill(pid, 'SIGKILL');
  }
}

function isSluiceWorker(pid: number): boolean {
  try {
    return /sluice\.js\0worker\0/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
  } catch {
    return false;
  }
}
