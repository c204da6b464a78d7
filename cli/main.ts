import { workerCommand } from '../workers/command.js';
import { buildProgram, runCli } from './program.js';

process.exitCode = await runCli(buildProgram({ extra: [workerCommand()] }), process.argv);
