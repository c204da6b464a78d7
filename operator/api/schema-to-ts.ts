import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/**
 * Turns the CRD's openAPIV3Schema into TypeScript interfaces, so the operator's
 * types cannot drift from the API: `generate-types.ts` writes the file, and a
 * unit test regenerates it and compares.
 *
 * A field is required in the type when the schema requires it or gives it a
 * default: the API server fills defaults before the operator ever reads the
 * object.
 */
export interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  additionalProperties?: JsonSchema | boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface CrdDocument {
  spec: { versions: { name: string; schema: { openAPIV3Schema: JsonSchema } }[] };
}

export function loadCrdSchema(file: string, version = 'v1alpha1'): JsonSchema {
  const crd = parse(readFileSync(file, 'utf8')) as CrdDocument;
  const found = crd.spec.versions.find((v) => v.name === version);
  if (!found) throw new Error(`${file} has no version ${version}`);
  return found.schema.openAPIV3Schema;
}

const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

class Emitter {
  private readonly blocks: string[] = [];

  /** Returns the TypeScript type expression for `schema`, emitting interfaces for named objects. */
  typeOf(schema: JsonSchema, name: string): string {
    if (schema['x-kubernetes-int-or-string']) return 'number | string';
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
    switch (schema.type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array':
        return `${this.wrap(this.typeOf(schema.items ?? {}, `${name}Item`))}[]`;
      case 'object':
        return this.objectType(schema, name);
      default:
        return 'unknown';
    }
  }

  private wrap(t: string): string {
    return t.includes('|') ? `(${t})` : t;
  }

  private objectType(schema: JsonSchema, name: string): string {
    if (schema.properties) {
      this.emitInterface(schema, name);
      return name;
    }
    if (typeof schema.additionalProperties === 'object') {
      return `Record<string, ${this.typeOf(schema.additionalProperties, `${name}Value`)}>`;
    }
    return 'Record<string, unknown>';
  }

  private emitInterface(schema: JsonSchema, name: string): void {
    const required = new Set(schema.required ?? []);
    const lines: string[] = [];
    if (schema.description) lines.push(docComment(schema.description, ''));
    lines.push(`export interface ${name} {`);
    for (const [field, sub] of Object.entries(schema.properties ?? {})) {
      const optional = required.has(field) || sub.default !== undefined ? '' : '?';
      const type = this.typeOf(sub, `${name}${pascal(field)}`);
      if (sub.description) lines.push(docComment(sub.description, '  '));
      lines.push(`  ${field}${optional}: ${type};`);
    }
    lines.push('}');
    this.blocks.push(lines.join('\n'));
  }

  output(): string {
    return this.blocks.join('\n\n');
  }
}

function docComment(text: string, indent: string): string {
  const clean = text.replace(/\*\//g, '* /').trim();
  return `${indent}/** ${clean} */`;
}

/** The generated module: interfaces `<kind>Spec` and `<kind>Status` of one CRD. */
export function generateTypes(schema: JsonSchema, kind = 'ProcessingJob', source = 'crds/processingjobs.sluice.dev.yaml'): string {
  const spec = schema.properties?.spec;
  const status = schema.properties?.status;
  if (!spec || !status) throw new Error('the CRD schema must define spec and status');
  const emitter = new Emitter();
  emitter.typeOf(spec, `${kind}Spec`);
  emitter.typeOf(status, `${kind}Status`);
  return [
    `// Generated from ${source} by operator/api/generate-types.ts. Do not edit.`,
    '// Regenerate: npx tsx operator/api/generate-types.ts',
    '',
    emitter.output(),
    '',
  ].join('\n');
}
