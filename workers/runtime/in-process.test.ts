import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventGenerator } from '../events/generator.js';
import { CartJob } from '../jobs/cart/job.js';
import { ChurnJob } from '../jobs/churn/job.js';
import { CheckpointError, CheckpointStore } from './checkpoint.js';
import { runJobInProcess } from './in-process.js';
import { MemoryStore } from './memory-store.js';

describe('runJobInProcess (sluice demo without Kafka or Redis)', () => {
  it('scores every generated user and lists the riskiest first', async () => {
    const source = new EventGenerator({ seed: 2, users: 80, days: 10 });
    const run = await runJobInProcess({ type: 'churn', source, batchSize: 300 });
    const { events } = await run.done;
    expect(events).toBeGreaterThan(1000);
    expect(run.store.eventsProcessed).toBe(events);
    const top = run.store.riskiest(5);
    expect(top).toHaveLength(5);
    expect(top.map((u) => u.score)).toEqual([...top.map((u) => u.score)].sort((a, b) => b - a));
    expect(run.store.users.size).toBe(new Set([...source].map((e) => e.userId)).size);
  });

  it('records cart alerts (no email configured) and flushes open carts at the end of the source', async () => {
    const run = await runJobInProcess({ type: 'cart', source: new EventGenerator({ seed: 4, users: 60, days: 5 }), cart: { abandonWindowMinutes: 60, abandonThreshold: 0.5 } });
    await run.done;
    const alerts = run.store.recentAlerts(1_000);
    expect(alerts.length).toBeGreaterThan(0);
    expect(alerts.every((a) => a.email === 'disabled' && a.score >= 0.5)).toBe(true);
  });

  it('stops early when asked', async () => {
    const run = await runJobInProcess({ type: 'churn', source: new EventGenerator({ seed: 2, users: 50, days: 300 }), ratePerSecond: 2_000, batchSize: 100 });
    await new Promise((r) => setTimeout(r, 300));
    await run.stop();
    const { events } = await run.done;
    expect(events).toBeGreaterThan(0);
    expect(events).toBeLessThan(5_000);
  });
});

describe('MemoryStore alert claims', () => {
  it('lets one holder send, refuses a replay after sent, and never resends after an uncertain attempt', async () => {
    const s = new MemoryStore();
    expect(await s.claimAlert('c1', 'w1')).toEqual({ kind: 'claimed' });
    expect(await s.claimAlert('c1', 'w2')).toEqual({ kind: 'uncertain', holder: 'w1' });
    await s.finishAlert('c1', 'w1', 'failed');
    expect(await s.claimAlert('c1', 'w2')).toEqual({ kind: 'claimed' });
    await s.finishAlert('c1', 'w2', 'sent');
    expect(await s.claimAlert('c1', 'w3')).toEqual({ kind: 'sent' });
    await s.claimAlert('c2', 'w1');
    await s.finishAlert('c2', 'w1', 'uncertain');
    expect((await s.claimAlert('c2', 'w1')).kind).toBe('uncertain');
  });
});

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
