/**
 * The one window where an alert email cannot be exactly once: the worker dies
 * after SMTP took the message and before its answer. An SMTP server of the
 * test's own holds its answer, the worker is SIGKILLed in that window, and the
 * replacement does what the job's spec.alerts.delivery promises: at-most-once
 * sends nothing more (the alert stays 'uncertain'), at-least-once sends it
 * again with the same Message-ID (the alert ends 'sent').
 */
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { UserEvent } from '../../workers/events/types.js';
import { uniqueName } from '../support/infra.js';
import { checkpointedToEnd, hashesUnder, SupervisedWorker } from '../support/faults.js';
import { freePort } from '../support/private-servers.js';
import { mailLine, PrivateSmtp } from '../support/private-smtp.js';
import { connection, newTestJob, produceEvents, redisClient, removeTempDirsAfterAll, tempDir, waitFor, workerConfigFor, writeWorkerConfig } from '../support/workers.js';

removeTempDirsAfterAll();
const redis = redisClient();
const workers: SupervisedWorker[] = [];
const servers: PrivateSmtp[] = [];

afterAll(async () => {
  for (const w of workers) await w.destroy();
  for (const s of servers) await s.close();
  redis.disconnect();
});

interface Mailbox {
  /** Message-IDs of every message whose body arrived, answered or not. */
  received: string[];
  hold: boolean;
}

function smtpServer(port: number, box: Mailbox): Promise<PrivateSmtp> {
  return PrivateSmtp.start(port, (mail) => {
    box.received.push(mailLine(mail.text, 'Message-ID') ?? '?');
    // Holding: the message is here, its 250 is not sent (the sender cannot know it arrived).
    if (!box.hold) mail.accept();
  }).then((s) => {
    servers.push(s);
    return s;
  });
}

it.each(['at-most-once', 'at-least-once'] as const)('%s: a SIGKILL between SMTP taking the message and its answer', { timeout: 120_000 }, async (delivery) => {
  const job = await newTestJob(`deliver-${delivery === 'at-most-once' ? 'amo' : 'alo'}`, 1);
  const tag = uniqueName('d');
  const t0 = Date.UTC(2026, 4, 1, 10);
  const cartId = `${tag}-cart`;
  const events: UserEvent[] = [
    { userId: `${tag}-u`, eventType: 'add_to_cart', eventTime: t0, cartId, productId: 'p', price: 80, quantity: 2 },
    { userId: `${tag}-clock`, eventType: 'page_view', eventTime: t0 + 5 * 3_600_000 },
  ];
  const box: Mailbox = { received: [], hold: true };
  const port = await freePort();
  await smtpServer(port, box);
  const dir = tempDir('sluice-deliver-');
  const config = workerConfigFor(job, 'cart', { cart: { abandonWindowMinutes: 60, abandonThreshold: 0 } });
  config.alerts = { smtp: { host: '127.0.0.1', port, secure: false }, from: 'sluice@test.local', to: ['ops@test.local'], delivery };
  const worker = new SupervisedWorker(writeWorkerConfig(config, dir, 'cart'), join(dir, 'cart.log'));
  workers.push(worker);
  worker.start();
  await produceEvents(job.topic, events);

  await waitFor('the alert body at the SMTP server (answer held)', 60_000, () => (box.received.length === 1 ? true : undefined));
  await worker.kill();
  box.hold = false;
  await checkpointedToEnd(connection(), job.checkpointDir, job.group, job.topic, 1, 60_000);
  await waitFor('the alert settled', 30_000, async () => {
    const email = (await hashesUnder(redis, job.prefix, 'alert:*')).get(`alert:${cartId}`)?.email;
    return email === (delivery === 'at-most-once' ? 'uncertain' : 'sent') ? email : undefined;
  });
  expect(await worker.stop()).toBe(0);

  const messageId = `<cart-${cartId}@sluice.alerts>`;
  if (delivery === 'at-most-once') {
    // Never twice: the replacement sees a claim whose holder died and leaves it (the one copy did arrive here).
    expect(box.received).toEqual([messageId]);
  } else {
    // Never lost: sent again, with the same Message-ID, so a mail system that deduplicates keeps one.
    expect(box.received).toEqual([messageId, messageId]);
  }
  console.log(`alert delivery ${delivery}: SIGKILL while SMTP held the answer; ${box.received.length} cop${box.received.length === 1 ? 'y' : 'ies'} received, marker ${delivery === 'at-most-once' ? 'uncertain' : 'sent'}`);
});
