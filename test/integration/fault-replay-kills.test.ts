/**
 * A replay of 1M events by two worker processes per job (churn, and cart with
 * its alert mails), with 20 SIGKILLs spread over it by the offsets reached (10
 * per job, alternating between the two members, each at a random point between
 * two checkpoints, each followed by the rebalance that brings the replacement
 * in), beside an undisturbed run of the same topic. Redis ends
 * exactly as after the undisturbed run; no cart is mailed twice; every alert
 * marked sent was mailed; an alert whose sender died mid-send is 'uncertain'
 * (the default at-most-once delivery), never resent, at most one per kill.
 *
 * The events go to the topic in slices of 100k, each as soon as both jobs are
 * into the one before, so every kill lands while its workers are busy and the
 * test lasts about as long as its 10 rebalances per job.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { RecordProducer } from '../../lib/kafka/client.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { toWire } from '../../workers/events/wire.js';
import { uniqueName } from '../support/infra.js';
import { checkpointedToEnd, checkpointPositions, differences, hashesUnder, SupervisedWorker } from '../support/faults.js';
import {
  alertMailCartIds,
  connection,
  newTestJob,
  producePerPartition,
  redisClient,
  removeTempDirsAfterAll,
  tempDir,
  waitFor,
  workerConfigFor,
  writeWorkerConfig,
  type TestJob,
} from '../support/workers.js';

removeTempDirsAfterAll();
const redis = redisClient();
const PARTITIONS = 4;
const KILLS_PER_JOB = 10;
const SLICE = 100_000;
/** Checkpoints of the disturbed workers: a kill replays at most this much of each partition. */
const CHECKPOINT_SECONDS = 0.2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const members: SupervisedWorker[] = [];

afterAll(async () => {
  for (const w of members) await w.destroy();
  redis.disconnect();
});

/** Partitions assigned to that process, from its last "partitions assigned" line. */
function assigned(w: SupervisedWorker): number[] | undefined {
  const line = readFileSync(w.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"pid":${w.pid},`) && l.includes('"msg":"partitions assigned"'))
    .at(-1);
  return line ? (JSON.parse(line) as { partitions: number[] }).partitions : undefined;
}

/** Events checkpointed by a group (the sum of its partitions' next offsets). */
const checkpointed = (job: TestJob, group: string): number => checkpointPositions(job.checkpointDir, group, job.topic, PARTITIONS).reduce((a, o) => a + Math.max(0, o), 0);

interface Kills {
  /** Events checkpointed by the group at each kill. */
  at: number[];
  /** Milliseconds from each kill to the replacement's first partitions (the rebalance). */
  rebalanceMs: number[];
}

/**
 * Kill k lands at a random offset inside slice k, plus a random part of a
 * checkpoint interval (so not always just after a checkpoint); the members
 * take turns; the next kill waits for the replacement's partitions.
 */
async function killLoop(job: TestJob, group: string, pair: SupervisedWorker[]): Promise<Kills> {
  const kills: Kills = { at: [], rebalanceMs: [] };
  for (let k = 0; k < KILLS_PER_JOB; k++) {
    const target = Math.round((k + 0.1 + 0.8 * Math.random()) * SLICE);
    await waitFor(`${group} past ${target} events`, 120_000, () => (checkpointed(job, group) >= target ? true : undefined), 25);
    await sleep(Math.random() * CHECKPOINT_SECONDS * 1000);
    const victim = pair[k % 2];
    kills.at.push(checkpointed(job, group));
    const killedAt = Date.now();
    await victim.kill();
    // The replacement joins; the group rebalances once the dead member's session (6 s) expires.
    await waitFor(`${group}: the replacement of kill ${k + 1} in the group (log: ${victim.logFile})`, 60_000, () => ((assigned(victim)?.length ?? 0) > 0 ? true : undefined), 50);
    kills.rebalanceMs.push(Date.now() - killedAt);
  }
  return kills;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

it('replays 1M events through 20 SIGKILLs and rebalances to exactly the Redis state of an undisturbed run, never mailing a cart twice', { timeout: 480_000 }, async () => {
  const started = Date.now();
  const job = await newTestJob('replay', PARTITIONS);
  const tag = uniqueName('r');
  const cart = { abandonWindowMinutes: 60, abandonThreshold: 0.9 };
  const run = { prefix: `${job.prefix}run:`, churn: `${job.group}-churn`, cart: `${job.group}-cart` };
  const ref = { prefix: `${job.prefix}ref:`, churn: `${job.group}-ref-churn`, cart: `${job.group}-ref-cart` };

  // Two runs of the same topic, each job as `sluice worker` processes restarted like pods: the undisturbed
  // one (one process per job, alerts only recorded) and the disturbed one (two per job, killed in turns).
  const dir = tempDir('sluice-replay-');
  const pairs: Record<'churn' | 'cart', SupervisedWorker[]> = { churn: [], cart: [] };
  for (const type of ['churn', 'cart'] as const) {
    const refConfig = workerConfigFor(job, type, { prefix: ref.prefix, group: ref[type], intervalSeconds: 1, cart });
    const reference = new SupervisedWorker(writeWorkerConfig(refConfig, dir, `ref-${type}`), join(dir, `ref-${type}.log`));
    reference.start();
    members.push(reference);
    const config = workerConfigFor(job, type, { prefix: run.prefix, group: run[type], intervalSeconds: CHECKPOINT_SECONDS, alerts: type === 'cart', cart });
    const file = writeWorkerConfig(config, dir, type);
    for (const n of [0, 1]) {
      const w = new SupervisedWorker(file, join(dir, `${type}-${n}.log`));
      w.start();
      members.push(w);
      pairs[type].push(w);
    }
  }

  // The events, generated and sent slice by slice: slice j once both jobs are into slice j-1.
  const generator = new EventGenerator({ seed: 17, users: 7000, days: 30 });
  let produced = 0;
  let produceMs = 0;
  const production = (async () => {
    const producer = await RecordProducer.connect(connection());
    try {
      let chunk: Array<{ key: string; value: string }> = [];
      const flush = async (): Promise<void> => {
        const t = Date.now();
        await producer.send(job.topic, chunk);
        produceMs += Date.now() - t;
        produced += chunk.length;
        chunk = [];
      };
      for (const e of generator) {
        if (produced % SLICE === 0 && chunk.length === 0 && produced >= 2 * SLICE) {
          const into = produced - SLICE;
          await waitFor(`both jobs past ${into} events`, 180_000, () => (checkpointed(job, run.churn) >= into && checkpointed(job, run.cart) >= into ? true : undefined), 50);
        }
        chunk.push({ key: `${tag}-${e.userId}`, value: toWire({ ...e, userId: `${tag}-${e.userId}`, ...(e.cartId ? { cartId: `${tag}-${e.cartId}` } : {}) }) });
        // Sent in order (one user's events stay in order on its partition), 5k a request: even all on one
        // partition they stay under the broker's 1 MiB per batch (20k once exceeded it).
        if (chunk.length === 5_000) await flush();
      }
      if (chunk.length) await flush();
    } finally {
      await producer.disconnect();
    }
    // One later event per partition moves each partition's event time past the last cart timers.
    await producePerPartition(job.topic, PARTITIONS, (p) => toWire({ userId: `${tag}-clock-${p}`, eventType: 'page_view', eventTime: generator.end + 3 * 3_600_000 }));
  })();
  const [churnKills, cartKills] = await Promise.all([killLoop(job, run.churn, pairs.churn), killLoop(job, run.cart, pairs.cart), production]);
  const producedAt = Date.now();
  expect(produced).toBeGreaterThanOrEqual(1_000_000);

  const catchUpMs = Math.max(
    ...(await Promise.all([run.churn, run.cart, ref.churn, ref.cart].map((g) => checkpointedToEnd(connection(), job.checkpointDir, g, job.topic, PARTITIONS, 180_000)))),
  );
  for (const w of members) {
    await waitFor(`worker ${w.pid} started`, 60_000, () => (w.started() ? true : undefined));
    expect(await w.stop(), `exit code after SIGTERM (log: ${w.logFile})`).toBe(0);
  }

  const users = await hashesUnder(redis, run.prefix, 'user:*');
  const refUsers = await hashesUnder(redis, ref.prefix, 'user:*');
  expect(refUsers.size).toBeGreaterThan(6000);
  expect(differences(users, refUsers), `users differing from the undisturbed run (logs in ${dir})`).toEqual([]);
  const alerts = await hashesUnder(redis, run.prefix, 'alert:*');
  const refAlerts = await hashesUnder(redis, ref.prefix, 'alert:*');
  expect(refAlerts.size).toBeGreaterThan(50);
  expect(differences(alerts, refAlerts, 'email'), 'alerts differing from the undisturbed run').toEqual([]);

  // At most once: no cart mailed twice; every alert marked sent was mailed; the others are 'uncertain', at most one per kill.
  const mails = alertMailCartIds((id) => id.startsWith(`${tag}-`));
  expect(mails.filter((id, i) => mails.indexOf(id) !== i), 'carts mailed twice').toEqual([]);
  const sent = [...alerts.values()].filter((h) => h.email === 'sent').map((h) => h.cart_id!);
  const uncertain = [...alerts.values()].filter((h) => h.email !== 'sent');
  expect(uncertain.map((h) => h.email).filter((e) => e !== 'uncertain'), 'alerts neither sent nor uncertain').toEqual([]);
  expect(uncertain.length).toBeLessThanOrEqual(KILLS_PER_JOB);
  const mailed = new Set(mails);
  expect(sent.filter((id) => !mailed.has(id)), 'alerts marked sent that no mail carried').toEqual([]);
  const alerted = new Set([...alerts.values()].map((h) => h.cart_id));
  expect(mails.filter((id) => !alerted.has(id)), 'mails of carts with no alert').toEqual([]);

  // Nothing was deleted from the topic: a worker that passed over records (taking a gap for retention) lost events.
  const logs = [...pairs.churn, ...pairs.cart].map((w) => readFileSync(w.logFile, 'utf8'));
  expect(logs.flatMap((l) => l.split('\n').filter((line) => line.includes("deleted by the topic's retention"))), 'records passed over').toEqual([]);
  const soughtBack = logs.reduce((n, l) => n + l.split('the consumer is ahead of the checkpoint').length - 1, 0);
  const exits = members.map((w) => w.exitsByItself).reduce((a, b) => a + b, 0);
  const rebalances = [...churnKills.rebalanceMs, ...cartKills.rebalanceMs];
  const k = (n: number): string => `${Math.round(n / 1000)}k`;
  console.log(
    `replay with kills: ${produced} events, ${churnKills.at.length + cartKills.at.length} SIGKILLs (churn at ${churnKills.at.map(k).join(',')}, ` +
      `cart at ${cartKills.at.map(k).join(',')} events), rebalance after a kill median ${median(rebalances)} ms, max ${Math.max(...rebalances)} ms; ` +
      `all caught up ${catchUpMs} ms after the last event (production ${producedAt - started} ms, of which sending ${produceMs} ms); ` +
      `${refUsers.size} users identical, ${refAlerts.size} alerts identical, ${mails.length} mails, none twice, ${uncertain.length} uncertain, ` +
      `${soughtBack} partitions sought back to their checkpoint, ${exits} exits by themselves, total ${Date.now() - started} ms`,
  );
});
