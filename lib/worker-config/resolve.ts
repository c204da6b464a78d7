/**
 * Reading the worker configuration: the YAML document the operator renders
 * (or none), then the seed's environment variables on top, then defaults and
 * validation in one pass. Errors name the field (or the variable) and say what
 * is wrong, because a worker that refuses to start is read from its log.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { JobType, WorkerConfig } from './config.js';

export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError';
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

const hostPort = { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:,\\[\\]/]+):\\d{1,5}$' };
const port = { type: 'integer', minimum: 0, maximum: 65535 };

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['job', 'kafka', 'redis', 'checkpoint'],
  properties: {
    job: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'type'],
      properties: {
        name: { type: 'string', minLength: 1 },
        namespace: { type: 'string' },
        type: { enum: ['churn', 'cart'] },
      },
    },
    kafka: {
      type: 'object',
      additionalProperties: false,
      required: ['bootstrapServers', 'topic', 'consumerGroup'],
      properties: {
        bootstrapServers: { type: 'array', minItems: 1, items: hostPort },
        topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
        consumerGroup: { type: 'string', minLength: 1 },
        startFrom: { enum: ['earliest', 'latest'], default: 'earliest' },
        deadLetterTopic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
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
        sessionTimeoutSeconds: { type: 'number', minimum: 1, maximum: 1800 },
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
      required: ['host', 'port'],
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { ...port, minimum: 1 },
        db: { type: 'integer', minimum: 0 },
        keyPrefix: { type: 'string', default: '' },
        ttlSeconds: { type: 'integer', minimum: 0 },
        tls: { type: 'boolean' },
      },
    },
    model: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { path: { type: 'string', minLength: 1 }, threshold: { type: 'number', minimum: 0, maximum: 1 } },
    },
    checkpoint: {
      type: 'object',
      additionalProperties: false,
      required: ['dir'],
      properties: {
        dir: { type: 'string', minLength: 1 },
        intervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 10 },
      },
    },
    state: {
      type: 'object',
      additionalProperties: false,
      properties: {
        backend: { enum: ['memory', 'disk'], default: 'memory' },
        dir: { type: 'string', minLength: 1, default: 'state' },
        cacheMiB: { type: 'integer', minimum: 16, maximum: 65536, default: 256 },
      },
    },
    eventTime: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { maxFutureSkewSeconds: { type: 'number', minimum: 0, default: 300 } },
    },
    cart: {
      type: 'object',
      additionalProperties: false,
      properties: {
        abandonWindowMinutes: { type: 'number', exclusiveMinimum: 0, default: 60 },
        abandonThreshold: { type: 'number', minimum: 0, maximum: 1, default: 0.75 },
      },
    },
    alerts: {
      type: 'object',
      additionalProperties: false,
      required: ['smtp', 'from', 'to'],
      properties: {
        smtp: {
          type: 'object',
          additionalProperties: false,
          required: ['host', 'port'],
          properties: {
            host: { type: 'string', minLength: 1 },
            port: { ...port, minimum: 1 },
            secure: { type: 'boolean', default: false },
          },
        },
        from: { type: 'string', minLength: 3 },
        to: { type: 'array', minItems: 1, items: { type: 'string', minLength: 3 } },
        delivery: { enum: ['at-most-once', 'at-least-once'], default: 'at-most-once' },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { port: { ...port, default: 9102 } },
    },
  },
} as const;

// verbose: the rejected value is in each error, so a message can quote it.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const validate = ajv.compile(schema);

function fieldOf(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') return path ? `${path}.${String(e.params.missingProperty)}` : String(e.params.missingProperty);
  if (e.keyword === 'additionalProperties') {
    const extra = String(e.params.additionalProperty);
    return path ? `${path}.${extra}` : extra;
  }
  return path || '(document)';
}

/** Which fields the environment set, and from which variable (`kafka.topic` -> `KAFKA_TOPIC`). */
type Origins = Map<string, { variable: string; value: string }>;

/** What a valid value looks like, for the fields whose pattern alone would say little. */
function expected(field: string): string {
  if (field.startsWith('kafka.bootstrapServers')) return 'is not host:port: write a broker such as kafka:9092 or 10.0.0.5:9092';
  if (field === 'kafka.topic' || field === 'kafka.deadLetterTopic') {
    return "is not a Kafka topic name: use letters, digits, '.', '_' and '-' (at most 249), for example user_events";
  }
  return 'is not valid';
}

function describe(e: ErrorObject, origins: Origins): string {
  const field = fieldOf(e);
  const origin = origins.get(field) ?? origins.get(field.replace(/\.\d+$/, ''));
  if (origin && e.keyword !== 'required' && e.keyword !== 'additionalProperties') {
    // The value came from a variable: say so, with its value, rather than blame the document.
    const what = e.keyword === 'pattern' ? expected(field) : (e.message ?? 'is invalid');
    return `${field}: ${origin.variable}=${JSON.stringify(origin.value)} (from the environment) ${what}`;
  }
  switch (e.keyword) {
    case 'required':
      return `${field}: is required`;
    case 'additionalProperties':
      return `${field}: unknown field (check the spelling)`;
    case 'enum':
      return `${field}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${field}: ${JSON.stringify(e.data)} ${expected(field)}`;
    default:
      return `${field}: ${e.message ?? 'is invalid'}`;
  }
}

type Doc = Record<string, unknown>;

function section(doc: Doc, key: string): Doc {
  const value = doc[key];
  if (value === undefined || value === null) {
    const created: Doc = {};
    doc[key] = created;
    return created;
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new WorkerConfigError(`${key}: must be a mapping`);
  return value as Doc;
}

function envNumber(env: NodeJS.ProcessEnv, name: string, integer: boolean): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new WorkerConfigError(`environment variable ${name}=${JSON.stringify(raw)} is not ${integer ? 'an integer' : 'a number'}`);
  }
  return value;
}

/** The seed's variables, which override the document (same names as the PyFlink jobs). */
function applyEnv(doc: Doc, env: NodeJS.ProcessEnv, origins: Origins): void {
  const job = section(doc, 'job');
  const kafka = section(doc, 'kafka');
  const redis = section(doc, 'redis');
  const from = (field: string, variable: string): void => void origins.set(field, { variable, value: env[variable] ?? '' });
  if (env.KAFKA_BOOTSTRAP_SERVERS) {
    kafka.bootstrapServers = env.KAFKA_BOOTSTRAP_SERVERS.split(',').map((s) => s.trim()).filter(Boolean);
    from('kafka.bootstrapServers', 'KAFKA_BOOTSTRAP_SERVERS');
  }
  if (env.KAFKA_TOPIC) {
    kafka.topic = env.KAFKA_TOPIC;
    from('kafka.topic', 'KAFKA_TOPIC');
  }
  if (env.REDIS_HOST) {
    redis.host = env.REDIS_HOST;
    from('redis.host', 'REDIS_HOST');
  }
  const redisPort = envNumber(env, 'REDIS_PORT', true);
  if (redisPort !== undefined) {
    redis.port = redisPort;
    from('redis.port', 'REDIS_PORT');
  }
  const modelVar = job.type === 'cart' ? 'CART_MODEL_PATH' : job.type === 'churn' ? 'CHURN_MODEL_PATH' : undefined;
  if (modelVar && env[modelVar]) section(doc, 'model').path = env[modelVar];
  if (job.type === 'cart') {
    const threshold = envNumber(env, 'CART_ABANDON_THRESHOLD', false);
    const window = envNumber(env, 'ABANDON_WINDOW_MIN', false);
    if (threshold !== undefined) {
      section(doc, 'cart').abandonThreshold = threshold;
      from('cart.abandonThreshold', 'CART_ABANDON_THRESHOLD');
    }
    if (window !== undefined) {
      section(doc, 'cart').abandonWindowMinutes = window;
      from('cart.abandonWindowMinutes', 'ABANDON_WINDOW_MIN');
    }
  }
}

/** Defaults that depend on other fields (a JSON-schema default cannot say "<topic>.dlq"). */
function applyDerivedDefaults(doc: Doc): void {
  const job = section(doc, 'job');
  const kafka = section(doc, 'kafka');
  if (typeof job.type === 'string' && job.name === undefined) job.name = `sluice-${job.type}`;
  if (kafka.consumerGroup === undefined && typeof job.name === 'string') kafka.consumerGroup = `sluice-${job.name}`;
  if (kafka.topic === undefined) kafka.topic = 'user_events';
  if (kafka.deadLetterTopic === undefined && typeof kafka.topic === 'string') kafka.deadLetterTopic = `${kafka.topic}.dlq`;
  const redis = section(doc, 'redis');
  const checkpoint = section(doc, 'checkpoint');
  // Local runs from the environment alone checkpoint beside the process; the operator always sets it.
  if (checkpoint.dir === undefined) checkpoint.dir = 'checkpoints';
  if (redis.host === undefined) redis.host = 'localhost';
  if (redis.port === undefined) redis.port = 6379;
  if (job.type === 'cart' && doc.cart === undefined) doc.cart = {};
}

/**
 * Validates a config document (already parsed) with the environment applied;
 * `source` only serves the error message.
 */
export function resolveWorkerConfig(
  input: unknown,
  env: NodeJS.ProcessEnv,
  options: { type?: JobType; source?: string } = {},
): WorkerConfig {
  const source = options.source ?? 'worker config';
  if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) {
    throw new WorkerConfigError(`${source}: the document must be a mapping of job, kafka, redis, checkpoint...`);
  }
  const doc: Doc = structuredClone((input ?? {}) as Doc);
  if (options.type) section(doc, 'job').type = options.type;
  const origins: Origins = new Map();
  applyEnv(doc, env, origins);
  applyDerivedDefaults(doc);
  if (!validate(doc)) {
    const problems = [...new Set((validate.errors ?? []).map((e) => describe(e, origins)))];
    throw new WorkerConfigError(`${source} is invalid:\n  - ${problems.join('\n  - ')}`);
  }
  const config = doc as unknown as WorkerConfig;
  config.kafka.bootstrapServers.forEach((server, i) => {
    const port = Number(server.slice(server.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) {
      const origin = origins.get('kafka.bootstrapServers');
      const value = origin ? `${JSON.stringify(server)} of ${origin.variable}=${JSON.stringify(origin.value)} (from the environment)` : JSON.stringify(server);
      throw new WorkerConfigError(`${source} is invalid:\n  - kafka.bootstrapServers.${i}: ${value} has port ${port}, outside 1-65535 (Kafka usually listens on 9092)`);
    }
  });
  for (const [field, host] of [['redis.host', config.redis.host], ['alerts.smtp.host', config.alerts?.smtp.host]] as const) {
    if (host?.includes('://')) {
      const origin = origins.get(field);
      const value = origin ? `${origin.variable}=${JSON.stringify(origin.value)} (from the environment)` : JSON.stringify(host);
      throw new WorkerConfigError(`${source} is invalid:\n  - ${field}: ${value} has a scheme: write the host alone, for example redis.shop.svc (the port is a field of its own)`);
    }
  }
  for (const cartOnly of ['cart', 'alerts'] as const) {
    if (config.job.type !== 'cart' && config[cartOnly] !== undefined) {
      throw new WorkerConfigError(`${source} is invalid:\n  - ${cartOnly}: only allowed when job.type is 'cart' (it is '${config.job.type}')`);
    }
  }
  if (config.kafka.deadLetterTopic === config.kafka.topic) {
    throw new WorkerConfigError(`${source} is invalid:\n  - kafka.deadLetterTopic: must differ from kafka.topic ('${config.kafka.topic}')`);
  }
  return config;
}

/**
 * Reads the YAML file at `path` (none: everything from the environment and
 * defaults), applies the seed's environment variables and validates.
 */
export function loadWorkerConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv,
  options: { type?: JobType } = {},
): WorkerConfig {
  let input: unknown = undefined;
  if (path !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new WorkerConfigError(`cannot read worker config ${path}: ${(err as Error).message}`);
    }
    try {
      input = parseYaml(text);
    } catch (err) {
      throw new WorkerConfigError(`worker config ${path} is not valid YAML: ${(err as Error).message}`);
    }
  }
  return resolveWorkerConfig(input, env, { type: options.type, source: path ? `worker config ${path}` : 'worker config (environment only)' });
}
