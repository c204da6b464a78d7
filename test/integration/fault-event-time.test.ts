/**
 * One producer with a clock a month ahead: its event, among normal ones, is
 * dead-lettered with the reason instead of moving its partition's event time,
 * so no user is rescored and no cart timer fires early. The same events
 * without it, on another topic, are the reference.
 */
import { afterAll, expect, it } from 'vitest';
import pino from 'pino';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { toWire } from '../../workers/events/wire.js';
import { runWorker, type RunningWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import { differences, hashesUnder } from '../support/faults.js';
import { readRecords } from '../support/kafka.js';
import { connection, newTestJob, produceEvents, producePerPartition, redisClient, removeTempDirsAfterAll, waitCheckpointedToEnd, workerConfigFor, type TestJob } from '../support/workers.js';

removeTempDirsAfterAll();
const quiet = pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const redis = redisClient();
const running: RunningWorker[] = [];
const PARTITIONS = 2;

afterAll(async () => {
  for (const w of running) await w.stop();
  redis.disconnect();
});

it('dead-letters an event dated a month ahead: no other score changes, no cart timer fires early', { timeout: 180_000 }, async () => {
  const tag = uniqueName('t');
  const events: UserEvent[] = [...new EventGenerator({ seed: 8, users: 300, days: 12 })].map((e) => ({
    ...e,
    userId: `${tag}-${e.userId}`,
    ...(e.cartId ? { cartId: `${tag}-${e.cartId}` } : {}),
  }));
  const middle = events[Math.floor(events.length / 2)];
  const ahead = Date.now() + 30 * 86_400_000;
  // A user who exists, so the event lands among that user's own events on their partition.
  const stray: UserEvent = { userId: middle.userId, eventType: 'page_view', eventTime: ahead, sessionId: 'bad-clock' };
  const withStray = [...events.slice(0, events.length / 2), stray, ...events.slice(events.length / 2)];
  const clock = (p: number): string => toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: events[events.length - 1].eventTime + 3 * 3_600_000 });

  const runs: Array<{ job: TestJob; events: UserEvent[] }> = [
    { job: await newTestJob('skew', PARTITIONS), events: withStray },
    { job: await newTestJob('skew-ref', PARTITIONS), events },
  ];
  for (const { job, events: list } of runs) {
    await produceEvents(job.topic, list);
    await producePerPartition(job.topic, PARTITIONS, clock);
    for (const type of ['churn', 'cart'] as const) {
      running.push(await runWorker(workerConfigFor(job, type, { group: `${job.group}-${type}`, cart: { abandonWindowMinutes: 60, abandonThreshold: 0.5 } }), { logger: quiet, metricsHost: '127.0.0.1' }));
    }
  }
  for (const { job } of runs) for (const type of ['churn', 'cart']) await waitCheckpointedToEnd(job, PARTITIONS, 120_000, `${job.group}-${type}`);

  const [skewed, reference] = runs.map((r) => r.job);
  const users = await hashesUnder(redis, skewed.prefix, 'user:*');
  const refUsers = await hashesUnder(redis, reference.prefix, 'user:*');
  expect(refUsers.size).toBeGreaterThan(250);
  expect(differences(users, refUsers), 'users whose scores or carts differ from the run without the stray event').toEqual([]);
  const alerts = await hashesUnder(redis, skewed.prefix, 'alert:*');
  const refAlerts = await hashesUnder(redis, reference.prefix, 'alert:*');
  expect(refAlerts.size).toBeGreaterThan(5);
  expect(differences(alerts, refAlerts), 'cart alerts that differ (a timer fired early)').toEqual([]);

  const [dead] = await readRecords(connection(), `${skewed.topic}.dlq`, 1, 30_000);
  const reason = dead.headers['sluice-dlq-reason'];
  expect(reason).toContain(`event_time: ${new Date(ahead).toISOString()} is 30 days ahead of the worker's clock`);
  expect(reason).toContain('eventTime.maxFutureSkewSeconds');
  console.log(`event time: ${withStray.length} events, 1 dated ${new Date(ahead).toISOString()} dead-lettered; ${refUsers.size} users and ${refAlerts.size} alerts identical to the run without it`);
});
