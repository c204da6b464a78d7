/**
 * The rooms of the code and what each may import (docs/architecture.md),
 * checked on the sources: a new import across a wall, or an import circle,
 * fails here rather than in review.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/package-root.js';

const root = packageRoot();

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** Every relative import of every source file of the rooms, as repository paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of ['lib', 'operator', 'workers', 'cli'].flatMap(sources)) {
    const text = readFileSync(join(root, file), 'utf8');
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
      relative(root, resolve(root, dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
    );
    graph.set(file, targets);
  }
  return graph;
}

const graph = importGraph();

function crossings(from: string, allowed: string[]): string[] {
  return [...graph]
    .filter(([file]) => file.startsWith(from))
    .flatMap(([file, targets]) => targets.filter((t) => !allowed.some((a) => t.startsWith(a))).map((t) => `${file} -> ${t}`));
}

describe('the rooms and their walls', () => {
  it('lib/ imports nothing of operator/, workers/ or cli/', () => {
    expect(crossings('lib/', ['lib/'])).toEqual([]);
  });

  it('the operator imports only itself and lib/ (never the workers)', () => {
    expect(crossings('operator/', ['operator/', 'lib/'])).toEqual([]);
  });

  it('the workers import only themselves and lib/ (never the operator or the CLI)', () => {
    expect(crossings('workers/', ['workers/', 'lib/'])).toEqual([]);
  });

  it('the worker runtime imports no job type', () => {
    expect(crossings('workers/runtime/', ['workers/runtime/', 'workers/events/', 'workers/state/', 'lib/'])).toEqual([]);
  });

  it('has no import circles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const t of graph.get(file) ?? []) visit(t, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
