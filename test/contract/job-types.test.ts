/**
 * A job type lives in its folder (workers/jobs/<type>/) and one line of the
 * registry: no other source compares a value with a type's name or has a
 * `case` for it. The CRD (a YAML enum) and the generated API types are data,
 * not code that switches; tests may name the types they run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/package-root.js';
import { jobTypes } from '../../workers/jobs/registry.js';

const root = packageRoot();

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** `x === 'cart'`, `'cart' !== x`, `case 'cart':` (either quote). */
function switchesOn(type: string): RegExp {
  const name = `['"\`]${type}['"\`]`;
  return new RegExp(`(?:[!=]==?\\s*${name}|${name}\\s*[!=]==?|\\bcase\\s+${name}\\s*:)`);
}

describe('job types', () => {
  const types = jobTypes.types();
  const home = (file: string): boolean => file === 'workers/jobs/registry.ts' || types.some((t) => file.startsWith(`workers/jobs/${t}/`));

  it('are switched on only in their own folders and the registry', () => {
    expect(types).toEqual(expect.arrayContaining(['churn', 'cart']));
    const found: string[] = [];
    for (const file of ['lib', 'operator', 'workers', 'cli'].flatMap(sources).filter((f) => !home(f))) {
      readFileSync(join(root, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const t of types) if (switchesOn(t).test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });

  it('the check bites: it finds the forms it forbids, not a mere mention', () => {
    for (const line of ["if (job.type === 'cart') {", "'churn' !== t", 'case "cart":', "j.type == 'churn' ? a : b"]) {
      expect(types.some((t) => switchesOn(t).test(line)), line).toBe(true);
    }
    expect(switchesOn('cart').test("runInProcess({ type: 'cart' })")).toBe(false);
  });
});
