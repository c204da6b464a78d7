#!/usr/bin/env node
/** Standalone entry of the worker command (the `sluice` CLI also mounts it). */
import { Command } from 'commander';
import { workerCommand } from './command.js';

const program = new Command('sluice-worker').addCommand(workerCommand());
await program.parseAsync(process.argv);
