import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { kafka, redis, repoRoot, uniqueName } from '../support/infra.js';
import { freePorts, runCliToEnd, startCli, type CliProcess } from '../support/cli.js';
import { firstEvents } from '../support/workers.js';

const EVENTS = 6_000;
const USERS = 300;
const SEED = 7;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('sluice run -f examples/churn-job.yaml (local mode) against the local Kafka and Redis', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-run-'));
  const topic = uniqueName('cli-run');
  const prefix = `${uniqueName('cli-run')}:`;
  const name = uniqueName('churn');
  // A job (so a consumer group) of its own for the SIGKILL test: the group of the test before it still holds
  // the member that test killed until its session expires, and joining it would wait for that.
  const orphans = uniqueName('churn');
  const brokers = kafka().brokers;
  const { host, port } = redis();
  const client = new Redis({ host, port, lazyConnect: true });
  let run: CliProcess | undefined;

  beforeAll(async () => {
    await client.connect();
    await createTopic({ brokers }, topic, 2);
    // The example as shipped, with a topic, key prefix and name of this test's own.
    const job = parse(readFileSync(join(repoRoot, 'examples', 'churn-job.yaml'), 'utf8')) as {
      metadata: { name: string };
      spec: { parallelism: number; kafka: { topic: string }; redis: { keyPrefix?: string }; checkpoint: { intervalSeconds: number } };
    };
    expect(job.spec.parallelism).toBe(2);
    job.metadata.name = name;
    job.spec.kafka.topic = topic;
    job.spec.redis.keyPrefix = prefix;
    job.spec.checkpoint.intervalSeconds = 2;
    writeFileSync(join(dir, 'churn-job.yaml'), stringify(job));
    writeFileSync(join(dir, 'orphans-job.yaml'), stringify({ ...job, metadata: { ...job.metadata, name: orphans } }));
  });

  afterAll(async () => {
    if (run && run.child.exitCode === null) run.child.kill('SIGKILL');
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
    await deleteTopics({ brokers }, [topic, `${topic}.dlq`]).catch(() => undefined);
  });

  it('produces events with `sluice produce`, showing progress', async () => {
    const r = await runCliToEnd([
      'produce', '--brokers', brokers.join(','), '--topic', topic, '--rate', '0',
      '--count', String(EVENTS), '--users', String(USERS), '--seed', String(SEED),
    ]);
    expect(r.output).toContain(`produced ${EVENTS.toLocaleString('en-US')} events to ${brokers.join(',')}/${topic}`);
    expect(r.code).toBe(0);
  });

  it('runs two worker processes that write a churn score for every user, then stops cleanly', async () => {
    const metricsPort = await freePorts(2);
    run = startCli(
      [
        'run', '-f', join(dir, 'churn-job.yaml'), '--bootstrap-servers', brokers.join(','), '--redis', `${host}:${port}`,
        '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', join(dir, 'state'),
        '--metrics-port', String(metricsPort),
      ],
      { cwd: dir },
    );
    await run.waitFor(/started 2 churn worker\(s\)/, 20_000);
    await run.waitFor(/worker 0 ready/, 90_000);
    await run.waitFor(/worker 1 ready/, 90_000);

    // Every user that appears in the produced events ends up with a score.
    const users = new Set(firstEvents(EVENTS, { seed: SEED, users: USERS }).map((e) => e.userId));
    const deadline = Date.now() + 90_000;
    let scored = 0;
    while (Date.now() < deadline) {
      const pipe = client.pipeline();
      for (const u of users) pipe.hget(`${prefix}user:${u}`, 'churn_score');
      const results = (await pipe.exec()) ?? [];
      scored = results.filter(([, v]) => v !== null).length;
      if (scored === users.size) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(scored).toBe(users.size);
    const sample = await client.hgetall(`${prefix}user:${[...users][0]}`);
    expect(Number(sample.churn_score)).toBeGreaterThanOrEqual(0);
    expect(Number(sample.churn_score)).toBeLessThanOrEqual(1);
    expect(['low', 'medium', 'high']).toContain(sample.risk_level);

    // Both workers really share the work: each owns one of the two partitions.
    for (const p of [metricsPort, metricsPort + 1]) {
      const metrics = await (await fetch(`http://127.0.0.1:${p}/metrics`)).text();
      expect(metrics, `worker on port ${p}`).toMatch(/^sluice_assigned_partitions(\{[^}]*\})? 1$/m);
    }

    const state = JSON.parse(readFileSync(join(dir, 'state', `${name}.json`), 'utf8')) as { workers: { pid: number }[] };
    const workerPids = state.workers.map((w) => w.pid);
    expect(workerPids.every(isAlive)).toBe(true);

    const stop = await runCliToEnd(['stop', name, '--state-dir', join(dir, 'state')]);
    expect(stop.output).toContain(`job '${name}' stopped`);
    expect(stop.output).not.toContain('SIGKILL');
    expect(stop.code).toBe(0);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.output()).toContain(`job '${name}' stopped`);
    expect(workerPids.filter(isAlive)).toEqual([]);
    expect(existsSync(join(dir, 'state', `${name}.json`))).toBe(false);

    // Logs per worker, and checkpoints in the local directory.
    for (const i of [0, 1]) expect(statSync(join(dir, 'logs', `${name}-${i}.log`)).size).toBeGreaterThan(0);
    expect(readdirSync(join(dir, 'checkpoints', name)).length).toBeGreaterThan(0);
  });

  const stateFile = join(dir, 'state', `${name}.json`);

  /** `sluice run` of the example in the foreground, once both workers are ready. */
  async function runUntilReady(file = 'churn-job.yaml'): Promise<CliProcess> {
    const metricsPort = await freePorts(2);
    const cli = startCli(
      [
        'run', '-f', join(dir, file), '--bootstrap-servers', brokers.join(','), '--redis', `${host}:${port}`,
        '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', join(dir, 'state'),
        '--metrics-port', String(metricsPort),
      ],
      { cwd: dir },
    );
    await cli.waitFor(/worker 1 ready/, 90_000);
    return cli;
  }

  it('restarts a worker that dies, like a Deployment, and stops cleanly on Ctrl-C (SIGINT)', async () => {
    run = await runUntilReady();
    const pidOf = (i: number): number =>
      (JSON.parse(readFileSync(stateFile, 'utf8')) as { workers: { index: number; pid: number }[] }).workers.find((w) => w.index === i)!.pid;
    const first = pidOf(1);
    process.kill(first, 'SIGKILL');
    await run.waitFor(/worker 1 was killed by SIGKILL; restarting in 1s/, 20_000);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (pidOf(1) === first || pidOf(1) === 0)) await new Promise((r) => setTimeout(r, 200));
    const second = pidOf(1);
    expect(second).not.toBe(first);
    expect(isAlive(second)).toBe(true);

    const workers = [pidOf(0), second];
    run.child.kill('SIGINT');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.output()).toMatch(/SIGINT: stopping 2 worker\(s\)/);
    expect(workers.filter(isAlive)).toEqual([]);
    expect(existsSync(stateFile)).toBe(false);
  });

  it('a sluice run killed with SIGKILL leaves no worker behind: each one stops cleanly on its own', async () => {
    run = await runUntilReady('orphans-job.yaml');
    const workers = (JSON.parse(readFileSync(join(dir, 'state', `${orphans}.json`), 'utf8')) as { workers: { pid: number }[] }).workers.map((w) => w.pid);
    expect(workers.filter(isAlive)).toHaveLength(2);
    run.child.kill('SIGKILL');
    await run.exited;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && workers.some(isAlive)) await new Promise((r) => setTimeout(r, 200));
    expect(workers.filter(isAlive)).toEqual([]);
    for (const i of [0, 1]) expect(readFileSync(join(dir, 'logs', `${orphans}-${i}.log`), 'utf8')).toContain('"signal":"SIGHUP"');
  });

  it('gives up, with the worker\'s reason, when the workers refuse their configuration', async () => {
    const r = await runCliToEnd(
      [
        'run', '-f', join(repoRoot, 'examples', 'cart-job.yaml'), '--bootstrap-servers', brokers.join(','), '--redis', `${host}:${port}`,
        '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', join(dir, 'state'),
        '--metrics-port', String(await freePorts(1)),
      ],
      { cwd: dir, env: { CART_ABANDON_THRESHOLD: 'high' }, timeoutMs: 60_000 },
    );
    expect(r.code).toBe(2);
    // The worker's own reason on the terminal, and no restart loop.
    expect(r.output).toContain(
      '[cart] worker 0 exited with code 2: it refused its configuration: environment variable CART_ABANDON_THRESHOLD="high" is not a number; not restarting it',
    );
    expect(r.output).not.toContain('restarting in');
    expect(r.output).toContain(`error: job 'cart' stopped: a worker refused its configuration: environment variable CART_ABANDON_THRESHOLD="high" is not a number`);
  });

  it('--detach does not report success when a worker refuses to start: it exits 1 with the reason', async () => {
    const r = await runCliToEnd(
      [
        'run', '-f', join(repoRoot, 'examples', 'cart-job.yaml'), '--bootstrap-servers', brokers.join(','), '--redis', `${host}:${port}`,
        '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', join(dir, 'state'),
        '--metrics-port', String(await freePorts(1)), '--detach',
      ],
      { cwd: dir, env: { CART_ABANDON_THRESHOLD: 'high' }, timeoutMs: 60_000 },
    );
    expect(r.code).toBe(1);
    expect(r.output).toContain(`job 'cart' stopped: a worker refused its configuration: environment variable CART_ABANDON_THRESHOLD="high" is not a number`);
    expect(r.output).toMatch(/error: not every job started cleanly/);
    // What `sluice status` shows until the next run: the job was given up, and why.
    const stop = await runCliToEnd(['stop', 'cart', '--state-dir', join(dir, 'state')], { cwd: dir });
    expect(stop.output).toContain("job 'cart' was given up (a worker refused its configuration");
  });

  it('--detach starts the job in the background and returns; sluice stop ends it', async () => {
    const args = [
      '-f', join(dir, 'churn-job.yaml'), '--bootstrap-servers', brokers.join(','), '--redis', `${host}:${port}`,
      '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', join(dir, 'state'),
      '--metrics-port', String(await freePorts(2)),
    ];
    const started = await runCliToEnd(['run', ...args, '--detach', '--wait', '80s'], { cwd: dir, timeoutMs: 90_000 });
    expect(started.code).toBe(0);
    // It returns once the workers are ready, and says so.
    expect(started.output).toMatch(new RegExp(`job '${name}': 2/2 churn worker\\(s\\) ready; metrics ports \\d+, \\d+`));
    const m = started.output.match(/running in the background \(supervisor pid (\d+)\)/);
    const supervisor = Number(m![1]);
    expect(isAlive(supervisor)).toBe(true);

    // A second start of the same job is refused while it runs.
    const again = await runCliToEnd(['run', ...args], { cwd: dir, timeoutMs: 30_000 });
    expect(again.code).toBe(1);
    expect(again.output).toMatch(new RegExp(`job '${name}' is already running locally \\(pids [\\d, ]+\\): run 'sluice stop ${name}' first`));

    const stop = await runCliToEnd(['stop', '--state-dir', join(dir, 'state')], { cwd: dir });
    expect(stop.code).toBe(0);
    expect(stop.output).toContain(`job '${name}' stopped`);
    expect(isAlive(supervisor)).toBe(false);
    expect(readFileSync(join(dir, 'logs', `${name}-supervisor.log`), 'utf8')).toContain(`job '${name}' stopped`);
  });
});
