/** The job-type knowledge the state tasks need: empty tables and states of the job's layout, no model. */
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import type { CheckpointIdentity } from '../state/checkpoints.js';
import { jobTypes } from '../jobs/registry.js';
import type { ScoreModel, StreamJob } from '../runtime/job.js';

const NO_MODEL: ScoreModel = {
  version: 'none',
  score: () => Promise.reject(new Error('state tasks read and write state; they never score')),
};

/** The job of `config`'s type, to read and write its state: no model, no outputs. */
export function taskJob(config: WorkerConfig): StreamJob {
  return jobTypes.get(config.job.type).job({ config, model: NO_MODEL, state: { backend: 'memory' } });
}

export const identityOf = (job: StreamJob, config: WorkerConfig, partition: number): CheckpointIdentity => ({
  jobType: job.type,
  topic: config.kafka.topic,
  partition,
  format: job.stateFormat,
});

/** What a worker (or a task) writes beside a snapshot's partition, last: the partition is complete. */
export interface PartitionSidecar {
  partition: number;
  /** -1: the partition had consumed nothing. */
  nextOffset: number;
  modelVersion?: string;
  savedAt: number;
  bytes: number;
  users: number;
}
