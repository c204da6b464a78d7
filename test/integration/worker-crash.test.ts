import { join } from 'node:path';
import { expect, it } from 'vitest';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { toWire } from '../../workers/events/wire.js';
import { runWorker } from '../../workers/main.js';
import { topicEndOffsets } from '../../lib/kafka/client.js';
import { uniqueName } from '../support/infra.js';
import {
  alertMailCartIds,
  checkpointOffsets,
  connection,
  exited,
  killHard,
  newTestJob,
  produceEvents,
  producePerPartition,
  readHashes,
  spawnWorker,
  waitCheckpointedToEnd,
  waitFor,
  waitStarted,
  workerConfigFor,
  writeWorkerConfig,
  type TestJob,
  tempDir,
  workerTestFile,
} from '../support/workers.js';

const { quiet, redis, running: inProcess, children } = workerTestFile();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PARTITIONS = 4;
const KILLS = 4;

/**
 * Runs one worker process, SIGKILLs it at random points of its progress
 * (read from its checkpoints) and starts it again, KILLS times; then lets it
 * finish and stops it with SIGTERM.
 */
async function crashLoop(job: TestJob, group: string, configFile: string, logFile: string): Promise<number> {
  const ends = await topicEndOffsets(connection(), job.topic);
  const total = [...ends.values()].reduce((a, b) => a + b, 0);
  const progress = (): number => checkpointOffsets(job, PARTITIONS, group).reduce((a, o) => a + Math.max(0, o), 0) / total;
  let child = spawnWorker(configFile, logFile);
  children.push(child);
  let kills = 0;
  for (let k = 0; k < KILLS; k++) {
    const target = ((k + Math.random()) / KILLS) * 0.85;
    await waitFor(`${group} past ${(target * 100).toFixed(0)}% (worker log: ${logFile})`, 120_000, () => (progress() >= target ? true : undefined), 50);
    await sleep(Math.random() * 300);
    await killHard(child);
    kills += 1;
    child = spawnWorker(configFile, logFile);
    children.push(child);
  }
  await waitCheckpointedToEnd(job, PARTITIONS, 180_000, group);
  await waitStarted(logFile, child);
  child.kill('SIGTERM');
  expect(await exited(child), `exit code after SIGTERM (worker log: ${logFile})`).toBe(0);
  return kills;
}

function without(h: Record<string, string>, field: string): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([f]) => f !== field));
}

it('replays 200k events through SIGKILLs to exactly the Redis state of an uninterrupted run, and never emails twice', { timeout: 480_000 }, async () => {
  const job = await newTestJob('crash', PARTITIONS);
  const tag = uniqueName('k');
  const events: UserEvent[] = [...new EventGenerator({ seed: 11, users: 1400, days: 30 })].map((e) => ({
    ...e,
    userId: `${tag}-${e.userId}`,
    ...(e.cartId ? { cartId: `${tag}-${e.cartId}` } : {}),
  }));
  expect(events.length).toBeGreaterThanOrEqual(200_000);
  const last = events[events.length - 1].eventTime;
  await produceEvents(job.topic, events);
  // One late event per partition moves every partition's event time past all cart timers.
  await producePerPartition(job.topic, PARTITIONS, (p) => toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: last + 3 * 3_600_000, sessionId: 'clock' }));

  const cart = { abandonWindowMinutes: 60, abandonThreshold: 0.85 };
  const ref = { prefix: `${job.prefix}ref:`, churn: `${job.group}-ref-churn`, cart: `${job.group}-ref-cart` };
  const crash = { prefix: `${job.prefix}crash:`, churn: `${job.group}-crash-churn`, cart: `${job.group}-crash-cart` };

  // The uninterrupted run, in this process; alerts only recorded (its emails would mix with the crash run's).
  inProcess.push(await runWorker(workerConfigFor(job, 'churn', { prefix: ref.prefix, group: ref.churn, intervalSeconds: 5 }), { logger: quiet, metricsHost: '127.0.0.1' }));
  inProcess.push(await runWorker(workerConfigFor(job, 'cart', { prefix: ref.prefix, group: ref.cart, cart, intervalSeconds: 5 }), { logger: quiet, metricsHost: '127.0.0.1' }));

  const dir = tempDir('sluice-crash-');
  const churnFile = writeWorkerConfig(workerConfigFor(job, 'churn', { prefix: crash.prefix, group: crash.churn, intervalSeconds: 0.5 }), dir, 'churn');
  const cartFile = writeWorkerConfig(workerConfigFor(job, 'cart', { prefix: crash.prefix, group: crash.cart, cart, alerts: true, intervalSeconds: 0.5 }), dir, 'cart');
  const [churnKills, cartKills] = await Promise.all([
    crashLoop(job, crash.churn, churnFile, join(dir, 'churn.log')),
    crashLoop(job, crash.cart, cartFile, join(dir, 'cart.log')),
  ]);
  expect(churnKills + cartKills).toBe(2 * KILLS);
  await waitCheckpointedToEnd(job, PARTITIONS, 180_000, ref.churn);
  await waitCheckpointedToEnd(job, PARTITIONS, 180_000, ref.cart);
  for (const w of inProcess.splice(0)) await w.stop();

  const refUsers = await readHashes(redis, ref.prefix, 'user:*');
  const crashUsers = await readHashes(redis, crash.prefix, 'user:*');
  expect(refUsers.size).toBeGreaterThan(1000);
  const differing = [...refUsers].filter(([k, h]) => JSON.stringify(h) !== JSON.stringify(crashUsers.get(k) && Object.fromEntries(Object.entries(h).map(([f]) => [f, crashUsers.get(k)![f]]))));
  expect(differing.slice(0, 3), `users differing from the uninterrupted run (logs in ${dir})`).toEqual([]);
  expect(crashUsers).toEqual(refUsers);

  const refAlerts = await readHashes(redis, ref.prefix, 'alert:*');
  const crashAlerts = await readHashes(redis, crash.prefix, 'alert:*');
  expect(refAlerts.size).toBeGreaterThan(10);
  expect(new Map([...crashAlerts].map(([k, h]) => [k, without(h, 'email')]))).toEqual(new Map([...refAlerts].map(([k, h]) => [k, without(h, 'email')])));

  // Exactly one mail per alert marked sent; a cart whose sender died mid-send is never mailed again.
  const mails = alertMailCartIds((id) => id.startsWith(`${tag}-`));
  expect(mails.length).toBe(new Set(mails).size);
  const sent = [...crashAlerts.values()].filter((h) => h.email === 'sent').map((h) => h.cart_id);
  const uncertain = [...crashAlerts.values()].filter((h) => h.email !== 'sent').map((h) => h.cart_id);
  expect(uncertain.length).toBeLessThanOrEqual(cartKills);
  expect(new Set(mails.filter((id) => !uncertain.includes(id)))).toEqual(new Set(sent));
  console.log(`crash test: ${events.length} events, kills churn=${churnKills} cart=${cartKills}, ${refUsers.size} users, ${refAlerts.size} alerts, ${mails.length} mails, ${uncertain.length} uncertain`);
});
