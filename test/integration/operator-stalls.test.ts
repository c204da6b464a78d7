import { spawn, type ChildProcess } from 'node:child_process';
import { expect, it } from 'vitest';
import { conditionOf } from '../../operator/reconcile/status.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { runWorker, type RunningWorker } from '../../workers/main.js';
import { waitFor } from '../support/cluster.js';
import { kafka, kube, uniqueName } from '../support/infra.js';
import { runCliToEnd } from '../support/cli.js';
import { operatorInNamespace, testCluster } from '../support/operator.js';
import { freePort } from '../support/ports.js';
import { killHard, produceEvents, redisClient, tempDir, workerConfigFor, workerTestFile } from '../support/workers.js';

const cluster = testCluster();
const ns = uniqueName('op-stalls');
const topic = uniqueName('stall-events');
let worker: RunningWorker | undefined;
let ownRedis: ChildProcess | undefined;

const { quiet } = workerTestFile(async () => {
  await worker?.stop();
  if (ownRedis) await killHard(ownRedis);
});

// KWOK pods run no container: the job's pod is answered by a real worker on this machine
// (same topic, a Redis of its own), whose /status the operator reads as it would a pod's.
operatorInNamespace(cluster, ns, topic, { workerHealthMs: 1_000 }, { workerStatusUrl: () => (worker ? `http://127.0.0.1:${worker.metricsPort}/status` : undefined) });

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const c = redisClient(port);
  await waitFor(`redis on ${port}`, 15_000, async () => ((await c.ping().catch(() => undefined)) === 'PONG' ? true : undefined));
  c.disconnect();
  return child;
}

it('shows a worker waiting for Redis as Degraded/RedisUnreachable in the ProcessingJob status, and clears it when Redis is back', { timeout: 180_000 }, async () => {
  const port = await freePort();
  ownRedis = await startRedis(port);
  const job = { name: uniqueName('stall'), topic, group: uniqueName('stall-group'), prefix: `${uniqueName('stall')}:`, checkpointDir: tempDir('sluice-op-stall-') };
  worker = await runWorker(workerConfigFor(job, 'churn', { redisPort: port }), { logger: quiet, metricsHost: '127.0.0.1' });
  await cluster.applyJob(ns, 'churn', { type: 'churn', parallelism: 1, kafka: { bootstrapServers: kafka().brokers, topic }, redis: { host: 'redis' } });
  await waitFor('Ready', 60_000, async () => (conditionOf((await cluster.getJob(ns, 'churn'))?.status, 'Ready')?.status === 'True' ? true : undefined));

  await killHard(ownRedis);
  ownRedis = undefined;
  await produceEvents(topic, [...new EventGenerator({ seed: 2, users: 50, days: 2 })].slice(0, 500));
  const degraded = await waitFor('Degraded RedisUnreachable', 60_000, async () => {
    const c = conditionOf((await cluster.getJob(ns, 'churn'))?.status, 'Degraded');
    return c?.status === 'True' && c.reason === 'RedisUnreachable' ? c : undefined;
  });
  expect(degraded.message).toMatch(/^worker pod churn-worker-\S+ waits for Redis since \S+: .+; consumption is paused, nothing is lost$/);
  const stalled = await cluster.getJob(ns, 'churn');
  expect(stalled!.status!.phase).toBe('Degraded');
  expect(conditionOf(stalled!.status, 'Ready')).toMatchObject({ status: 'False', reason: 'RedisUnreachable' });
  expect((await cluster.events(ns, 'churn')).some((e) => e.reason === 'RedisUnreachable')).toBe(true);

  // sluice status of the cluster's ProcessingJobs says the same.
  const [status, table] = await Promise.all([
    runCliToEnd(['status', '--kubeconfig', kube().kubeconfig, '-n', ns, '-o', 'json', '--interval', '1s']),
    runCliToEnd(['status', '--kubeconfig', kube().kubeconfig, '-n', ns, '--interval', '1s']),
  ]);
  expect(status.code).toBe(0);
  const seen = (JSON.parse(status.output) as { jobs: Array<{ name: string; state: string; conditions: Array<{ type: string; status: string; reason: string }> }> }).jobs;
  expect(seen.find((j) => j.name === 'churn')).toMatchObject({ state: 'Degraded', conditions: expect.arrayContaining([expect.objectContaining({ type: 'Degraded', status: 'True', reason: 'RedisUnreachable' })]) });
  expect(table.output).toMatch(new RegExp(`^${ns}/churn\\s+churn\\s+Degraded\\s`, 'm'));
  expect(table.output).toContain('condition Degraded=True RedisUnreachable: worker pod churn-worker-');

  ownRedis = await startRedis(port);
  await waitFor('Degraded cleared', 60_000, async () => {
    const s = (await cluster.getJob(ns, 'churn'))?.status;
    return conditionOf(s, 'Degraded')?.status === 'False' && conditionOf(s, 'Ready')?.status === 'True' ? true : undefined;
  });
});
