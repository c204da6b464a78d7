import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { WorkerDocument } from '../../lib/worker-config/config.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { toWire } from '../../workers/events/wire.js';
import { createTopic, deleteTopics, RecordProducer } from '../../lib/kafka/client.js';
import { docker, kafka, redis, repoRoot, uniqueName } from '../support/infra.js';
import { freePorts } from '../support/cli.js';

const run = promisify(execFile);
const IMAGE = 'sluice:dev';
const EVENTS = 4_000;
const USERS = 200;

/**
 * The image as a pod runs it: `worker --config /etc/sluice/worker.yaml`, a
 * read-only root file system, a non-root user, checkpoints on a mounted volume.
 * Host networking reaches the local Kafka and Redis.
 */
describe('the sluice image (hack/build-image.sh)', () => {
  const env = { ...process.env, DOCKER_HOST: docker().host };
  const dir = mkdtempSync(join(tmpdir(), 'sluice-image-'));
  const topic = uniqueName('image');
  const prefix = `${uniqueName('image')}:`;
  const container = uniqueName('sluice-image-worker');
  const brokers = kafka().brokers;
  const client = new Redis({ host: redis().host, port: redis().port, lazyConnect: true });

  beforeAll(async () => {
    await run('bash', [join(repoRoot, 'hack', 'build-image.sh'), IMAGE], { env, timeout: 600_000 });
    await client.connect();
    await createTopic({ brokers }, topic, 2);
    const producer = await RecordProducer.connect({ brokers });
    const batch = [];
    for (const e of new EventGenerator({ seed: 11, users: USERS })) {
      batch.push({ key: e.userId, value: toWire(e) });
      if (batch.length === EVENTS) break;
    }
    await producer.send(topic, batch);
    await producer.disconnect();
  }, 600_000);

  afterAll(async () => {
    await run('docker', ['rm', '-f', container], { env }).catch(() => undefined);
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
    await deleteTopics({ brokers }, [topic, `${topic}.dlq`]).catch(() => undefined);
  });

  it('runs as a non-root user and is small enough to ship', async () => {
    const { stdout } = await run('docker', ['image', 'inspect', IMAGE, '--format', '{{.Config.User}} {{.Size}} {{json .Config.Entrypoint}}'], { env });
    const [user, size, entrypoint] = stdout.trim().split(' ');
    expect(user).toBe('65532:65532');
    expect(JSON.parse(entrypoint!)).toEqual(['node', '/app/bin/sluice.js']);
    expect(Number(size)).toBeLessThan(400e6);
  });

  it('docker run IMAGE worker --config ... reads events from the local Kafka and writes scores to Redis', async () => {
    const metricsPort = await freePorts(1);
    const config: WorkerDocument = {
      job: { name: 'image-test', namespace: 'test', type: 'churn' },
      kafka: { bootstrapServers: brokers, topic, consumerGroup: uniqueName('image-group'), startFrom: 'earliest', deadLetterTopic: `${topic}.dlq` },
      redis: { host: redis().host, port: redis().port, keyPrefix: prefix },
      model: {},
      checkpoint: { dir: '/var/lib/sluice/checkpoints', intervalSeconds: 2 },
      metrics: { port: metricsPort },
    };
    writeFileSync(join(dir, 'worker.yaml'), stringify(config));
    const checkpoints = join(dir, 'checkpoints');
    mkdirSync(checkpoints);
    chmodSync(checkpoints, 0o777); // the container's user (65532) writes here, as with a PVC's fsGroup
    chmodSync(dir, 0o755);

    const worker = spawn(
      'docker',
      [
        'run', '--rm', '--name', container, '--network', 'host', '--read-only',
        '-v', `${join(dir, 'worker.yaml')}:/etc/sluice/worker.yaml:ro`, '-v', `${checkpoints}:/var/lib/sluice/checkpoints`,
        IMAGE, 'worker', '--config', '/etc/sluice/worker.yaml',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let logs = '';
    worker.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    worker.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));

    const users = new Set<string>();
    let n = 0;
    for (const e of new EventGenerator({ seed: 11, users: USERS })) {
      users.add(e.userId);
      if (++n === EVENTS) break;
    }
    const deadline = Date.now() + 120_000;
    let scored = 0;
    while (Date.now() < deadline && worker.exitCode === null) {
      const pipe = client.pipeline();
      for (const u of users) pipe.hget(`${prefix}user:${u}`, 'churn_score');
      scored = ((await pipe.exec()) ?? []).filter(([, v]) => v !== null).length;
      if (scored === users.size) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(scored, `worker logs:\n${logs}`).toBe(users.size);
    const health = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect(health.status).toBe(200);

    // SIGTERM (docker stop): final checkpoint, clean exit.
    await run('docker', ['stop', '-t', '30', container], { env });
    expect(await exited, `worker logs:\n${logs}`).toBe(0);
    expect(readdirSync(checkpoints).length).toBeGreaterThan(0);
  });
});
