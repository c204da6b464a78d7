import { expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import type { UserEvent } from '../../workers/events/types.js';
import { runWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { checkpointOffsets, newTestJob, produceEvents, readHashes, waitCheckpointedToEnd, waitFor, workerConfigFor, workerTestFile } from '../support/workers.js';

let server: SMTPServer | undefined;
const { quiet, redis, running } = workerTestFile(async () => {
  if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
});


/** A private SMTP server on 127.0.0.1:port keeping the cart id of every mail it accepts. */
async function startSmtp(port: number, cartIds: string[]): Promise<SMTPServer> {
  const s = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      stream.on('end', () => {
        const m = /^cart_id: (.+)$/m.exec(raw.replace(/\r\n/g, '\n'));
        if (m) cartIds.push(m[1].trim());
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });
  return s;
}

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
  server = await startSmtp(port, mailed);
  await waitCheckpointedToEnd(job, 1, 60_000);
  expect(mailed.sort()).toEqual(['a', 'b', 'c', 'd', 'e'].map((u) => `${tag}-${u}-c`));
  const alerts = await readHashes(redis, job.prefix, 'alert:*');
  expect([...alerts.values()].map((h) => h.email)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
});
