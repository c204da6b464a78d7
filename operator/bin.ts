#!/usr/bin/env node
// Runs the operator alone (`node dist/operator/bin.js --kubeconfig ...`): tests and
// benchmarks spawn it as a separate process; users run `sluice operator`.
import { operatorCommand } from './command.js';

await operatorCommand().name('sluice-operator').parseAsync(process.argv);
