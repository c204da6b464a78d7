/**
 * Snapshot and restore times at scale, on the real Kafka of hack/infra.sh.
 *   npx tsx bench/stateops.bench.ts [--users 100000,1000000] [--type churn|cart] [--partitions 8]
 *
 * For each user count: the state of that many users (three events each, folded
 * in by the job's own code) is written as checkpoints; a worker restores them
 * (time to Ready); `sluice state snapshot` takes a snapshot while the worker
 * runs (the worker writes its partitions between batches); the worker stops; a
 * restore rewrites a new job's checkpoints from the snapshot; a worker of the
 * new job restores those (time to Ready). Also: a snapshot with no worker
 * running (a copy of the checkpoints). Sizes are of the binary checkpoint format (docs/checkpoints.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { JobType, WorkerConfig } from '../lib/worker-config/config.js';
import { createTopic, deleteTopics, type KafkaConnectionOptions } from '../lib/kafka/client.js';
import type { UserEvent } from '../workers/events/types.js';
import { resolveWorkerConfig } from '../workers/config.js';
import { jobTypes } from '../workers/jobs/registry.js';
import { runWorker, type RunningWorker } from '../workers/main.js';
import { CheckpointStore } from '../workers/runtime/checkpoint.js';
import { snapshotDir } from '../workers/runtime/control.js';
import { restoreState } from '../workers/stateops/restore.js';
import { takeSnapshot } from '../workers/stateops/snapshot.js';
import { kafka, redis, uniqueName } from '../test/support/infra.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const USERS = arg('--users', '100000,1000000').split(',').map(Number);
const TYPE = arg('--type', 'churn') as JobType;
const PARTITIONS = Number(arg('--partitions', '8'));
const quiet = pino({ level: 'silent' });
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(0)} MiB`;

function* userEvents(users: number, partition: number): Generator<UserEvent> {
  const t0 = Date.parse('2024-04-01T00:00:00Z');
  for (let u = partition; u < users; u += PARTITIONS) {
    const userId = `u${u}`;
    const at = t0 + (u % 86_400) * 1000;
    yield { userId, eventType: 'session_start', eventTime: at, sessionId: `s${u}` };
    yield { userId, eventType: 'product_view', eventTime: at + 1000, sessionId: `s${u}`, productId: `p${u % 997}` };
    yield { userId, eventType: 'add_to_cart', eventTime: at + 2000, sessionId: `s${u}`, productId: `p${u % 997}`, cartId: `c${u}`, price: 19.9, quantity: 1 };
  }
}

async function writeState(users: number, config: WorkerConfig): Promise<void> {
  const definition = jobTypes.get(TYPE);
  const job = definition.job({ config, model: await definition.loadModel(undefined), state: { backend: 'memory' } });
  const store = new CheckpointStore(config.checkpoint.dir, config.kafka.consumerGroup, config.kafka.topic, job);
  for (let p = 0; p < PARTITIONS; p++) {
    const state = job.newState();
    let batch: UserEvent[] = [];
    for (const e of userEvents(users, p)) {
      batch.push(e);
      if (batch.length === 30_000) {
        await job.process(state, batch);
        batch = [];
      }
    }
    await job.process(state, batch);
    store.saveNow(p, state, 0);
    await state.table.dispose();
  }
}

function configFor(name: string, topic: string, dir: string): WorkerConfig {
  return resolveWorkerConfig(
    {
      job: { name, type: TYPE },
      kafka: { bootstrapServers: kafka().brokers, topic, consumerGroup: `${name}-group`, startFrom: 'earliest', sessionTimeoutSeconds: 30 },
      redis: { host: redis().host, port: redis().port, keyPrefix: `${name}:` },
      checkpoint: { dir, intervalSeconds: 3600 },
      metrics: { port: 0 },
      ...(TYPE === 'cart' ? { cart: { abandonWindowMinutes: 60, abandonThreshold: 0.75 } } : {}),
    },
    {},
    { source: 'bench' },
  );
}

async function timeToReady(config: WorkerConfig): Promise<{ worker: RunningWorker; ms: number }> {
  const started = performance.now();
  const worker = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  while (!worker.readiness().ready) await new Promise((r) => setTimeout(r, 50));
  return { worker, ms: performance.now() - started };
}

async function bench(users: number, connection: KafkaConnectionOptions): Promise<string> {
  const name = uniqueName(`bench-${TYPE}`);
  const topic = `${name}.events`;
  await createTopic(connection, topic, PARTITIONS);
  const dirA = mkdtempSync(join(tmpdir(), `${name}-a-`));
  const dirB = mkdtempSync(join(tmpdir(), `${name}-b-`));
  try {
    const a = configFor(`${name}-a`, topic, dirA);
    let t = performance.now();
    await writeState(users, a);
    const built = performance.now() - t;

    t = performance.now();
    const copied = await takeSnapshot(a, 'copy', { connection });
    const copyMs = performance.now() - t;

    const loadA = await timeToReady(a);
    t = performance.now();
    const live = await takeSnapshot(a, 'live', { connection, timeoutMs: 600_000 });
    const liveMs = performance.now() - t;
    await loadA.worker.stop();

    const b = configFor(`${name}-b`, topic, dirB);
    t = performance.now();
    await restoreState(b, { fromDir: snapshotDir(dirA, 'live'), state: 'keep' }, { connection });
    const restoreMs = performance.now() - t;
    const loadB = await timeToReady(b);
    await loadB.worker.stop();
    return [
      `${users.toLocaleString('en-US')} ${TYPE} users, ${PARTITIONS} partitions, ${mib(live.sizeBytes)} of state (built in ${secs(built)})`,
      `  snapshot, workers running (request -> every partition written -> manifest): ${secs(liveMs)}`,
      `  snapshot, no worker (copy of the checkpoints):                            ${secs(copyMs)} (${mib(copied.sizeBytes)})`,
      `  restore into a new job (checkpoints rewritten from the snapshot):          ${secs(restoreMs)}`,
      `  worker start to Ready on the restored state (checkpoints read):            ${secs(loadB.ms)} (original job: ${secs(loadA.ms)})`,
      `  restore total (rewrite + worker Ready):                                    ${secs(restoreMs + loadB.ms)}`,
    ].join('\n');
  } finally {
    await deleteTopics(connection, [topic]).catch(() => undefined);
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
}

const connection = { brokers: kafka().brokers };
for (const users of USERS) console.log(await bench(users, connection));
