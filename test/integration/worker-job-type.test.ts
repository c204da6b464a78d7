/** A job type registered from this test runs on the Kafka worker runtime like churn and cart: no edit outside its folder and the registry line. */
import { beforeAll, describe, expect, it } from 'vitest';
import { EventGenerator } from '../../workers/events/generator.js';
import { jobTypes } from '../../workers/jobs/registry.js';
import { runWorker } from '../../workers/main.js';
import { clicks } from '../support/clicks-job.js';
import { uniqueName } from '../support/infra.js';
import {
  newTestJob,
  produceEvents,
  readHashes,
  waitCheckpointedToEnd,
  workerConfigFor,
  workerTestFile,
} from '../support/workers.js';

const { quiet, redis, running } = workerTestFile(async () => jobTypes.unregister('clicks'));
beforeAll(() => jobTypes.register(clicks));

describe('a third job type on Kafka and Redis', () => {
  it('counts page views into user hashes and records its own milestones through its output stage', async () => {
    const job = await newTestJob('clicks', 2);
    const tag = uniqueName('c');
    const events = [...new EventGenerator({ seed: 11, users: 50, days: 3 })].map((e) => ({ ...e, userId: `${tag}-${e.userId}` }));
    await produceEvents(job.topic, events);
    const config = { ...workerConfigFor(job, 'clicks'), clicks: { every: 4 } };
    running.push(await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' }));
    await waitCheckpointedToEnd(job, 2, 60_000);

    const views = new Map<string, number>();
    for (const e of events) if (e.eventType === 'page_view') views.set(e.userId, (views.get(e.userId) ?? 0) + 1);
    const users = await readHashes(redis, job.prefix, 'user:*');
    expect(new Map([...users].map(([key, h]) => [key.slice('user:'.length), Number(h.clicks)]))).toEqual(views);
    const milestones = await readHashes(redis, job.prefix, 'milestone:*');
    expect(milestones.size).toBe([...views.values()].reduce((sum, n) => sum + Math.floor(n / 4), 0));
  });
});
