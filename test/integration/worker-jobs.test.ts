import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { runWorker } from '../../workers/main.js';
import { runInProcess } from '../../workers/in-process.js';
import { uniqueName } from '../support/infra.js';
import { alertMailCartIds, newTestJob, produceEvents, readHashes, taggedEvents, waitCheckpointedToEnd, waitFor, workerConfigFor, workerTestFile } from '../support/workers.js';

const { quiet, redis, running } = workerTestFile();

describe('churn worker on Kafka and Redis', () => {
  it('writes for every user the churn_score, risk band, model version and update time computed from their events', async () => {
    const job = await newTestJob('churn-basic', 3);
    const events = taggedEvents(uniqueName('u'), new EventGenerator({ seed: 7, users: 150, days: 14 }));
    await produceEvents(job.topic, events);
    const config = workerConfigFor(job, 'churn');
    config.redis.ttlSeconds = 3_600;
    const worker = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
    running.push(worker);
    await waitCheckpointedToEnd(job, 3, 90_000);
    const ttl = await redis.ttl(`${job.prefix}user:${events[0].userId}`);
    expect(ttl).toBeGreaterThan(3_500);
    expect(ttl).toBeLessThanOrEqual(3_600);

    const expected = await runInProcess({ type: 'churn', source: events });
    await expected.done;
    const hashes = await readHashes(redis, job.prefix, 'user:*');
    expect(hashes.size).toBe(expected.store.users.size);
    expect(hashes.size).toBe(new Set(events.map((e) => e.userId)).size);
    for (const [key, fields] of hashes) {
      const userId = key.slice('user:'.length);
      expect(fields, userId).toEqual(expected.store.users.get(userId));
      const lastEvent = Math.max(...events.filter((e) => e.userId === userId).map((e) => e.eventTime));
      // Scored as of the latest event, or of a later midnight when the user went quiet.
      expect(Date.parse(fields.updated_at)).toBeGreaterThanOrEqual(lastEvent);
      const score = Number(fields.churn_score);
      expect(fields.risk_level).toBe(score >= 0.7 ? 'high' : score >= 0.4 ? 'medium' : 'low');
    }
    const bands = new Set([...hashes.values()].map((h) => h.risk_level));
    expect(bands.size).toBeGreaterThan(1);

    const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`sluice_events_in_total\\{[^}]*\\} ${events.length}\\b`));
    expect(metrics).toMatch(/sluice_consumer_lag\{[^}]*partition="0"[^}]*\} 0\b/);
    expect(metrics).toMatch(/sluice_checkpoint_bytes\{[^}]*partition="2"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/sluice_inference_rows_total\{[^}]*\} [1-9]/);
    expect((await fetch(`http://127.0.0.1:${worker.metricsPort}/readyz`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${worker.metricsPort}/healthz`)).text()).toBe('ok\n');
  });
});

describe('worker readiness', () => {
  it('stays unready, saying why, when a partition checkpoint belongs to another job', async () => {
    const job = await newTestJob('foreign-cp', 1);
    const dir = join(job.checkpointDir, job.group, job.topic);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '0.json'), JSON.stringify({ version: 1, jobType: 'cart', topic: job.topic, partition: 0, nextOffset: 5, savedAt: 0, state: { users: {} } }));
    const worker = await runWorker(workerConfigFor(job, 'churn'), { logger: quiet, metricsHost: '127.0.0.1' });
    running.push(worker);
    const detail = await waitFor('an explained unready state', 30_000, () => {
      const r = worker.readiness();
      return !r.ready && r.detail.includes('failing') ? r.detail : undefined;
    });
    expect(detail).toContain("belongs to job type 'cart'");
    const res = await fetch(`http://127.0.0.1:${worker.metricsPort}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('use another checkpoint.dir or consumer group');
  });
});

describe('cart worker on Kafka, Redis and SMTP', () => {
  it('emails once for each abandoned cart and never for a bought one', async () => {
    const job = await newTestJob('cart-basic', 1);
    const tag = uniqueName('t');
    const t0 = Date.UTC(2026, 2, 1, 10);
    const min = 60_000;
    const ev = (userId: string, eventType: UserEvent['eventType'], at: number, extra: Partial<UserEvent> = {}): UserEvent => ({
      userId: `${tag}-${userId}`,
      eventType,
      eventTime: t0 + at * min,
      sessionId: `${tag}-${userId}-s`,
      ...extra,
    });
    const item = (cart: string, price: number): Partial<UserEvent> => ({ cartId: `${tag}-${cart}`, productId: 'p1', price, quantity: 1 });
    const events: UserEvent[] = [
      ev('left', 'add_to_cart', 0, item('left-c1', 40)),
      ev('bought', 'add_to_cart', 1, item('bought-c1', 25)),
      ev('left', 'add_to_cart', 2, item('left-c1', 60)),
      ev('hesitant', 'add_to_cart', 3, item('hesitant-c1', 15)),
      ev('hesitant', 'remove_from_cart', 5, item('hesitant-c1', 15)),
      ev('hesitant', 'add_to_cart', 6, item('hesitant-c1', 80)),
      ev('bought', 'checkout_start', 8, { cartId: `${tag}-bought-c1` }),
      ev('bought', 'purchase', 10, { cartId: `${tag}-bought-c1`, price: 25, quantity: 1 }),
      // Browsing does not keep a cart alive: only cart activity does.
      ev('left', 'page_view', 50),
      // Two hours later someone else's event moves the partition's event time past every timer.
      ev('clock', 'page_view', 180),
    ];
    await produceEvents(job.topic, events);
    // Threshold 0: every abandoned cart alerts, so the mails name exactly the abandoned carts.
    const config = workerConfigFor(job, 'cart', { cart: { abandonWindowMinutes: 60, abandonThreshold: 0 }, alerts: true });
    running.push(await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' }));
    await waitCheckpointedToEnd(job, 1, 60_000);

    const mine = (id: string): boolean => id.startsWith(`${tag}-`);
    const mails = await waitFor('two alert mails', 20_000, () => {
      const ids = alertMailCartIds(mine);
      return ids.length >= 2 ? ids : undefined;
    });
    expect(mails.sort()).toEqual([`${tag}-hesitant-c1`, `${tag}-left-c1`]);

    const users = await readHashes(redis, job.prefix, 'user:*');
    const left = users.get(`user:${tag}-left`)!;
    expect(left.cart_id).toBe(`${tag}-left-c1`);
    expect(left.cart_items).toBe('2');
    expect(left.cart_value).toBe('100.00');
    expect(left.cart_abandoned_at).toBe(new Date(t0 + 62 * min).toISOString());
    expect(Number(left.cart_abandon_score)).toBeGreaterThan(0);
    expect(users.get(`user:${tag}-hesitant`)!.cart_abandoned_at).toBe(new Date(t0 + 66 * min).toISOString());
    expect(users.has(`user:${tag}-bought`)).toBe(false);

    const alerts = await readHashes(redis, job.prefix, 'alert:*');
    expect([...alerts.keys()].sort()).toEqual([`alert:${tag}-hesitant-c1`, `alert:${tag}-left-c1`]);
    expect(alerts.get(`alert:${tag}-left-c1`)!.email).toBe('sent');
    expect(await redis.get(`${job.prefix}alert_email:${tag}-left-c1`)).toBe('sent');
  });

  it('fires the abandonment timer on wall-clock time when the partition goes quiet', async () => {
    const job = await newTestJob('cart-idle', 1);
    const tag = uniqueName('i');
    const now = Date.now();
    // A 6-second window: with no further events, only the idle clock can fire it.
    await produceEvents(job.topic, [
      { userId: `${tag}-u`, eventType: 'add_to_cart', eventTime: now, cartId: `${tag}-c`, productId: 'p', price: 30, quantity: 2 },
    ]);
    const config = workerConfigFor(job, 'cart', { cart: { abandonWindowMinutes: 0.1, abandonThreshold: 0 }, alerts: true });
    running.push(await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1', idleAfterMs: 500 }));
    const user = await waitFor('the idle cart scored', 40_000, async () => {
      const h = await redis.hgetall(`${job.prefix}user:${tag}-u`);
      return h.cart_abandon_score ? h : undefined;
    });
    expect(user.cart_id).toBe(`${tag}-c`);
    expect(user.cart_abandoned_at).toBe(new Date(now + 6_000).toISOString());
    const mails = await waitFor('the alert mail', 20_000, () => {
      const ids = alertMailCartIds((id) => id === `${tag}-c`);
      return ids.length ? ids : undefined;
    });
    expect(mails).toEqual([`${tag}-c`]);
  });
});
