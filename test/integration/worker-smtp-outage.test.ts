import { expect, it } from 'vitest';
import type { UserEvent } from '../../workers/events/types.js';
import { runWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { mailLine, PrivateSmtp } from '../support/private-smtp.js';
import { checkpointOffsets, newTestJob, produceEvents, readHashes, waitCheckpointedToEnd, waitFor, workerConfigFor, workerTestFile } from '../support/workers.js';

let server: PrivateSmtp | undefined;
const { quiet, redis, running } = workerTestFile(async () => {
  await server?.close();
});


it('holds alerts while SMTP is down and sends each exactly once when it is back', { timeout: 120_000 }, async () => {
  const job = await newTestJob('smtp-outage', 1);
  const tag = uniqueName('m');
  const t0 = Date.UTC(2026, 3, 1, 9);
  const min = 60_000;
  const add = (u: string, at: number): UserEvent => ({ userId: `${tag}-${u}`, eventType: 'add_to_cart', eventTime: t0 + at * min, cartId: `${tag}-${u}-c`, productId: 'p', price: 20, quantity: 1 });
  const events: UserEvent[] = ['a', 'b', 'c', 'd', 'e'].map((u, i) => add(u, i));
  events.push(add('bought', 6), { userId: `${tag}-bought`, eventType: 'purchase', eventTime: t0 + 7 * min, cartId: `${tag}-bought-c`, price: 20, quantity: 1 });
  events.push({ userId: `${tag}-clock`, eventType: 'page_view', eventTime: t0 + 300 * min });
  await produceEvents(job.topic, events);

  const port = await freePort();
  const config = workerConfigFor(job, 'cart', { cart: { abandonWindowMinutes: 60, abandonThreshold: 0 } });
  config.alerts = { smtp: { host: '127.0.0.1', port, secure: false }, from: 'sluice@test.local', to: ['ops@test.local'] };
  const worker = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(worker);

  // SMTP refuses connections: the alerts are recorded, not mailed, and the batch is not checkpointed.
  await waitFor('alert records while SMTP is down', 20_000, async () => ((await readHashes(redis, job.prefix, 'alert:*')).size === 5 ? true : undefined));
  await new Promise((r) => setTimeout(r, 3_000));
  expect(checkpointOffsets(job, 1)).toEqual([-1]);
  const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
  expect(Number(/sluice_retries_total\{[^}]*target="alerts"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);

  const mailed: string[] = [];
  server = await PrivateSmtp.start(port, (mail) => {
    const cartId = mailLine(mail.text, 'cart_id');
    if (cartId) mailed.push(cartId);
    mail.accept();
  });
  await waitCheckpointedToEnd(job, 1, 60_000);
  expect(mailed.sort()).toEqual(['a', 'b', 'c', 'd', 'e'].map((u) => `${tag}-${u}-c`));
  const alerts = await readHashes(redis, job.prefix, 'alert:*');
  expect([...alerts.values()].map((h) => h.email)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
});
