import { operatorCommand } from '../operator/command.js';
import { workerCommand } from '../workers/command.js';
import { stateCommand } from '../workers/stateops/command.js';
import { buildProgram, runCli } from './program.js';

const code = await runCli(buildProgram({ extra: [operatorCommand(), workerCommand(), stateCommand()] }), process.argv);
// A command may have set its own exit code (the worker does for a bad config); keep it unless we failed.
if (code !== 0) process.exitCode = code;
