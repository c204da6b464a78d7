/**
 * Names derived from a job's identity, computed here and nowhere else: the
 * operator renders them, `sluice run` and `sluice worker` derive the same, and
 * the operator's lag observer reads the group they name.
 */
import { join } from 'node:path';

export interface JobIdentity {
  name: string;
  namespace?: string;
}

export const DEFAULT_NAMESPACE = 'default';

/** The consumer group of a job that names none: `sluice-<namespace>-<name>`. */
export const consumerGroupOf = (job: JobIdentity): string => `sluice-${job.namespace ?? DEFAULT_NAMESPACE}-${job.name}`;

/** The dead-letter topic of a job that names none: `<topic>.dlq`. */
export const deadLetterTopicOf = (topic: string): string => `${topic}.dlq`;

/** The Kafka client id of a job's workers: `sluice-<name>`. */
export const clientIdOf = (job: JobIdentity): string => `sluice-${job.name}`;

/** The job name of a worker started from the environment alone: `sluice-<type>`. */
export const defaultJobName = (type: string): string => `sluice-${type}`;

const safe = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, '_');

/** The directory of one group's checkpoints of one topic: `<dir>/<group>/<topic>`. */
export const checkpointDirOf = (root: string, group: string, topic: string): string => join(root, safe(group), safe(topic));

/** The checkpoints of one partition (manifests, base and deltas): `<dir>/<group>/<topic>/<partition>/`. */
export const checkpointPartitionDirOf = (root: string, group: string, topic: string, partition: number): string =>
  join(checkpointDirOf(root, group, topic), String(partition));
