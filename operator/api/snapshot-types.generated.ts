// Generated from crds/processingjobsnapshots.sluice.dev.yaml by operator/api/generate-types.ts. Do not edit.
// Regenerate: npx tsx operator/api/generate-types.ts

/** Which job to snapshot. */
export interface ProcessingJobSnapshotSpec {
  /** The ProcessingJob in this namespace whose state is copied. Immutable. */
  jobName: string;
  /** Keep the snapshot's files on the checkpoint volume when this resource is deleted (they are removed with the volume itself when the job goes). Defaults to false. */
  retainFiles: boolean;
  /** How long taking the snapshot may take before it counts as Failed. Defaults to 300. */
  timeoutSeconds: number;
}

/** What the operator observed. */
export interface ProcessingJobSnapshotStatus {
  /** Pending (waiting for the job), Running (the task pod copies the state), Completed (usable), Failed (see message; delete it and take another). */
  phase?: "Pending" | "Running" | "Completed" | "Failed";
  /** What happened, in a sentence. */
  message?: string;
  /** When the operator started the copy. */
  requestedAt?: string;
  /** When the state was copied (the point in time the snapshot holds). */
  takenAt?: string;
  /** metadata.generation of the job's spec when the snapshot was taken. */
  jobGeneration?: number;
  /** churn or cart. */
  jobType?: string;
  /** The model the job was scoring with. */
  modelVersion?: string;
  /** The state layout and version that wrote the state (for example 'churn v1'); a job reading another one refuses it. */
  stateFormat?: string;
  /** Number of features the state was built for. */
  features?: number;
  /** The topic whose offsets these are. */
  topic?: string;
  /** Partitions in the snapshot. */
  partitions?: number;
  /** Bytes on the checkpoint volume. */
  sizeBytes?: number;
  /** sizeBytes for people (for example 12.4Mi). */
  size?: string;
  /** The next offset of each partition, by partition number (-1 where nothing was consumed yet). */
  offsets?: number[];
  /** Who asked for it - a user, spec.snapshots of the job, or an upgrade of the job (spec.upgrade). */
  origin?: "manual" | "scheduled" | "upgrade";
  /** Where the files are on the job's checkpoint volume. */
  path?: string;
}
