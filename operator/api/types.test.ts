import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { crdPath, generatedTypesPath, snapshotCrdPath, snapshotTypesPath } from './paths.js';
import { generateTypes, loadCrdSchema, type JsonSchema } from './schema-to-ts.js';

function walk(schema: JsonSchema, path: string, visit: (path: string, s: JsonSchema) => void): void {
  visit(path, schema);
  for (const [k, v] of Object.entries(schema.properties ?? {})) walk(v, `${path}.${k}`, visit);
  if (schema.items) walk(schema.items, `${path}[]`, visit);
}

/** Every field of a CRD's spec and status. */
function walkFields(schema: JsonSchema, visit: (path: string, s: JsonSchema) => void): void {
  walk(schema.properties!.spec!, 'spec', visit);
  walk(schema.properties!.status!, 'status', visit);
}

/** The fields of a CRD (but array items) that have no description. */
function undocumented(crd: string): string[] {
  const missing: string[] = [];
  walkFields(loadCrdSchema(crd), (p, s) => s.description || p.endsWith('[]') || missing.push(p));
  return missing;
}

describe('ProcessingJob API types', () => {
  it('match the CRD schema (regenerate with npx tsx operator/api/generate-types.ts)', () => {
    const expected = generateTypes(loadCrdSchema(crdPath));
    expect(readFileSync(generatedTypesPath, 'utf8')).toBe(expected);
  });

  it('match the snapshot CRD schema too', () => {
    const expected = generateTypes(loadCrdSchema(snapshotCrdPath), 'ProcessingJobSnapshot', 'crds/processingjobsnapshots.sluice.dev.yaml');
    expect(readFileSync(snapshotTypesPath, 'utf8')).toBe(expected);
  });

  it('describes every field of the snapshot API', () => {
    expect(undocumented(snapshotCrdPath)).toEqual([]);
  });

  it('declares every spec and status field in the generated types', () => {
    const generated = readFileSync(generatedTypesPath, 'utf8');
    const schema = loadCrdSchema(crdPath);
    const fields: string[] = [];
    walkFields(schema, (p) => fields.push(p.split('.').pop()!.replace('[]', '')));
    for (const f of fields.filter((f) => f !== 'spec' && f !== 'status')) {
      expect(generated, `field ${f}`).toMatch(new RegExp(`\\b${f}\\??: `));
    }
  });

  it('describes every field, so kubectl explain helps', () => {
    expect(undocumented(crdPath)).toEqual([]);
  });

  it('says the default in the description of every field that has one (kubectl explain shows no schema default)', () => {
    const schema = loadCrdSchema(crdPath);
    const silent: string[] = [];
    walk(schema.properties!.spec!, 'spec', (p, s) => {
      if (s.default === undefined || typeof s.default === 'object') return;
      const shown = s.default === '' ? "''" : String(s.default);
      if (!s.description?.includes(`Defaults to ${shown}`)) silent.push(`${p} (default ${shown})`);
    });
    expect(silent).toEqual([]);
  });

  it('makes a field with a schema default required, and one without optional', () => {
    const out = generateTypes({
      type: 'object',
      properties: {
        spec: { type: 'object', properties: { a: { type: 'integer', default: 1 }, b: { type: 'string' } } },
        status: { type: 'object', properties: { c: { type: 'string', enum: ['X', 'Y'] } } },
      },
    });
    expect(out).toContain('  a: number;');
    expect(out).toContain('  b?: string;');
    expect(out).toContain('  c?: "X" | "Y";');
  });
});
