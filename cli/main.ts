import { buildProgram, runCli } from './program.js';

process.exitCode = await runCli(buildProgram(), process.argv);
