import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { isAlive, listRunStates, livePids, readRunState, removeRunState, stopRequestFile, type RunState } from '../local/run-state.js';
import { stopRun } from '../local/stop-run.js';
import { duration } from '../options.js';

interface StopOptions {
  stateDir: string;
  timeout: number;
}

export function stopCommand(): Command {
  return new Command('stop')
    .summary('Stop jobs started with `sluice run`')
    .description('Stop jobs started with `sluice run` (all of them when no job is named): SIGTERM, final checkpoint, then exit')
    .argument('[job...]', 'names of the local jobs to stop')
    .option('--state-dir <dir>', 'where `sluice run` keeps its pid files', '.sluice')
    .addOption(
      new Option('--timeout <duration>', 'how long to wait before SIGKILL').argParser(duration('--timeout')).default(45, '45s'),
    )
    .action(async (jobs: string[], options: StopOptions) => {
      const stateDir = resolve(options.stateDir);
      let states: RunState[];
      if (jobs.length === 0) {
        states = listRunStates(stateDir);
        if (states.length === 0) {
          process.stdout.write(`no local jobs running (nothing in ${stateDir})\n`);
          return;
        }
      } else {
        states = jobs.map((job) => {
          const state = readRunState(stateDir, job);
          if (!state) throw new CliError(`no local job named '${job}' (no pid file in ${stateDir})`);
          return state;
        });
      }
      const requested = new Set(states.map((s) => s.job));
      const all = listRunStates(stateDir);
      // Supervisors ended here: their other requested jobs ended with them.
      const ended = new Set<number>();
      for (const state of states) {
        const pids = livePids(state);
        if (ended.has(state.supervisorPid) && !state.failed) {
          await stopRun({ ...state, supervisorPid: 0 }, options.timeout * 1000);
          process.stdout.write(`job '${state.job}' stopped\n`);
        } else if (pids.length === 0) {
          process.stdout.write(
            state.failed
              ? `job '${state.job}' was given up (${state.failed.reason}); removed its state\n`
              : `job '${state.job}' was not running; removed its stale pid file\n`,
          );
        } else if (sharesSupervisor(state, all, requested)) {
          // Its supervisor runs other jobs too, which go on: ask it to stop this one.
          process.stdout.write(`stopping job '${state.job}' (pids ${pids.join(', ')})...\n`);
          writeFileSync(stopRequestFile(stateDir, state.job), `${new Date().toISOString()}\n`);
          const gone = await waitForState(stateDir, state.job, options.timeout * 1000);
          const note = gone ? '' : '; its supervisor did not answer, so its workers were signalled';
          if (!gone) await stopRun({ ...state, supervisorPid: 0 }, 5_000);
          process.stdout.write(`job '${state.job}' stopped${note}\n`);
        } else {
          process.stdout.write(`stopping job '${state.job}' (pids ${pids.join(', ')})...\n`);
          const killed = await stopRun(state, options.timeout * 1000);
          ended.add(state.supervisorPid);
          const note = killed.length > 0 ? `; had to SIGKILL ${killed.join(', ')}` : '';
          process.stdout.write(`job '${state.job}' stopped${note}\n`);
        }
        removeRunState(stateDir, state.job);
      }
    });
}

/** True when the job's supervisor also runs a job that is not being stopped now. */
function sharesSupervisor(state: RunState, all: RunState[], requested: Set<string>): boolean {
  if (!isAlive(state.supervisorPid)) return false;
  return all.some((other) => other.supervisorPid === state.supervisorPid && !other.failed && !requested.has(other.job));
}

async function waitForState(stateDir: string, job: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!readRunState(stateDir, job)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
