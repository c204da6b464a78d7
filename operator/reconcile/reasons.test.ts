/**
 * docs/operations.md lists every condition reason the operator can write, with
 * what to do: this test reads the reasons out of the operator's code and fails
 * when the table and the code disagree. A condition whose reason comes from a
 * variable this test cannot trace fails it too, so a new condition (or a new
 * source of reasons) cannot slip past the table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

/** Every source file of the operator (no tests, no generated types). */
function operatorSources(dir = join(root, 'operator')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return operatorSources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.generated.ts') ? [relative(root, path)] : [];
  });
}

const literals = (text: string): string[] => [...text.matchAll(/'([A-Z][A-Za-z]+)'/g)].map((m) => m[1]!);

/** The reasons a Validation (ConfigValid) can carry: invalid('X', ...) and { state: 'invalid' | 'unknown', reason: 'X' }. */
function validationReasons(): string[] {
  const found: string[] = [];
  for (const file of ['operator/reconcile/validate.ts', 'operator/reconcile/reconcile.ts']) {
    const text = read(file);
    for (const m of text.matchAll(/invalid\(\s*'([A-Za-z]+)'/g)) found.push(m[1]!);
    for (const m of text.matchAll(/state: '(?:invalid|unknown)', reason: '([A-Za-z]+)'/g)) found.push(m[1]!);
  }
  return found;
}

/** What Degraded can say besides a Validation: the pod problems of status.ts and the warnings of reconcile.ts. */
function problemReasons(): string[] {
  const status = read('operator/reconcile/status.ts');
  const found: string[] = [];
  for (const set of ['waitingReasons', 'workerReasons']) {
    const m = new RegExp(`const ${set} = new Set\\(\\[([^\\]]*)\\]\\)`).exec(status);
    if (!m) throw new Error(`operator/reconcile/status.ts: ${set} not found (renamed? update this test)`);
    found.push(...literals(m[1]!));
  }
  for (const file of ['operator/reconcile/status.ts', 'operator/reconcile/reconcile.ts']) {
    const text = read(file);
    for (const m of text.matchAll(/^\s*(?:return \{ )?reason: '([A-Za-z]+)'/gm)) found.push(m[1]!);
    for (const m of text.matchAll(/reason: [\w.]+ \?\? '([A-Za-z]+)'/g)) found.push(m[1]!);
  }
  return [...validationReasons(), ...found];
}

/** The reasons of a rollback (status.upgrade.reason), which the RolledBack condition repeats. */
function upgradeReasons(): string[] {
  const m = /const reason = ([^;]+);/.exec(read('operator/upgrade/rollback.ts'));
  if (!m) throw new Error('operator/upgrade/rollback.ts: the rollback reason not found (renamed? update this test)');
  return literals(m[1]!);
}

/** Where a reason that is not a literal comes from. */
const SOURCES: Record<string, () => string[]> = {
  'validation.reason': validationReasons,
  'degradedBy.reason': problemReasons,
  'd.status.reason': upgradeReasons,
};

/** Every reason a condition written by the operator can have. */
function reasonsInCode(): Set<string> {
  const found = new Set<string>();
  const untraced: string[] = [];
  for (const file of operatorSources()) {
    // A condition (or the status/reason/message of one): its status is True, False or Unknown.
    for (const m of read(file).matchAll(/status: ([^,{}]*'(?:True|False|Unknown)'[^,{}]*), reason: ([^,{}]+),/g)) {
      let expr = m[2]!.trim();
      const fallback = /^(.+?) \?\? '([A-Za-z]+)'$/.exec(expr);
      if (fallback) {
        found.add(fallback[2]!);
        expr = fallback[1]!;
      }
      const literal = /^'([A-Za-z]+)'$/.exec(expr);
      if (literal) found.add(literal[1]!);
      else if (SOURCES[expr]) for (const r of SOURCES[expr]()) found.add(r);
      else untraced.push(`${file}: reason: ${expr}`);
    }
  }
  if (untraced.length) throw new Error(`condition reasons this test cannot trace (add their source to SOURCES):\n${untraced.join('\n')}`);
  return found;
}

/** Reasons in the first column of the table under "## Condition reasons". */
function reasonsInDocs(): Set<string> {
  const doc = read('docs/operations.md');
  const start = doc.indexOf('## Condition reasons');
  if (start < 0) throw new Error('docs/operations.md has no "## Condition reasons" section');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const found = new Set<string>();
  for (const line of section.split('\n').filter((l) => l.startsWith('| `'))) {
    const first = line.split('|')[1]!;
    for (const m of first.matchAll(/`([A-Za-z]+)`/g)) found.add(m[1]!);
  }
  return found;
}

/** Passed through from the Deployment's ReplicaFailure condition rather than written by us. */
const FROM_KUBERNETES = ['FailedCreate'];

describe('condition reasons', () => {
  it('finds the reasons of every condition the operator writes', () => {
    const code = reasonsInCode();
    // One of each source, so a regex that stops matching is noticed.
    for (const r of ['WorkersReady', 'StorageClassNotFound', 'KafkaUnreachable', 'ChildRejected', 'ConsumerGroupShared', 'CrashLoopBackOff', 'StateIncompatible', 'NoProgress', 'NoRollback']) {
      expect(code, r).toContain(r);
    }
  });

  it('every reason the code writes is in docs/operations.md with what to do', () => {
    const documented = reasonsInDocs();
    expect([...reasonsInCode()].filter((r) => !documented.has(r)).sort()).toEqual([]);
  });

  it('docs/operations.md lists no reason the code does not write', () => {
    const code = reasonsInCode();
    expect([...reasonsInDocs()].filter((r) => !code.has(r) && !FROM_KUBERNETES.includes(r)).sort()).toEqual([]);
  });
});
