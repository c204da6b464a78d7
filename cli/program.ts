import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, type OutputConfiguration } from 'commander';
import { CliError, describeError } from './errors.js';
import { dashboardCommand } from './commands/dashboard.js';
import { demoCommand } from './commands/demo.js';
import { logsCommand } from './commands/logs.js';
import { produceCommand } from './commands/produce.js';
import { runCommand } from './commands/run.js';
import { statusCommand } from './commands/status.js';
import { stopCommand } from './commands/stop.js';
import { restoreCommand, snapshotCommand } from './commands/state.js';
import { packageRoot } from '../lib/package-root.js';

export interface ProgramOptions {
  /** Subcommands that live with their owners (operator/, workers/), added by main.ts. */
  extra?: Command[];
  /** Where help and usage errors go (tests capture them). */
  output?: OutputConfiguration;
}

export function buildProgram(options: ProgramOptions = {}): Command {
  const program = new Command('sluice')
    .description('Real-time stream-processing jobs (churn and cart scoring) on Kubernetes, or locally')
    .version((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version)
    .enablePositionalOptions();
  for (const cmd of [
    ...(options.extra ?? []),
    runCommand(),
    stopCommand(),
    statusCommand(),
    dashboardCommand(),
    logsCommand(),
    snapshotCommand(),
    restoreCommand(),
    demoCommand(),
    produceCommand(),
  ]) {
    program.addCommand(cmd);
  }
  configure(program, options.output);
  return program;
}

/**
 * Every (sub)command throws instead of exiting, so `runCli` decides how errors
 * look, and prints one line plus a pointer to --help for a usage error.
 * addCommand() does not pass these settings down, hence the walk.
 */
function configure(cmd: Command, output: OutputConfiguration | undefined): void {
  cmd.exitOverride().showSuggestionAfterError().showHelpAfterError(`(run '${fullName(cmd)} --help' for usage)`);
  if (output) cmd.configureOutput(output);
  for (const sub of cmd.commands) configure(sub, output);
}

function fullName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Runs the CLI and returns the exit code. Usage errors (unknown flag, missing
 * argument, bad value) were already printed by commander; errors thrown by a
 * command are printed as `error: <message>`, with a stack only when
 * SLUICE_DEBUG is set.
 */
export async function runCli(
  program: Command,
  argv: string[],
  writeErr: (text: string) => void = (text) => void process.stderr.write(text),
): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    // commander's own exits: help and version (code 0) or a usage error it has printed.
    if (err instanceof CommanderError) return err.exitCode;
    const code = err instanceof CliError ? err.exitCode : 1;
    writeErr(`error: ${describeError(err)}\n`);
    if (process.env.SLUICE_DEBUG && err instanceof Error && err.stack) writeErr(`${err.stack}\n`);
    return code;
  }
}
