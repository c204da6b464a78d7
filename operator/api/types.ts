import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { ProcessingJobSpec, ProcessingJobStatus } from './types.generated.js';
import type { ProcessingJobSnapshotSpec, ProcessingJobSnapshotStatus } from './snapshot-types.generated.js';

export type * from './types.generated.js';
export type * from './snapshot-types.generated.js';

export const GROUP = 'sluice.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ProcessingJob';
export const PLURAL = 'processingjobs';
export const SNAPSHOT_KIND = 'ProcessingJobSnapshot';
export const SNAPSHOT_PLURAL = 'processingjobsnapshots';

/** An object of one of the CRDs as read from the API server (defaults already applied by the schema). */
export interface SluiceObject<Kind extends string, Spec, Status> {
  apiVersion: typeof API_VERSION;
  kind: Kind;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: Spec;
  status?: Status;
}

/** A ProcessingJob (crds/processingjobs.sluice.dev.yaml). */
export type ProcessingJob = SluiceObject<typeof KIND, ProcessingJobSpec, ProcessingJobStatus>;

/** A snapshot of a job's state (crds/processingjobsnapshots.sluice.dev.yaml). */
export type ProcessingJobSnapshot = SluiceObject<typeof SNAPSHOT_KIND, ProcessingJobSnapshotSpec, ProcessingJobSnapshotStatus>;

export type Condition = NonNullable<ProcessingJobStatus['conditions']>[number];
export type ConditionType = 'Ready' | 'Progressing' | 'Degraded' | 'ConfigValid' | 'Autoscaling';
export type Phase = NonNullable<ProcessingJobStatus['phase']>;

/** Annotations users set on a ProcessingJob. */
export const ANNOTATION_PAUSED = 'sluice.dev/paused';

/** Annotations and labels the operator sets on its children. */
export const ANNOTATION_CONFIG_HASH = 'sluice.dev/config-hash';
export const ANNOTATION_RESTART_NONCE = 'sluice.dev/restart-nonce';
export const LABEL_JOB = 'sluice.dev/job';
export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const WORKER_APP = 'sluice-worker';
export const MANAGER = 'sluice-operator';

/** Labels and finalizer of snapshots. */
export const LABEL_SNAPSHOT_ORIGIN = 'sluice.dev/snapshot-origin';
export const FINALIZER_SNAPSHOT_FILES = 'sluice.dev/snapshot-files';
/** Label of the task pods (snapshot, restore, delete) the operator runs on a job's volume. */
export const LABEL_TASK = 'sluice.dev/task';
