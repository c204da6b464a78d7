/**
 * A registered job type run in this process (`sluice demo`, tests): its
 * configuration resolved through the same contract as a worker's, then the
 * runtime's in-process runner.
 */
import { resolveWorkerConfig } from './config.js';
import { jobTypes } from './jobs/registry.js';
import { runJobInProcess, type InProcessOptions, type InProcessRun } from './runtime/in-process.js';

export interface LocalRunOptions extends Omit<InProcessOptions, 'definition' | 'config'> {
  type: string;
  /** Sections of the job type's configuration (cart: `{ cart: { abandonThreshold: 0.5 } }`); defaults otherwise. */
  settings?: Record<string, unknown>;
  /** An ONNX file instead of the bundled model. */
  modelPath?: string;
}

export function runInProcess({ type, settings, modelPath, ...rest }: LocalRunOptions): Promise<InProcessRun> {
  const config = resolveWorkerConfig(
    // No broker is contacted in process; the contract still wants one named.
    { job: { name: `demo-${type}`, type }, kafka: { bootstrapServers: ['localhost:9092'] }, model: modelPath ? { path: modelPath } : {}, ...settings },
    {},
    { source: `in-process ${type} job` },
  );
  return runJobInProcess({ ...rest, definition: jobTypes.get(type), config });
}
