/**
 * Today's state for the benchmark, from the source of an older commit: the
 * jobs' JSON state and the one-file-per-partition checkpoint
 * (JSON.stringify + synchronous write + fsync), driven through their own API
 * (newState, process, snapshot, restore, CheckpointStore.save/load).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { UserEvent } from '../../workers/events/types.js';
import type { BackendOptions, BackendUnderTest, CheckpointResult } from './backend.js';

/** The last commit before compact state and incremental checkpoints. */
export const BASELINE_REV = '8da2f1c';

interface OldJob {
  readonly type: string;
  newState(): unknown;
  snapshot(state: unknown): unknown;
  restore(snapshot: unknown): unknown;
  process(state: unknown, events: readonly UserEvent[]): Promise<unknown>;
}

interface OldStore {
  save(cp: unknown): number;
  load(partition: number, expect: { jobType: string; topic: string }): { state: unknown } | undefined;
}

/** Extracts `workers/` of the commit under node_modules/.cache (so its imports of npm packages resolve). */
export function baselineTree(repoRoot: string, rev = BASELINE_REV): string {
  const dir = join(repoRoot, 'node_modules', '.cache', 'sluice-bench', `baseline-${rev}`);
  if (!existsSync(join(dir, 'workers', 'jobs', 'churn.ts'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['-C', repoRoot, 'archive', '--format=tar', rev, 'workers']);
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  return dir;
}

export async function baselineBackend(tree: string, o: BackendOptions): Promise<BackendUnderTest> {
  const load = (rel: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(tree, rel)).href) as Promise<Record<string, unknown>>;
  const jobs = await load(`workers/jobs/${o.job}.ts`);
  const { CheckpointStore } = (await load('workers/runtime/checkpoint.ts')) as { CheckpointStore: new (root: string, group: string, topic: string) => OldStore };
  const job: OldJob =
    o.job === 'churn'
      ? new (jobs.ChurnJob as new (m: unknown) => OldJob)(o.model)
      : new (jobs.CartJob as new (m: unknown, s: unknown) => OldJob)(o.model, { abandonWindowMinutes: 60, abandonThreshold: 0.75 });
  const store = new CheckpointStore(o.checkpointDir, 'bench', 'events');
  let states = Array.from({ length: o.partitions }, () => job.newState());
  return {
    label: `baseline (${BASELINE_REV})`,
    async process(p, events) {
      await job.process(states[p], events);
    },
    async checkpoint(p, nextOffset): Promise<CheckpointResult> {
      const bytes = store.save({ version: 1, jobType: job.type, topic: 'events', partition: p, nextOffset, savedAt: Date.now(), state: job.snapshot(states[p]) });
      return { bytes, kind: 'full' };
    },
    async restore() {
      states = [];
      for (let p = 0; p < o.partitions; p++) {
        const cp = store.load(p, { jobType: job.type, topic: 'events' });
        states.push(cp ? job.restore(cp.state) : job.newState());
      }
    },
    users: () => states.reduce<number>((n, s) => n + (s as { users: Map<string, unknown> }).users.size, 0),
    localDiskBytes: () => 0,
    async close() {},
  };
}
