/**
 * The Kafka broker is SIGKILLed mid-stream and started again on the same disk:
 * the workers (processes restarted like pods) and the producer ride through,
 * and Redis ends exactly as after an undisturbed run over the same events,
 * with every alert mailed once. The broker is this test's own.
 */
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import pino from 'pino';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { runWorker, type RunningWorker } from '../../workers/main.js';
import { createTopic, RecordProducer } from '../../lib/kafka/client.js';
import { toWire } from '../../workers/events/wire.js';
import { uniqueName } from '../support/infra.js';
import { checkpointedToEnd, checkpointPositions, differences, hashesUnder, produceThrough, SupervisedWorker } from '../support/faults.js';
import { PrivateKafka } from '../support/private-servers.js';
import { alertMailCartIds, redisClient, removeTempDirsAfterAll, tempDir, workerConfigFor, writeWorkerConfig, type TestJob } from '../support/workers.js';

removeTempDirsAfterAll();
const quiet = pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const redis = redisClient();
const PARTITIONS = 4;
const workers: SupervisedWorker[] = [];
const inProcess: RunningWorker[] = [];
let broker: PrivateKafka | undefined;

afterAll(async () => {
  for (const w of workers) await w.destroy();
  for (const w of inProcess) await w.stop();
  await broker?.stop();
  redis.disconnect();
});

it('survives a SIGKILL of the broker mid-stream: same Redis state as an undisturbed run, each alert mailed once', { timeout: 420_000 }, async () => {
  const dir = tempDir('sluice-broker-');
  broker = await PrivateKafka.create(join(dir, 'kafka'));
  const firstStartMs = await broker.start();
  const connection = { brokers: broker.brokers };
  const name = uniqueName('broker');
  const job: TestJob = { name, topic: `${name}.events`, group: `${name}-group`, prefix: `${name}:`, checkpointDir: join(dir, 'checkpoints') };
  await createTopic(connection, job.topic, PARTITIONS);
  await createTopic(connection, `${job.topic}.dlq`, 1);

  const tag = uniqueName('b');
  const events: UserEvent[] = [...new EventGenerator({ seed: 21, users: 500, days: 14 })].map((e) => ({
    ...e,
    userId: `${tag}-${e.userId}`,
    ...(e.cartId ? { cartId: `${tag}-${e.cartId}` } : {}),
  }));
  const cart = { abandonWindowMinutes: 60, abandonThreshold: 0.8 };
  const configFor = (type: 'churn' | 'cart', prefix: string, group: string, alerts: boolean) => {
    const c = workerConfigFor(job, type, { prefix, group, intervalSeconds: 0.5, alerts, ...(type === 'cart' ? { cart } : {}) });
    c.kafka.bootstrapServers = broker!.brokers;
    return c;
  };
  const run = { prefix: `${job.prefix}run:`, churn: `${job.group}-churn`, cart: `${job.group}-cart` };
  for (const type of ['churn', 'cart'] as const) {
    const file = writeWorkerConfig(configFor(type, run.prefix, run[type], type === 'cart'), dir, type);
    const w = new SupervisedWorker(file, join(dir, `${type}.log`));
    w.start();
    workers.push(w);
  }

  // The stream keeps coming; the broker dies when 40% of it was sent, and is back 8 s later.
  let killedAt = 0;
  let restartMs = 0;
  let outage: Promise<void> | undefined;
  const produced = await produceThrough(connection, job.topic, events, {
    chunk: 2_000,
    pauseMs: 250,
    onProgress: (sent) => {
      if (killedAt || sent < events.length * 0.4) return;
      killedAt = sent;
      outage = (async () => {
        await broker!.kill();
        await new Promise((r) => setTimeout(r, 8_000));
        restartMs = await broker!.start();
      })();
      // The producer retries while the broker is down; a broker that cannot start again ends the test.
      outage.catch(() => undefined);
    },
  });
  await outage;
  // One later event per partition moves each partition's event time past the last cart timers.
  const clock = await RecordProducer.connect(connection);
  const last = events[events.length - 1].eventTime;
  await clock.send(job.topic, Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, key: `clock-${p}`, value: toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: last + 3 * 3_600_000 }) })));
  await clock.disconnect();
  const catchUpMs = Math.max(
    await checkpointedToEnd(connection, job.checkpointDir, run.churn, job.topic, PARTITIONS, 180_000),
    await checkpointedToEnd(connection, job.checkpointDir, run.cart, job.topic, PARTITIONS, 180_000),
  );
  for (const w of workers) expect(await w.stop(), `exit code after SIGTERM (log: ${w.logFile})`).toBe(0);

  // The reference: the same topic, read once more by undisturbed workers in this process.
  const ref = { prefix: `${job.prefix}ref:`, churn: `${job.group}-ref-churn`, cart: `${job.group}-ref-cart` };
  inProcess.push(await runWorker(configFor('churn', ref.prefix, ref.churn, false), { logger: quiet, metricsHost: '127.0.0.1' }));
  inProcess.push(await runWorker(configFor('cart', ref.prefix, ref.cart, false), { logger: quiet, metricsHost: '127.0.0.1' }));
  await checkpointedToEnd(connection, job.checkpointDir, ref.churn, job.topic, PARTITIONS, 180_000);
  await checkpointedToEnd(connection, job.checkpointDir, ref.cart, job.topic, PARTITIONS, 180_000);
  for (const w of inProcess.splice(0)) await w.stop();

  const users = await hashesUnder(redis, run.prefix, 'user:*');
  const refUsers = await hashesUnder(redis, ref.prefix, 'user:*');
  expect(refUsers.size).toBeGreaterThan(400);
  expect(differences(users, refUsers), 'users that differ from the undisturbed run').toEqual([]);
  const alerts = await hashesUnder(redis, run.prefix, 'alert:*');
  const refAlerts = await hashesUnder(redis, ref.prefix, 'alert:*');
  expect(refAlerts.size).toBeGreaterThan(5);
  expect(differences(alerts, refAlerts, 'email'), 'alerts that differ from the undisturbed run').toEqual([]);
  // No worker died, so no alert is uncertain: every one was mailed, exactly once.
  const mails = alertMailCartIds((id) => id.startsWith(`${tag}-`));
  expect([...alerts.values()].map((h) => h.email).filter((e) => e !== 'sent')).toEqual([]);
  expect(mails.sort()).toEqual([...alerts.values()].map((h) => h.cart_id).sort());
  expect(checkpointPositions(job.checkpointDir, run.cart, job.topic, PARTITIONS).every((o) => o > 0)).toBe(true);
  const restarts = workers.map((w) => w.exitsByItself).reduce((a, b) => a + b, 0);
  console.log(
    `broker fault: ${produced.sent} events (${produced.retries} chunk retries), broker SIGKILLed at ${killedAt} sent, ` +
      `back ${restartMs} ms after restart (first start ${firstStartMs} ms), workers caught up ${catchUpMs} ms after the last event, ` +
      `worker exits by themselves ${restarts}, ${refUsers.size} users, ${refAlerts.size} alerts, ${mails.length} mails`,
  );
});
