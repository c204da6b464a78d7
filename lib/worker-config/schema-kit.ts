/**
 * The small JSON-schema dialect the worker configuration is written in. One
 * schema value gives everything: the TypeScript type (`Infer`), the defaults
 * (`default`, applied by Ajv), the environment variables (`x-env` on a leaf)
 * and the validation (Ajv compiles the same value).
 */

export interface SchemaNode {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Readonly<Record<string, SchemaNode>>;
  required?: readonly string[];
  additionalProperties?: boolean;
  items?: SchemaNode;
  enum?: readonly unknown[];
  default?: unknown;
  pattern?: string;
  minLength?: number;
  minItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  /** The environment variable that overrides this leaf (lists: comma-separated). */
  'x-env'?: string;
  /** A host name or address alone: a value with a scheme (`redis://...`) is refused by name. */
  'x-host'?: boolean;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type RequiredKeys<S> = S extends { required: readonly (infer R)[] } ? R : never;
type DefaultedKeys<P> = { [K in keyof P]: P[K] extends { default: unknown } ? K : never }[keyof P];
/** After validation a defaulted field is present; in a document a user writes only the required ones are. */
type PresentKeys<S, P, Mode> = Mode extends 'output' ? RequiredKeys<S> | DefaultedKeys<P> : RequiredKeys<S>;

type ObjectOf<S, P, Mode> = Simplify<
  { -readonly [K in keyof P as K extends PresentKeys<S, P, Mode> ? K : never]: Of<P[K], Mode> } & {
    -readonly [K in keyof P as K extends PresentKeys<S, P, Mode> ? never : K]?: Of<P[K], Mode>;
  }
>;

type Of<S, Mode> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'integer' | 'number' }
      ? number
      : S extends { type: 'boolean' }
        ? boolean
        : S extends { type: 'array'; items: infer I }
          ? Of<I, Mode>[]
          : S extends { type: 'object'; properties: infer P }
            ? ObjectOf<S, P, Mode>
            : unknown;

/** The TypeScript type of a value that passed validation against S (defaults applied). */
export type Infer<S> = Of<S, 'output'>;

/** The TypeScript type of a document written against S, before defaults. */
export type InferInput<S> = Of<S, 'input'>;

/** One environment variable and the field it sets. */
export interface EnvBinding {
  name: string;
  path: string[];
  kind: 'string' | 'integer' | 'number' | 'list';
}

/** Every `x-env` leaf of a schema, with the path below `prefix`. */
export function envBindings(schema: SchemaNode, prefix: string[] = []): EnvBinding[] {
  const out: EnvBinding[] = [];
  const env = schema['x-env'];
  if (env) {
    const kind = schema.type === 'array' ? 'list' : schema.type === 'integer' || schema.type === 'number' ? schema.type : 'string';
    out.push({ name: env, path: prefix, kind });
  }
  for (const [key, sub] of Object.entries(schema.properties ?? {})) out.push(...envBindings(sub, [...prefix, key]));
  return out;
}

/** Every leaf of a schema (a node without properties), with its path below `prefix`. */
export function schemaLeaves(schema: SchemaNode, prefix: string[] = []): Array<{ path: string[]; node: SchemaNode }> {
  if (!schema.properties) return prefix.length ? [{ path: prefix, node: schema }] : [];
  return Object.entries(schema.properties).flatMap(([key, sub]) => schemaLeaves(sub, [...prefix, key]));
}

/** The `default` of every leaf that has one, by dotted path (for docs and the drift test against the CRD). */
export function leafDefaults(schema: SchemaNode, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (sub.properties) for (const [p, v] of leafDefaults(sub, path)) out.set(p, v);
    else if (sub.default !== undefined) out.set(path, sub.default);
  }
  return out;
}
