import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { JobType } from '../../lib/worker-config/config.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { toWire } from '../../workers/events/wire.js';
import { runWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import { exited, newTestJob, produceEvents, producePerPartition, readHashes, spawnWorker, taggedEvents, tempDir, waitCheckpointedToEnd, waitFor, waitStarted, workerConfigFor, workerTestFile, writeWorkerConfig } from '../support/workers.js';

const { quiet, redis, running: inProcess, children } = workerTestFile();
const PARTITIONS = 4;
function assignedIn(logFile: string, pid: number): number[] {
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"partitions assigned"') && l.includes(`"pid":${pid},`));
  const last = lines.at(-1);
  return last ? (JSON.parse(last) as { partitions: number[] }).partitions : [];
}

function logged<T>(logFile: string, pid: number, msg: string): T | undefined {
  const line = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"pid":${pid},`)).at(-1);
  return line ? (JSON.parse(line) as T) : undefined;
}

/**
 * While events keep arriving: worker A runs alone, B joins (partitions move to
 * it), B leaves with SIGTERM (they move back), A finishes.
 */
async function joinAndLeave(type: JobType, configFile: string, logFile: string, produced: () => number): Promise<{ bPositions: Record<string, number>; bStart: Record<string, number> }> {
  const a = spawnWorker(configFile, logFile);
  children.push(a);
  await waitFor(`${type} worker A joined`, 60_000, () => (assignedIn(logFile, a.pid!).length === PARTITIONS ? true : undefined));
  await waitFor('a quarter of the events produced', 120_000, () => (produced() >= 0.25 ? true : undefined), 50);
  const b = spawnWorker(configFile, logFile);
  children.push(b);
  const bPartitions = await waitFor(`${type} worker B assigned partitions`, 60_000, () => {
    const p = assignedIn(logFile, b.pid!);
    return p.length > 0 ? p : undefined;
  });
  expect(bPartitions.length).toBeGreaterThan(0);
  expect(bPartitions.length).toBeLessThan(PARTITIONS);
  const bStart = await waitFor(`${type} worker B restored its partitions`, 30_000, () => {
    const restored = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes(`"pid":${b.pid},`) && l.includes('"partition":') && /restored from checkpoint|starts without checkpoint/.test(l));
    if (restored.length < bPartitions.length) return undefined;
    return Object.fromEntries(restored.map((l) => JSON.parse(l) as { partition: number; nextOffset: number }).map((r) => [String(r.partition), r.nextOffset]));
  });
  await waitFor('three quarters of the events produced', 120_000, () => (produced() >= 0.75 ? true : undefined), 50);
  await waitStarted(logFile, b);
  b.kill('SIGTERM');
  expect(await exited(b)).toBe(0);
  const stopped = logged<{ positions: Record<string, number> }>(logFile, b.pid!, 'worker stopped: checkpoints written, left the group');
  await waitFor(`${type} worker A owning every partition again`, 60_000, () => (assignedIn(logFile, a.pid!).length === PARTITIONS ? true : undefined));
  return { bPositions: stopped?.positions ?? {}, bStart };
}

it('a second worker joining and leaving the group changes nothing in the final state', { timeout: 400_000 }, async () => {
  const job = await newTestJob('rebalance', PARTITIONS);
  const tag = uniqueName('r');
  const events = taggedEvents(tag, new EventGenerator({ seed: 5, users: 900, days: 30 }));
  const last = events[events.length - 1].eventTime;

  const ref = `${job.prefix}ref:`;
  const moved = `${job.prefix}moved:`;
  const dir = tempDir('sluice-rebalance-');
  const files = Object.fromEntries(
    (['churn', 'cart'] as const).map((type) => [type, writeWorkerConfig(workerConfigFor(job, type, { prefix: moved, group: `${job.group}-moved-${type}`, intervalSeconds: 0.5 }), dir, type)]),
  );
  // Events arrive over ~15 s while the group changes, so the second worker has live work to do.
  let sent = 0;
  const producing = (async () => {
    const chunk = 4_000;
    for (let i = 0; i < events.length; i += chunk) {
      sent += await produceEvents(job.topic, events.slice(i, i + chunk));
      await new Promise((r) => setTimeout(r, 500));
    }
    await producePerPartition(job.topic, PARTITIONS, (p) => toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: last + 3 * 3_600_000, sessionId: 'clock' }));
  })();
  const produced = (): number => sent / events.length;
  const [churn, cart] = await Promise.all(
    (['churn', 'cart'] as const).map((type) => joinAndLeave(type, files[type], join(dir, `${type}.log`), produced)),
  );
  await producing;
  for (const [type, r] of [['churn', churn], ['cart', cart]] as const) {
    // B really consumed while it was in the group.
    const progressed = Object.entries(r.bPositions).filter(([p, offset]) => offset > (r.bStart[p] ?? -1) && offset > 0);
    expect(progressed.length, `${type}: ${JSON.stringify(r)}`).toBeGreaterThan(0);
  }
  for (const type of ['churn', 'cart'] as const) {
    inProcess.push(await runWorker(workerConfigFor(job, type, { prefix: ref, group: `${job.group}-ref-${type}`, intervalSeconds: 5 }), { logger: quiet, metricsHost: '127.0.0.1' }));
  }
  for (const type of ['churn', 'cart'] as const) {
    await waitCheckpointedToEnd(job, PARTITIONS, 180_000, `${job.group}-moved-${type}`);
  }
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  for (const c of children) await exited(c);
  for (const type of ['churn', 'cart']) await waitCheckpointedToEnd(job, PARTITIONS, 180_000, `${job.group}-ref-${type}`);
  for (const w of inProcess.splice(0)) await w.stop();

  const refUsers = await readHashes(redis, ref, 'user:*');
  expect(refUsers.size).toBeGreaterThan(800);
  expect(await readHashes(redis, moved, 'user:*')).toEqual(refUsers);
  const refAlerts = await readHashes(redis, ref, 'alert:*');
  expect(refAlerts.size).toBeGreaterThan(10);
  expect(await readHashes(redis, moved, 'alert:*')).toEqual(refAlerts);
});
