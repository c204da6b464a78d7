import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { kafka, redis, uniqueName } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { freePorts, runCliToEnd, startCli, stopLocalRun, type CliProcess } from '../support/cli.js';
import { killHard, produceEvents, readHashes, redisClient, removeTempDirsAfterAll, tempDir, waitFor } from '../support/workers.js';

removeTempDirsAfterAll();

/**
 * Failures that explain themselves, and stalls that are visible, as a user of `sluice run` sees them.
 * The cases are independent (own job, state directory, ports; the Redis case its own redis-server).
 * The Kafka case runs first and alone (it prints how soon its reason reached the terminal),
 * then the other two side by side.
 */
describe('sluice run: failures and stalls on the terminal and in sluice status', () => {
  const dir = tempDir('sluice-failures-');
  const brokers = kafka().brokers;
  const topic = uniqueName('failures');
  const runs: Array<{ run: CliProcess; state: string }> = [];
  let ownRedis: ChildProcess | undefined;

  // The shared Redis unless a case brings its own: only what a case breaks is missing.
  const jobFile = (name: string, redisPort = redis().port): string => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        apiVersion: 'sluice.dev/v1alpha1',
        kind: 'ProcessingJob',
        metadata: { name },
        spec: { type: 'churn', parallelism: 1, kafka: { bootstrapServers: brokers, topic, startFrom: 'earliest' }, redis: { host: redis().host, port: redisPort, keyPrefix: `${name}:` }, checkpoint: { intervalSeconds: 1 } },
      }),
    );
    return file;
  };
  /** Logs, checkpoints and run state of one case, apart from the others'. */
  const common = async (name: string): Promise<string[]> => [
    '--logs-dir', join(dir, name, 'logs'), '--checkpoint-dir', join(dir, name, 'checkpoints'), '--state-dir', join(dir, name, 'state'), '--metrics-port', String(await freePorts(2)), '--no-env-file',
  ];
  const start = async (name: string, args: string[], env?: NodeJS.ProcessEnv): Promise<CliProcess> => {
    const run = startCli(['run', '-f', ...args, ...(await common(name))], { cwd: dir, env });
    runs.push({ run, state: join(dir, name, 'state') });
    return run;
  };

  beforeAll(async () => {
    await createTopic({ brokers }, topic, 1);
  });
  afterAll(async () => {
    await Promise.all(runs.map(({ run, state }) => stopLocalRun(run, state)));
    if (ownRedis) await killHard(ownRedis);
    await deleteTopics({ brokers }, [topic, `${topic}.dlq`]).catch(() => undefined);
  });

  it('Kafka unreachable: the terminal says so within seconds, with the reason', async () => {
    const nowhere = `127.0.0.1:${await freePort()}`;
    const name = uniqueName('nokafka');
    const run = await start(name, [jobFile(name), '--bootstrap-servers', nowhere]);
    await run.waitFor(/started 1 churn worker/, 20_000);
    const started = Date.now();
    // The reason soon, not "exited with code 1" after 40 s under a pile of kafkajs ERROR lines: the
    // worker either still waits (KafkaUnreachable) or has exited with the error, to be restarted. How
    // soon is printed, not asserted (a loaded machine takes seconds to load the model first).
    const port = nowhere.split(':')[1]!;
    await run.waitFor(new RegExp(`worker 0 (not ready yet: .*\\(KafkaUnreachable\\)|exited with code 1: .*cannot start the Kafka consumer).*ECONNREFUSED 127\\.0\\.0\\.1:${port}`), 60_000);
    console.log(`Kafka unreachable: the reason reached the terminal ${((Date.now() - started) / 1000).toFixed(1)} s after the worker started`);
    // Transient: it is retried.
    await run.waitFor(/worker 0 exited with code 1: .*; restarting in \d+s/, 60_000);
    expect(run.output()).not.toMatch(/"level":50/);
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
  });

  describe.concurrent('a refusal and a stall, side by side', () => {
    it('a refused model: the job gives up at once with exit code 3 and the reason, instead of restarting forever', async () => {
      const notAModel = join(dir, 'model.onnx');
      writeFileSync(notAModel, 'this is not an ONNX model');
      const name = uniqueName('badmodel');
      const run = await start(name, [jobFile(name)], { CHURN_MODEL_PATH: notAModel });
      await run.waitFor(/not restarting it/, 60_000);
      const r = { code: (await run.exited).code, output: run.output() };
      expect(r.code).toBe(3);
      expect(r.output).toMatch(/worker 0 exited with code 3: it refused its model: .*not an ONNX model.*; not restarting it/);
      expect(r.output).not.toContain('restarting in');
    });

    it('Redis down: the terminal, sluice status and /metrics say what the worker waits for; it catches up when Redis is back', async () => {
      const port = await freePort();
      const startRedis = async (): Promise<ChildProcess> => {
        const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
        const c = redisClient(port);
        await waitFor(`redis on ${port}`, 15_000, async () => ((await c.ping().catch(() => undefined)) === 'PONG' ? true : undefined));
        c.disconnect();
        return child;
      };
      ownRedis = await startRedis();
      const name = uniqueName('noredis');
      const state = join(dir, name, 'state');
      const run = await start(name, [jobFile(name, port)]);
      await run.waitFor(/worker 0 ready/, 90_000);

      await killHard(ownRedis);
      ownRedis = undefined;
      const users = new Set<string>();
      // A few events are enough: the first write that fails is the stall.
      const events = [...new EventGenerator({ seed: 4, users: 30, days: 2 })].slice(0, 200).map((e) => ({ ...e, userId: `${name}-${e.userId}`, ...(e.cartId ? { cartId: `${name}-${e.cartId}` } : {}) }));
      for (const e of events) users.add(e.userId);
      await produceEvents(topic, events);
      await run.waitFor(/worker 0 waiting for redis \(RedisUnreachable\): /, 30_000);

      const [status, table] = await Promise.all([
        runCliToEnd(['status', '-o', 'json', '--interval', '1s', '--state-dir', state], { cwd: dir }),
        runCliToEnd(['status', '--interval', '1s', '--state-dir', state], { cwd: dir }),
      ]);
      const job = (JSON.parse(status.output) as { jobs: Array<{ name: string; state: string; stalls: Array<{ on: string; reason: string }> }> }).jobs.find((j) => j.name === name)!;
      expect(job.state).toBe('stalled');
      expect(job.stalls).toEqual([expect.objectContaining({ on: 'redis', reason: 'RedisUnreachable', worker: '0' })]);
      expect(table.output).toContain('waiting: worker 0 is stalled on redis (RedisUnreachable)');

      ownRedis = await startRedis();
      await run.waitFor(/worker 0: redis answers again \(RedisUnreachable over\)/, 60_000);
      const c = redisClient(port);
      try {
        await waitFor('every user scored after Redis came back', 60_000, async () => ((await readHashes(c, `${name}:`, 'user:*')).size === users.size ? true : undefined));
      } finally {
        c.disconnect();
      }
      run.child.kill('SIGINT');
      expect((await run.exited).code).toBe(0);
    });
  });
});
