/**
 * The worker configuration: one YAML document (`worker.yaml`) that the operator
 * renders into the worker ConfigMap, `sluice run` renders for local processes
 * and the worker validates at start. Its shape, defaults, environment variables
 * and validation all come from one schema (schema.ts plus each job type's
 * fragment). Secrets never appear in it: credentials reach the worker as
 * environment variables (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD,
 * REDIS_PASSWORD, SMTP_USERNAME, SMTP_PASSWORD) from secretKeyRefs.
 */
import type { CommonConfig, CommonDocument } from './schema.js';
import type { SchemaNode } from './schema-kit.js';

/** A registered job type's name (`churn`, `cart`, ...): see workers/jobs/registry.ts. */
export type JobType = string;

/** A validated worker configuration: the shared sections, typed, plus the sections of its job type. */
export type WorkerConfig = CommonConfig & { [section: string]: unknown };

/** A configuration document as written (by the operator, `sluice run`, a test), before defaults. */
export type WorkerDocument = CommonDocument & { [section: string]: unknown };

/** What a job type adds to the worker configuration (declared in its folder, workers/jobs/<type>/config.ts). */
export interface JobConfigFragment {
  /** `job.type` in the document, `spec.type` of a ProcessingJob. */
  readonly type: JobType;
  /** Sections of the document only this type takes (cart: `cart` and `alerts`), with their defaults and `x-env` leaves. */
  readonly sections?: Readonly<Record<string, SchemaNode>>;
  /** The variable naming an ONNX file for this type instead of the bundled model (the seed's CHURN_MODEL_PATH...). */
  readonly modelPathEnv: string;
}

/** Credentials never live in the config document: they come from Secret-backed env vars. */
export interface WorkerCredentials {
  kafka: { username?: string; password?: string };
  redisPassword?: string;
  smtp: { username?: string; password?: string };
}

export function credentialsFromEnv(env: NodeJS.ProcessEnv): WorkerCredentials {
  return {
    kafka: { username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD },
    redisPassword: env.REDIS_PASSWORD || undefined,
    smtp: { username: env.SMTP_USERNAME, password: env.SMTP_PASSWORD },
  };
}
