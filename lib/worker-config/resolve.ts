/**
 * Reading the worker configuration: the YAML document (or none), then the
 * environment variables on top, then the derived names, defaults and
 * validation in one pass, all from the one schema (schema.ts plus the job
 * type's fragment). Errors name the field (or the variable) and say what is
 * wrong, because a worker that refuses to start is read from its log.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { JobConfigFragment, JobType, WorkerConfig } from './config.js';
import { clientIdOf, consumerGroupOf, deadLetterTopicOf, defaultJobName } from './names.js';
import { commonSchema } from './schema.js';
import { envBindings, schemaLeaves, type EnvBinding, type SchemaNode } from './schema-kit.js';

export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError';
}

type Doc = Record<string, unknown>;

function documentOf(input: unknown, source: string): Doc {
  if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) {
    throw new WorkerConfigError(`${source}: the document must be a mapping of job, kafka, redis, checkpoint...`);
  }
  return structuredClone((input ?? {}) as Doc);
}

function fieldOf(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  let leaf: string | undefined;
  if (e.keyword === 'required') leaf = String(e.params.missingProperty);
  if (e.keyword === 'additionalProperties') leaf = String(e.params.additionalProperty);
  if (leaf === undefined) return path || '(document)';
  return path ? `${path}.${leaf}` : leaf;
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

function envValue(binding: EnvBinding, raw: string): unknown {
  if (binding.kind === 'list') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (binding.kind === 'string') return raw;
  const value = Number(raw);
  const integer = binding.kind === 'integer';
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new WorkerConfigError(`environment variable ${binding.name}=${JSON.stringify(raw)} is not ${integer ? 'an integer' : 'a number'}`);
  }
  return value;
}

function withoutDefault(schema: SchemaNode): SchemaNode {
  const copy = { ...schema };
  delete copy.default;
  return copy;
}

function setPath(doc: Doc, path: readonly string[], value: unknown): void {
  let at = doc;
  for (const key of path.slice(0, -1)) at = section(at, key);
  at[path[path.length - 1]!] = value;
}

/** A broker's port must be 1-65535: the pattern only says it has up to five digits. */
function refuseBadPorts(config: WorkerConfig, origins: Origins, source: string): void {
  config.kafka.bootstrapServers.forEach((server, i) => {
    const port = Number(server.slice(server.lastIndexOf(':') + 1));
    if (port >= 1 && port <= 65535) return;
    const origin = origins.get('kafka.bootstrapServers');
    const value = origin ? `${JSON.stringify(server)} of ${origin.variable}=${JSON.stringify(origin.value)} (from the environment)` : JSON.stringify(server);
    throw new WorkerConfigError(`${source} is invalid:\n  - kafka.bootstrapServers.${i}: ${value} has port ${port}, outside 1-65535 (Kafka usually listens on 9092)`);
  });
}

function valueAt(doc: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((at, key) => (at !== null && typeof at === 'object' ? (at as Doc)[key] : undefined), doc);
}

/** A host field (`x-host` in the schema: redis.host, alerts.smtp.host) is a host alone, never a URL. */
function refuseSchemes(schema: SchemaNode, config: WorkerConfig, origins: Origins, source: string): void {
  for (const { path, node } of schemaLeaves(schema)) {
    if (!node['x-host']) continue;
    const host = valueAt(config, path);
    if (typeof host !== 'string' || !host.includes('://')) continue;
    const field = path.join('.');
    const origin = origins.get(field);
    const value = origin ? `${origin.variable}=${JSON.stringify(origin.value)} (from the environment)` : JSON.stringify(host);
    throw new WorkerConfigError(`${source} is invalid:\n  - ${field}: ${value} has a scheme: write the host alone, for example redis.shop.svc (the port is a field of its own)`);
  }
}

/**
 * The configuration contract over a set of job types: `fragments` is read at
 * each call, so a type registered later (a test's) is known at once.
 */
export class WorkerConfigContract {
  private readonly compiled = new Map<string, { key: string; validate: ValidateFunction }>();

  constructor(private readonly fragments: () => readonly JobConfigFragment[]) {}

  /** The full schema of a document whose job.type is `type` (unknown type: the shared part only). */
  schemaFor(type: JobType | undefined): SchemaNode {
    const all = this.fragments();
    const properties: Record<string, SchemaNode> = { ...commonSchema.properties };
    properties.job = {
      ...commonSchema.properties.job,
      properties: { ...commonSchema.properties.job.properties, type: { enum: all.map((f) => f.type) } },
    };
    for (const fragment of all) {
      for (const [name, schema] of Object.entries(fragment.sections ?? {})) {
        // Another type's section validates as written but gets no defaults; resolve() then refuses it by name.
        properties[name] = fragment.type === type ? schema : withoutDefault(schema);
      }
    }
    return { ...commonSchema, properties };
  }

  /** The environment variables the configuration of `type` reads, in schema order. */
  envFor(type: JobType | undefined): EnvBinding[] {
    const fragment = this.fragments().find((f) => f.type === type);
    const bindings = envBindings(commonSchema);
    if (fragment) {
      bindings.push({ name: fragment.modelPathEnv, path: ['model', 'path'], kind: 'string' });
      for (const [name, schema] of Object.entries(fragment.sections ?? {})) bindings.push(...envBindings(schema, [name]));
    }
    return bindings;
  }

  private validator(type: JobType | undefined): ValidateFunction {
    const schema = this.schemaFor(type);
    const key = JSON.stringify(schema);
    const cached = this.compiled.get(type ?? '');
    if (cached?.key === key) return cached.validate;
    // verbose: the rejected value is in each error, so a message can quote it.
    const validate = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true }).compile(schema);
    this.compiled.set(type ?? '', { key, validate });
    return validate;
  }

  /** Validates a config document (already parsed) with the environment applied; `source` only serves the error message. */
  resolve(input: unknown, env: NodeJS.ProcessEnv, options: { type?: JobType; source?: string } = {}): WorkerConfig {
    const source = options.source ?? 'worker config';
    const doc = documentOf(input, source);
    const origins: Origins = new Map();
    const type = this.applyEnv(doc, env, options.type, origins);
    this.applyDerivedNames(doc);
    const validate = this.validator(type);
    if (!validate(doc)) {
      const problems = [...new Set((validate.errors ?? []).map((e) => describe(e, origins)))];
      throw new WorkerConfigError(`${source} is invalid:\n  - ${problems.join('\n  - ')}`);
    }
    const config = doc as unknown as WorkerConfig;
    refuseBadPorts(config, origins, source);
    refuseSchemes(this.schemaFor(type), config, origins, source);
    this.refuseForeignSections(config, source);
    if (config.kafka.deadLetterTopic === config.kafka.topic) {
      throw new WorkerConfigError(`${source} is invalid:\n  - kafka.deadLetterTopic: must differ from kafka.topic ('${config.kafka.topic}')`);
    }
    return config;
  }

  /** The job type (an explicit `type` wins over SLUICE_JOB_TYPE and the document), then every variable of that type over the document. */
  private applyEnv(doc: Doc, env: NodeJS.ProcessEnv, explicitType: JobType | undefined, origins: Origins): JobType | undefined {
    const job = section(doc, 'job');
    const fromEnv = env.SLUICE_JOB_TYPE?.trim() ? env.SLUICE_JOB_TYPE : undefined;
    const chosen = explicitType ?? fromEnv;
    if (chosen) job.type = chosen;
    const type = typeof job.type === 'string' ? job.type : undefined;
    for (const binding of this.envFor(type)) {
      const raw = env[binding.name];
      if (binding.name === 'SLUICE_JOB_TYPE' || raw === undefined || raw.trim() === '') continue;
      // A variable sets a field of a section the document has; it never creates a nested optional one (SMTP_HOST: no alerts).
      if (binding.path.length > 2 && !hasPath(doc, binding.path.slice(0, -1))) continue;
      setPath(doc, binding.path, envValue(binding, raw));
      origins.set(binding.path.join('.'), { variable: binding.name, value: raw });
    }
    return type;
  }

  /** Reads the YAML file at `path` (none: everything from the environment and defaults), applies the environment and validates. */
  load(path: string | undefined, env: NodeJS.ProcessEnv, options: { type?: JobType } = {}): WorkerConfig {
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
    return this.resolve(input, env, { type: options.type, source: path ? `worker config ${path}` : 'worker config (environment only)' });
  }

  /** Names that depend on other fields (a JSON-schema default cannot say "<topic>.dlq"): names.ts computes them. */
  private applyDerivedNames(doc: Doc): void {
    const job = section(doc, 'job');
    const kafka = section(doc, 'kafka');
    if (typeof job.type === 'string' && job.name === undefined) job.name = defaultJobName(job.type);
    if (typeof job.name !== 'string') return;
    const identity = { name: job.name, namespace: typeof job.namespace === 'string' ? job.namespace : undefined };
    if (kafka.consumerGroup === undefined) kafka.consumerGroup = consumerGroupOf(identity);
    if (kafka.clientId === undefined) kafka.clientId = clientIdOf(identity);
    const topic = kafka.topic ?? commonSchema.properties.kafka.properties.topic.default;
    if (kafka.deadLetterTopic === undefined && typeof topic === 'string') kafka.deadLetterTopic = deadLetterTopicOf(topic);
  }

  private refuseForeignSections(config: WorkerConfig, source: string): void {
    for (const fragment of this.fragments()) {
      if (fragment.type === config.job.type) continue;
      for (const name of Object.keys(fragment.sections ?? {})) {
        if (config[name] !== undefined) {
          throw new WorkerConfigError(`${source} is invalid:\n  - ${name}: only allowed when job.type is '${fragment.type}' (it is '${config.job.type}')`);
        }
      }
    }
  }
}

function hasPath(doc: Doc, path: readonly string[]): boolean {
  let at: unknown = doc;
  for (const key of path) {
    if (!at || typeof at !== 'object') return false;
    at = (at as Doc)[key];
  }
  return at !== undefined && at !== null && typeof at === 'object';
}
