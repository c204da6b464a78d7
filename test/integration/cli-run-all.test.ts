import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstEvents, removeTempDirsAfterAll } from '../support/workers.js';
import { examplesRun, freePorts, runCliToEnd, startCli, type CliProcess } from '../support/cli.js';

const EVENTS = 8_000;
const USERS = 300;
const SEED = 11;

removeTempDirsAfterAll();

/**
 * The seed's start_flink_jobs.py: both example jobs with one command, from a
 * folder, with a .env file, the environment and flags each setting something
 * (flags > environment > .env > job file).
 */
describe('sluice run -f <folder>: the churn and cart examples side by side', () => {
  const { dir, topic, prefix, churn, cart, brokers, redis: r, smtp: mail, client, writeExamples } = examplesRun('run-all');
  const jobsDir = join(dir, 'jobs');
  let run: CliProcess | undefined;
  let squatter: Server | undefined;

  beforeAll(async () => {
    mkdirSync(jobsDir);
    // The examples as shipped, with names of this test's own (the topic comes from the .env file).
    writeExamples(jobsDir);
    writeFileSync(
      join(dir, '.env'),
      [
        '# as in the seed system: read from the working directory',
        `KAFKA_BOOTSTRAP_SERVERS=${brokers.join(',')}`,
        `KAFKA_TOPIC=${topic}`,
        'REDIS_HOST=nowhere.invalid   # --redis wins',
        'CART_ABANDON_THRESHOLD=1     # the environment wins',
      ].join('\n') + '\n',
    );
    const produced = await runCliToEnd([
      'produce', '--brokers', brokers.join(','), '--topic', topic, '--rate', '0',
      '--count', String(EVENTS), '--users', String(USERS), '--seed', String(SEED),
    ]);
    expect(produced.code).toBe(0);
  });

  afterAll(async () => {
    if (run && run.child.exitCode === null) run.child.kill('SIGKILL');
    squatter?.close();
  });

  it('starts both jobs with one command, each worker on its own free metrics port, and both score', async () => {
    // Another program holds the first port: the workers take the next free ones.
    const base = await freePorts(6);
    squatter = createServer();
    await new Promise<void>((resolve) => squatter!.listen(base, '127.0.0.1', () => resolve()));

    run = startCli(
      [
        'run', '-f', jobsDir, '--redis', `${r.host}:${r.port}`, '--smtp', `${mail.host}:${mail.port}`, '--key-prefix', prefix,
        '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', join(dir, 'state'),
        '--metrics-port', String(base),
      ],
      { cwd: dir, env: { CART_ABANDON_THRESHOLD: '0.5', KAFKA_BOOTSTRAP_SERVERS: '' } },
    );
    await run.waitFor(new RegExp(`\\[${churn}\\] started 2 churn worker\\(s\\).*metrics ports \\d+, \\d+`), 20_000);
    await run.waitFor(new RegExp(`\\[${cart}\\] started 1 cart worker\\(s\\)`), 20_000);
    for (const [job, i] of [[churn, 0], [churn, 1], [cart, 0]] as const) {
      await run.waitFor(new RegExp(`\\[${job}\\] worker ${i} ready`), 90_000);
    }

    // Ports: distinct, recorded in the run state, not the one in use, each answering for its own job.
    const state = (job: string): { workers: { metricsPort: number; status: string }[] } =>
      JSON.parse(readFileSync(join(dir, 'state', `${job}.json`), 'utf8')) as { workers: { metricsPort: number; status: string }[] };
    const ports = [...state(churn).workers, ...state(cart).workers].map((w) => w.metricsPort);
    expect(new Set(ports).size).toBe(3);
    expect(ports).not.toContain(base);
    for (const [job, p] of [[churn, state(churn).workers[0]!.metricsPort], [cart, state(cart).workers[0]!.metricsPort]] as const) {
      expect(await (await fetch(`http://127.0.0.1:${p}/metrics`)).text()).toContain(`job="${job}"`);
    }

    // Both score: every user has a churn score, carts are scored, and alerts go out through --smtp.
    const users = new Set(firstEvents(EVENTS, { seed: SEED, users: USERS }).map((e) => e.userId));
    const deadline = Date.now() + 90_000;
    let view = { churn: 0, cart: 0, sent: 0 };
    while (Date.now() < deadline) {
      const pipe = client.pipeline();
      for (const u of users) pipe.hmget(`${prefix}user:${u}`, 'churn_score', 'cart_abandon_score');
      const rows = ((await pipe.exec()) ?? []).map(([, v]) => v as (string | null)[]);
      const alerts = await client.zrange(`${prefix}alerts`, 0, -1);
      const emails = alerts.length ? await Promise.all(alerts.map((id) => client.hget(`${prefix}alert:${id}`, 'email'))) : [];
      view = { churn: rows.filter((v) => v[0] !== null).length, cart: rows.filter((v) => v[1] !== null).length, sent: emails.filter((e) => e === 'sent').length };
      if (view.churn === users.size && view.cart > 0 && view.sent > 0) break;
      await new Promise((res) => setTimeout(res, 1_000));
    }
    expect(view.churn).toBe(users.size);
    expect(view.cart).toBeGreaterThan(0);
    // CART_ABANDON_THRESHOLD=0.5 from the environment, not the .env's 1: some carts alerted.
    expect(view.sent).toBeGreaterThan(0);

    // sluice status sees both, with their workers, ports and partitions.
    const status = await runCliToEnd(['status', '-o', 'json', '--interval', '1s', '--state-dir', join(dir, 'state')], { cwd: dir });
    expect(status.code).toBe(0);
    const seen = (JSON.parse(status.output) as { jobs: Array<{ name: string; ready: number; workers: Array<{ metricsPort: number; partitions: unknown[] }> }> }).jobs;
    expect(seen.map((j) => [j.name, j.ready]).sort()).toEqual([[cart, 1], [churn, 2]].sort());
    expect(seen.flatMap((j) => j.workers.map((w) => w.metricsPort)).sort()).toEqual([...ports].sort());
    const table = await runCliToEnd(['status', '--interval', '1s', '--state-dir', join(dir, 'state')], { cwd: dir });
    expect(table.output).toMatch(new RegExp(`^${churn}\\s+churn\\s+running\\s+2/2\\s`, 'm'));

    // sluice stop with no name stops both.
    const stop = await runCliToEnd(['stop', '--state-dir', join(dir, 'state')], { cwd: dir });
    expect(stop.code).toBe(0);
    expect(stop.output).toContain(`job '${churn}' stopped`);
    expect(stop.output).toContain(`job '${cart}' stopped`);
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });
});
