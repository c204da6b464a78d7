import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clicks } from '../../test/support/clicks-job.js';
import { resolveWorkerConfig } from '../config.js';
import { EventGenerator } from '../events/generator.js';
import { runInProcess } from '../in-process.js';
import { jobTypes } from './registry.js';

describe('a job type registered from a test', () => {
  beforeAll(() => jobTypes.register(clicks));
  afterAll(() => jobTypes.unregister('clicks'));

  it('is a worker configuration type with its own section, defaults and environment variable', () => {
    const base = { job: { name: 'c', type: 'clicks' }, kafka: { bootstrapServers: ['k:9092'] } };
    expect(resolveWorkerConfig(base, {}).clicks).toEqual({ every: 3 });
    expect(resolveWorkerConfig(base, { CLICKS_EVERY: '5' }).clicks).toEqual({ every: 5 });
    expect(() => resolveWorkerConfig({ ...base, job: { name: 'c', type: 'churn' }, clicks: { every: 2 } }, {})).toThrow("clicks: only allowed when job.type is 'clicks'");
  });

  it('runs through the runtime: user hashes and its own outputs land in the store', async () => {
    const source = [...new EventGenerator({ seed: 3, users: 40, days: 3 })];
    const run = await runInProcess({ type: 'clicks', source, settings: { clicks: { every: 2 } }, batchSize: 250 });
    await run.done;
    const views = new Map<string, number>();
    for (const e of source) if (e.eventType === 'page_view') views.set(e.userId, (views.get(e.userId) ?? 0) + 1);
    expect(views.size).toBeGreaterThan(10);
    for (const [userId, n] of views) expect(run.store.users.get(userId)?.clicks, userId).toBe(String(n));
    const milestones = [...views.values()].reduce((sum, n) => sum + Math.floor(n / 2), 0);
    expect([...run.store.records.keys()].filter((k) => k.startsWith('milestone:'))).toHaveLength(milestones);
  });
});
