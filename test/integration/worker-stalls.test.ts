import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { expect, it } from 'vitest';
import { deleteTopics } from '../../lib/kafka/client.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { runWorker } from '../../workers/main.js';
import type { WorkerStatus } from '../../workers/runtime/kafka-worker.js';
import { uniqueName } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { checkpointOffsets, connection, killHard, newTestJob, produceEvents, readHashes, redisClient, taggedEvents, tempDir, waitCheckpointedToEnd, waitFor, workerConfigFor, workerTestFile } from '../support/workers.js';

let ownRedis: ChildProcess | undefined;
const { quiet } = workerTestFile(async () => {
  if (ownRedis) await killHard(ownRedis);
});

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const client = redisClient(port);
  await waitFor(`redis-server on ${port}`, 15_000, async () => ((await client.ping().catch(() => undefined)) === 'PONG' ? true : undefined));
  client.disconnect();
  return child;
}

const get = async (port: number, path: string): Promise<string> => (await fetch(`http://127.0.0.1:${port}${path}`)).text();

/**
 * A stall says itself: with Redis gone the worker logs one line naming what it
 * waits on, /metrics has sluice_stalled{on="redis",reason="RedisUnreachable"},
 * /status and /readyz say so; when Redis is back it says so once and catches up.
 */
it('says once that it waits for Redis (log, gauge, /status), and once that Redis is back, then catches up', { timeout: 120_000 }, async () => {
  const job = await newTestJob('stall', 2);
  const tag = uniqueName('s');
  const events = [...new EventGenerator({ seed: 9, users: 40, days: 3 })].slice(0, 400).map((e) => ({ ...e, userId: `${tag}-${e.userId}`, ...(e.cartId ? { cartId: `${tag}-${e.cartId}` } : {}) }));
  const users = new Set(events.map((e) => e.userId));
  const port = await freePort();
  ownRedis = await startRedis(port);
  const logFile = join(tempDir('sluice-stall-'), 'worker.log');
  const logger = pino({ name: 'sluice-worker' }, pino.destination({ dest: logFile, sync: true }));
  const worker = await runWorker(workerConfigFor(job, 'churn', { redisPort: port }), { logger, metricsHost: '127.0.0.1' });
  await waitFor('worker ready', 60_000, () => (worker.readiness().ready ? true : undefined));

  await killHard(ownRedis);
  ownRedis = undefined;
  const half = events.length / 2;
  await produceEvents(job.topic, events.slice(0, half));
  const stalled = await waitFor('the stall gauge', 60_000, async () => {
    const m = await get(worker.metricsPort, '/metrics');
    return /sluice_stalled\{[^}]*on="redis"[^}]*reason="RedisUnreachable"[^}]*\} 1/.test(m) ? m : undefined;
  });
  expect(stalled).toMatch(/sluice_stalled/);
  const status = JSON.parse(await get(worker.metricsPort, '/status')) as WorkerStatus;
  expect(status.stalls).toEqual([expect.objectContaining({ on: 'redis', reason: 'RedisUnreachable' })]);
  expect(await get(worker.metricsPort, '/readyz')).toMatch(/waiting for Redis since .* \(RedisUnreachable\)/);
  // More events and more failed retries while it waits: still one line, not one per retry.
  const retries = (m: string): number => Number(/sluice_retries_total\{[^}]*target="redis"[^}]*\} (\d+)/.exec(m)?.[1] ?? 0);
  const before = retries(stalled);
  await produceEvents(job.topic, events.slice(half));
  await waitFor('two more failed Redis retries', 30_000, async () => (retries(await get(worker.metricsPort, '/metrics')) >= before + 2 ? true : undefined));

  ownRedis = await startRedis(port);
  const client = redisClient(port);
  try {
    await waitFor('every user scored after the outage', 60_000, async () => ((await readHashes(client, job.prefix, 'user:*')).size === users.size ? true : undefined));
  } finally {
    client.disconnect();
  }
  await waitFor('the stall cleared', 30_000, async () => (/sluice_stalled\{[^}]*on="redis"/.test(await get(worker.metricsPort, '/metrics')) ? undefined : true));
  await worker.stop();

  const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
  expect(lines.filter((l) => l.msg.startsWith('waiting for Redis (RedisUnreachable)')).length).toBe(1);
  expect(lines.filter((l) => /^Redis answers again after \d+s/.test(l.msg)).length).toBe(1);
  // Nothing of it at error level: waiting is not an error.
  expect(lines.filter((l) => l.level >= 50)).toEqual([]);
});

it('stops within seconds when its input topic was deleted under it, its checkpoints written', { timeout: 90_000 }, async () => {
  const job = await newTestJob('topic-gone', 2);
  await produceEvents(job.topic, taggedEvents(uniqueName('u'), new EventGenerator({ seed: 3, users: 50, days: 3 })));
  const worker = await runWorker(workerConfigFor(job, 'churn'), { logger: quiet, metricsHost: '127.0.0.1' });
  await waitCheckpointedToEnd(job, 2, 60_000);
  const written = checkpointOffsets(job, 2);
  await deleteTopics(connection(), [job.topic]);
  const stopping = Date.now();
  await worker.stop();
  const tookMs = Date.now() - stopping;
  // Before: kafkajs retried the final offset commit to the missing topic for 32 s, most of a pod's grace period.
  expect(tookMs, 'SIGTERM to exit with the input topic gone').toBeLessThan(10_000);
  expect(checkpointOffsets(job, 2)).toEqual(written);
});
