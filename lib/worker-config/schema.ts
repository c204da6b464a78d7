/**
 * The worker configuration document (`worker.yaml`), the part every job type
 * shares. Its defaults are the ProcessingJob's (crds/): whichever way a worker
 * is started (a pod, `sluice run`, `sluice worker` alone) an absent field means
 * the same thing; a unit test fails when the two drift. A job type adds its own
 * sections (`JobConfigFragment`, in its folder under workers/jobs/).
 */
import type { Infer, InferInput, SchemaNode } from './schema-kit.js';

/** host:port, the host a name, an IPv4 address or a bracketed IPv6 address (no scheme, no path); the port is checked as 1-65535 after. */
const hostPort = { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:,\\[\\]/]+):\\d{1,5}$' } as const;
const topicName = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

export const commonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['job', 'kafka', 'redis', 'checkpoint'],
  properties: {
    job: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'type'],
      properties: {
        /** Default (environment only): `sluice-<type>`. */
        name: { type: 'string', minLength: 1, 'x-env': 'SLUICE_JOB_NAME' },
        namespace: { type: 'string', default: 'default', 'x-env': 'SLUICE_JOB_NAMESPACE' },
        /** One of the registered job types (the enum is added from the registry). */
        type: { type: 'string', 'x-env': 'SLUICE_JOB_TYPE' },
      },
    },
    kafka: {
      type: 'object',
      additionalProperties: false,
      required: ['bootstrapServers', 'topic', 'consumerGroup', 'deadLetterTopic'],
      properties: {
        bootstrapServers: { type: 'array', minItems: 1, items: hostPort, 'x-env': 'KAFKA_BOOTSTRAP_SERVERS' },
        topic: { ...topicName, default: 'user_events', 'x-env': 'KAFKA_TOPIC' },
        /** Default: `sluice-<namespace>-<name>` (names.ts). */
        consumerGroup: { type: 'string', minLength: 1, 'x-env': 'KAFKA_CONSUMER_GROUP' },
        /** Where a consumer group with no committed offset and no checkpoint starts. */
        startFrom: { enum: ['earliest', 'latest'], default: 'latest' },
        /** Default: `<topic>.dlq` (names.ts). */
        deadLetterTopic: topicName,
        /** Default: `sluice-<name>` (names.ts). */
        clientId: { type: 'string' },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled'],
          properties: {
            enabled: { type: 'boolean' },
            caFile: { type: 'string' },
            certFile: { type: 'string' },
            keyFile: { type: 'string' },
            insecureSkipVerify: { type: 'boolean' },
          },
        },
        /**
         * How long the group waits for a silent member before moving its partitions. Lower means
         * faster recovery after a crash; the broker's group.min.session.timeout.ms (6 s) is the floor.
         */
        sessionTimeoutSeconds: { type: 'number', minimum: 1, maximum: 1800, default: 30 },
        sasl: {
          type: 'object',
          additionalProperties: false,
          required: ['mechanism'],
          properties: { mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'] } },
        },
      },
    },
    redis: {
      type: 'object',
      additionalProperties: false,
      default: {},
      required: ['host', 'port'],
      properties: {
        host: { type: 'string', minLength: 1, default: 'localhost', 'x-env': 'REDIS_HOST', 'x-host': true },
        port: { ...port, default: 6379, 'x-env': 'REDIS_PORT' },
        db: { type: 'integer', minimum: 0, default: 0 },
        /** Prepended to every key the worker writes (`<prefix>user:<id>`). */
        keyPrefix: { type: 'string', default: '', 'x-env': 'REDIS_KEY_PREFIX' },
        /** Expiry of written keys; absent or 0 means no expiry. */
        ttlSeconds: { type: 'integer', minimum: 0 },
        tls: { type: 'boolean' },
      },
    },
    model: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Path of an ONNX file; absent means the model bundled for the job type (env: the type's `modelPathEnv`). */
        path: { type: 'string', minLength: 1 },
        /** Score at or above which a user's risk is `high` (churn; default 0.7). */
        threshold: { type: 'number', minimum: 0, maximum: 1 },
      },
    },
    checkpoint: {
      type: 'object',
      additionalProperties: false,
      default: {},
      required: ['dir'],
      properties: {
        /** The operator mounts the checkpoint volume here; a local worker checkpoints beside the process. */
        dir: { type: 'string', minLength: 1, default: 'checkpoints' },
        intervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 60 },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { port: { type: 'integer', minimum: 0, maximum: 65535, default: 9090 } },
    },
    /** How far ahead of this worker's clock an event may be dated; later ones are dead-lettered (the CRD's spec.eventTime). */
    eventTime: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { maxFutureSkewSeconds: { type: 'number', minimum: 0, default: 300 } },
    },
    /** Demos and tests: process at most this many events per second, the waiting counted as busy time (the CRD's spec.throttle). */
    throttle: {
      type: 'object',
      additionalProperties: false,
      required: ['eventsPerSecond'],
      properties: { eventsPerSecond: { type: 'number', exclusiveMinimum: 0, 'x-env': 'SLUICE_THROTTLE_EVENTS_PER_SECOND' } },
    },
    /** Where users' state lives between checkpoints; absent means in memory. */
    state: {
      type: 'object',
      additionalProperties: false,
      properties: {
        backend: { enum: ['memory', 'disk'], default: 'memory' },
        /** The disk backend's local directory (emptied at start: it is rebuilt from the checkpoints). */
        dir: { type: 'string', minLength: 1, default: 'state' },
        /** Memory for cached users per partition with the disk backend. */
        cacheMiB: { type: 'integer', minimum: 16, maximum: 65536, default: 256 },
      },
    },
  },
} as const satisfies SchemaNode;

/** The shared part of a worker's configuration, after defaults and validation. */
export type CommonConfig = Infer<typeof commonSchema>;

/** The shared part of a worker configuration document as written (the operator's, `sluice run`'s), before defaults. */
export type CommonDocument = InferInput<typeof commonSchema>;
