import { isAlive, livePids, type RunState } from './run-state.js';

const POLL_MS = 100;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: that is what we wanted.
  }
}

async function waitGone(pids: number[], deadline: number): Promise<number[]> {
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    alive = alive.filter(isAlive);
  }
  return alive;
}

/**
 * Ends a local run from outside it. The supervisor is asked first (SIGTERM):
 * it stops its workers in order and would otherwise restart a worker killed
 * under it. Workers left without a supervisor get SIGTERM directly. Whatever
 * outlives the timeout gets SIGKILL. Returns the pids that had to be killed.
 */
export async function stopRun(state: RunState, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  if (isAlive(state.supervisorPid)) {
    signal(state.supervisorPid, 'SIGTERM');
    await waitGone([state.supervisorPid], deadline);
  }
  const orphans = state.workers.map((w) => w.pid).filter(isAlive);
  for (const pid of orphans) signal(pid, 'SIGTERM');
  const stubborn = await waitGone(livePids(state), deadline);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  await waitGone(stubborn, Date.now() + 2_000);
  return stubborn;
}
