import { spawn, type ChildProcess } from 'node:child_process';
import { expect, it } from 'vitest';
import { EventGenerator } from '../../workers/events/generator.js';
import { toWire } from '../../workers/events/wire.js';
import { runWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { checkpointOffsets, exited, killHard, newTestJob, produceEvents, producePerPartition, readHashes, redisClient, taggedEvents, tempDir, waitCheckpointedToEnd, waitFor, workerConfigFor, workerTestFile } from '../support/workers.js';

let ownRedis: ChildProcess | undefined;
const { quiet, redis: shared, running } = workerTestFile(async () => {
  if (ownRedis) await killHard(ownRedis);
});
const PARTITIONS = 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A private redis-server (AOF on, so a clean stop keeps the data), stopped by its pid. */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
  const client = redisClient(port);
  await waitFor(`redis-server on ${port}`, 15_000, async () => ((await client.ping()) === 'PONG' ? true : undefined));
  client.disconnect();
  return child;
}

it('keeps every result when Redis is down for 60 s mid-run: the worker pauses, retries and catches up', { timeout: 300_000 }, async () => {
  const job = await newTestJob('redis-outage', PARTITIONS);
  const tag = uniqueName('o');
  const events = taggedEvents(tag, new EventGenerator({ seed: 3, users: 400, days: 20 }));
  const port = await freePort();
  const dir = tempDir('sluice-redis-');
  ownRedis = await startRedis(port, dir);

  const group = `${job.group}-outage`;
  const worker = await runWorker(workerConfigFor(job, 'churn', { redisPort: port, group, intervalSeconds: 0.5 }), { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(worker);

  // Events keep arriving through the outage.
  let sent = 0;
  const producing = (async () => {
    for (let i = 0; i < events.length; i += 3_000) {
      sent += await produceEvents(job.topic, events.slice(i, i + 3_000));
      await sleep(400);
    }
    await producePerPartition(job.topic, PARTITIONS, (p) => toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: events[events.length - 1].eventTime + 3_600_000 }));
  })();
  await waitFor('a third of the events produced and consumed', 60_000, () => {
    const done = checkpointOffsets(job, PARTITIONS, group).reduce((a, o) => a + Math.max(0, o), 0);
    return sent >= events.length / 3 && done > 0 ? true : undefined;
  });

  ownRedis.kill('SIGTERM');
  await exited(ownRedis);
  const downAt = Date.now();
  await sleep(2_000);
  const during = checkpointOffsets(job, PARTITIONS, group);
  await sleep(58_000);
  // Nothing moves while results cannot be written: consumption is paused, not skipped.
  expect(checkpointOffsets(job, PARTITIONS, group)).toEqual(during);
  ownRedis = await startRedis(port, dir);
  const backAt = Date.now();

  await producing;
  await waitCheckpointedToEnd(job, PARTITIONS, 120_000, group);
  const caughtUpMs = Date.now() - backAt;
  const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
  expect(Number(/sluice_retries_total\{[^}]*target="redis"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);

  // The same events through an undisturbed worker into the shared Redis.
  const refGroup = `${job.group}-ref`;
  const refPrefix = `${job.prefix}ref:`;
  running.push(await runWorker(workerConfigFor(job, 'churn', { group: refGroup, prefix: refPrefix }), { logger: quiet, metricsHost: '127.0.0.1' }));
  await waitCheckpointedToEnd(job, PARTITIONS, 120_000, refGroup);

  const own = redisClient(port);
  const outage = await readHashes(own, job.prefix, 'user:*');
  own.disconnect();
  const reference = await readHashes(shared, refPrefix, 'user:*');
  expect(reference.size).toBeGreaterThan(350);
  expect(outage).toEqual(reference);
  console.log(`redis outage: ${sent} events, Redis down ${Math.round((backAt - downAt) / 1000)} s, caught up ${caughtUpMs} ms after it came back, ${reference.size} users identical`);
});
