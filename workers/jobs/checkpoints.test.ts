import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError, CheckpointStore } from '../runtime/checkpoint.js';
import { CartJob } from './cart/job.js';
import { ChurnJob } from './churn/job.js';

describe('CheckpointStore', () => {
  it('converts a version 1 checkpoint once, continues in the new format, and refuses a checkpoint of another job', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cp-'));
    const job = new ChurnJob({ version: 't', score: async (_x, rows) => new Float32Array(rows) });
    const store = new CheckpointStore(root, 'group/a', 'topic', job);
    const ring = new Array<number>(168).fill(0);
    ring[(20_000 % 28) * 6] = 3;
    const user = { day: 20_000, ring, first: 20_000 * 86_400_000, last: 20_000 * 86_400_000 + 5, lastPurchase: -1, purchases: 0, revenue: 0 };
    writeFileSync(join(store.dir, '3.json'), JSON.stringify({ version: 1, jobType: 'churn', topic: 'topic', partition: 3, nextOffset: 42, savedAt: 1, state: { watermark: 7, users: { u1: user } } }));
    const first = store.load(3)!;
    expect(first).toMatchObject({ nextOffset: 42, detail: 'version 1 checkpoint 3.json, converted' });
    expect(first.state.table.id(0)).toBe('u1');
    expect(readdirSync(store.dir).sort()).toEqual(['3', '3.json.migrated']);
    const again = new CheckpointStore(root, 'group/a', 'topic', job).load(3)!;
    expect(again.nextOffset).toBe(42);
    expect(job.meta(again.state)).toEqual({ watermark: 7 });
    expect(again.state.table.last(0)).toBe(user.last);
    expect(store.load(4)).toBeUndefined();
    const cart = new CartJob({ version: 't', score: async (_x, rows) => new Float32Array(rows) }, { abandonWindowMinutes: 60, abandonThreshold: 0.75 });
    expect(() => new CheckpointStore(root, 'group/a', 'topic', cart).load(3)).toThrow(CheckpointError);
    rmSync(root, { recursive: true, force: true });
  });
});
