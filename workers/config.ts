/**
 * The worker configuration of the registered job types: the contract of
 * lib/worker-config/ over workers/jobs/registry.ts. `sluice worker`, the tests
 * and the in-process runner resolve configurations here.
 */
import type { JobType, WorkerConfig } from '../lib/worker-config/config.js';
import { WorkerConfigContract } from '../lib/worker-config/resolve.js';
import { jobTypes } from './jobs/registry.js';

export const workerConfig = new WorkerConfigContract(() => jobTypes.configs());

export function resolveWorkerConfig(input: unknown, env: NodeJS.ProcessEnv, options: { type?: JobType; source?: string } = {}): WorkerConfig {
  return workerConfig.resolve(input, env, options);
}

export function loadWorkerConfig(path: string | undefined, env: NodeJS.ProcessEnv, options: { type?: JobType } = {}): WorkerConfig {
  return workerConfig.load(path, env, options);
}

/**
 * The variables of the system Sluice replaces that a worker of any registered
 * job type reads (the `x-env` leaves of the contract, in schema order); the
 * job's own name variables (SLUICE_JOB_*) left out. `sluice run --help` lists these.
 */
export function workerVariables(): string[] {
  const names = jobTypes.types().flatMap((type) => workerConfig.envFor(type).map((b) => b.name));
  return [...new Set(names)].filter((name) => !name.startsWith('SLUICE_'));
}

export { WorkerConfigError } from '../lib/worker-config/resolve.js';
export { credentialsFromEnv, type WorkerConfig, type WorkerCredentials } from '../lib/worker-config/config.js';
