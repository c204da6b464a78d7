import { applyDefaults } from './defaults.js';
import { crdPath } from './paths.js';
import { loadCrdSchema } from './schema-to-ts.js';
import { API_VERSION, KIND, type ProcessingJob, type ProcessingJobSpec, type ProcessingJobSpecAutoscaling } from './types.js';

/** What a user writes: spec fields the schema defaults may be left out. */
export type SpecInput = Partial<Omit<ProcessingJobSpec, 'kafka' | 'redis'>> & {
  kafka: Partial<ProcessingJobSpec['kafka']> & { bootstrapServers: string[] };
  redis: Partial<ProcessingJobSpec['redis']> & { host: string };
  type: ProcessingJobSpec['type'];
};

/** The smallest valid churn job, as a user would write it (docs/api.md shows it). */
export const minimalSpec = (): SpecInput => ({
  type: 'churn',
  kafka: { bootstrapServers: ['kafka:9092'] },
  redis: { host: 'redis' },
});

/** A job as the API server would return it: schema defaults applied. */
export function defaultedJob(name: string, namespace: string, spec: SpecInput, uid = '00000000-0000-0000-0000-000000000001'): ProcessingJob {
  const manifest = { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace, uid, generation: 1 }, spec };
  return applyDefaults(loadCrdSchema(crdPath), manifest) as ProcessingJob;
}

/** spec.autoscaling as the API server fills it in when a job names none of its fields: the CRD's defaults. */
export function autoscalingDefaults(): ProcessingJobSpecAutoscaling {
  return applyDefaults(loadCrdSchema(crdPath).properties!.spec!.properties!.autoscaling!, {}) as ProcessingJobSpecAutoscaling;
}
