/**
 * The checkpoint volume fills up: the worker says so (/readyz, metric, log),
 * keeps the last good checkpoint, survives a SIGKILL in that state (the
 * replacement restores that checkpoint and replays), and checkpoints again
 * when space returns, ending with the Redis state of an undisturbed run. The
 * volume is a small tmpfs this test mounts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import pino from 'pino';
import { EventGenerator } from '../../workers/events/generator.js';
import { toWire } from '../../workers/events/wire.js';
import { runWorker, type RunningWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import { checkpointedToEnd, checkpointPositions, differences, hashesUnder, SupervisedWorker } from '../support/faults.js';
import { freePort } from '../support/private-servers.js';
import { connection, newTestJob, produceEvents, producePerPartition, redisClient, removeTempDirsAfterAll, tempDir, waitFor, workerConfigFor, writeWorkerConfig } from '../support/workers.js';

removeTempDirsAfterAll();
const quiet = pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const redis = redisClient();
const PARTITIONS = 2;
const workers: SupervisedWorker[] = [];
const inProcess: RunningWorker[] = [];
const mounts: string[] = [];

afterAll(async () => {
  for (const w of workers) await w.destroy();
  for (const w of inProcess) await w.stop();
  for (const m of mounts) execFileSync('umount', [m]);
  redis.disconnect();
});

const free = (dir: string): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

async function readyz(port: number): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, text: await res.text() };
}

it('pauses on a full checkpoint volume without corrupting a checkpoint, and resumes when space returns', { timeout: 240_000 }, async () => {
  const job = await newTestJob('cpfull', PARTITIONS);
  const volume = tempDir('sluice-cpvol-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'sluice-test-checkpoints', volume]);
  mounts.push(volume);
  const tag = uniqueName('f');
  const events = [...new EventGenerator({ seed: 5, users: 400, days: 10 })].map((e) => ({ ...e, userId: `${tag}-${e.userId}` }));
  const half = Math.floor(events.length / 2);
  await produceEvents(job.topic, events.slice(0, half));

  const dir = tempDir('sluice-cpfull-');
  const metricsPort = await freePort();
  const config = workerConfigFor(job, 'churn', { intervalSeconds: 0.5 });
  config.checkpoint.dir = join(volume, 'checkpoints');
  config.metrics.port = metricsPort;
  const worker = new SupervisedWorker(writeWorkerConfig(config, dir, 'churn'), join(dir, 'churn.log'));
  workers.push(worker);
  worker.start();
  await checkpointedToEnd(connection(), config.checkpoint.dir, job.group, job.topic, PARTITIONS, 120_000);
  const before = checkpointPositions(config.checkpoint.dir, job.group, job.topic, PARTITIONS);

  // Fill the volume but for a few KiB: a checkpoint (tens of KiB per partition) no longer fits.
  const filler = join(volume, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, free(volume) - 8 * 1024)));
  const fullAt = Date.now();
  await produceEvents(job.topic, events.slice(half));
  const failing = await waitFor('/readyz to report the failing checkpoint', 60_000, async () => {
    const r = await readyz(metricsPort);
    return r.status === 503 && r.text.includes('checkpoint volume full') ? r.text : undefined;
  });
  expect(failing).toContain('spec.checkpoint.size');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  expect(Number(/sluice_checkpoint_failures_total\{[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);

  // Nothing new became durable, and what is on the volume is the last good checkpoint (its manifest verifies).
  expect(checkpointPositions(config.checkpoint.dir, job.group, job.topic, PARTITIONS)).toEqual(before);
  const restoredBy = (pid: number | undefined): number =>
    readFileSync(worker.logFile, 'utf8').split('\n').filter((l) => l.includes(`"pid":${pid},`) && l.includes('"msg":"partition restored from checkpoint"')).length;

  // A crash while the volume is full: the replacement restores the last good checkpoints.
  await worker.kill();
  await waitFor('the replacement worker to report the full volume', 90_000, async () => {
    if (!worker.started()) return undefined;
    const r = await readyz(metricsPort);
    return r.status === 503 && r.text.includes('checkpoint volume full') ? true : undefined;
  });
  expect(restoredBy(worker.pid), 'partitions the replacement restored from the checkpoint on the full volume').toBe(PARTITIONS);

  // Space returns: checkpoints resume and the worker catches up.
  rmSync(filler);
  const freedAt = Date.now();
  await producePerPartition(job.topic, PARTITIONS, (p) => toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: events[events.length - 1].eventTime + 3_600_000 }));
  await checkpointedToEnd(connection(), config.checkpoint.dir, job.group, job.topic, PARTITIONS, 120_000);
  const recoveryMs = Date.now() - freedAt;
  await waitFor('/readyz 200 again', 30_000, async () => ((await readyz(metricsPort)).status === 200 ? true : undefined));
  expect(await worker.stop()).toBe(0);

  const refPrefix = `${job.prefix}ref:`;
  const refGroup = `${job.group}-ref`;
  const refDir = tempDir('sluice-cpref-');
  mkdirSync(refDir, { recursive: true });
  const refConfig = workerConfigFor(job, 'churn', { prefix: refPrefix, group: refGroup });
  refConfig.checkpoint.dir = refDir;
  inProcess.push(await runWorker(refConfig, { logger: quiet, metricsHost: '127.0.0.1' }));
  await checkpointedToEnd(connection(), refDir, refGroup, job.topic, PARTITIONS, 120_000);
  const users = await hashesUnder(redis, job.prefix, 'user:*');
  const ref = await hashesUnder(redis, refPrefix, 'user:*');
  expect(ref.size).toBeGreaterThan(350);
  expect(differences(new Map([...users].filter(([k]) => !k.startsWith('ref:'))), ref)).toEqual([]);
  console.log(`checkpoint volume full: ${events.length} events, full for ${Math.round((freedAt - fullAt) / 1000)} s (a SIGKILL in between), caught up ${recoveryMs} ms after space returned`);
});
