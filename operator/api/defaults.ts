import type { JsonSchema } from './schema-to-ts.js';

/**
 * Applies the schema's defaults the way the API server does: a default fills an
 * absent field, and defaulted objects get their own fields' defaults. For code
 * that reads a ProcessingJob that did not come through an API server (unit
 * tests, local runs).
 */
export function applyDefaults<T>(schema: JsonSchema, value: T): T {
  if (Array.isArray(value)) {
    return value.map((item: unknown) => (schema.items ? applyDefaults(schema.items, item) : item)) as T;
  }
  if (value === null || typeof value !== 'object' || !schema.properties) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [field, sub] of Object.entries(schema.properties)) {
    if (out[field] === undefined && sub.default !== undefined) out[field] = structuredClone(sub.default);
    if (out[field] !== undefined) out[field] = applyDefaults(sub, out[field]);
  }
  return out as T;
}
