/**
 * Operator benchmark against the real control plane (hack/infra.sh up kube kafka):
 *   1. latency: create one ProcessingJob at a time; time to its worker Deployment
 *      (seen by a watch) and to status Ready (p50, p99);
 *   2. scale: 500 ProcessingJobs created while the operator is down, then the
 *      operator started: time until every job is reconciled (status written for
 *      its generation), until every job is Ready, and the operator's RSS.
 * Run: npm run build && npm run bench:operator [-- --jobs 500 --samples 40]
 * The operator runs from dist/ in its own process, so its memory is its own.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Watch, type KubernetesObject } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type ProcessingJob } from '../operator/api/types.js';
import { conditionOf } from '../operator/reconcile/status.js';
import { TestCluster, repoRoot, spawnOperator, type OperatorProcess } from '../test/support/cluster.js';
import { createTopic, deleteTopics } from '../lib/kafka/client.js';
import { infraDir, kafka, kube, uniqueName } from '../test/support/infra.js';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '500' }, samples: { type: 'string', default: '40' }, concurrency: { type: 'string', default: '4' }, 'skip-latency': { type: 'boolean', default: false } },
});
const JOBS = Number(values.jobs);
const SAMPLES = Number(values.samples);

const k = kube() as ReturnType<typeof kube> & { kubectl?: string };
const cluster = new TestCluster(k.kubeconfig, k.kubectl ?? join(dirname(k.kubeconfig), '..', 'bin', 'kubectl'));
const brokers = kafka().brokers;
const logDir = join(infraDir, 'logs');

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
const spec = (topic: string) => ({ type: 'churn', parallelism: 1, kafka: { bootstrapServers: brokers, topic }, redis: { host: 'r' } });

/** Watches a namespace and resolves per-name promises when a predicate first holds. */
class Seen<T extends KubernetesObject> {
  private readonly waiters = new Map<string, (t: number) => void>();
  private readonly done = new Map<string, number>();
  private req?: { abort(): void };

  constructor(
    private readonly path: string,
    private readonly test: (obj: T) => boolean,
  ) {}

  async start(): Promise<void> {
    this.req = await new Watch(cluster.kc).watch(this.path, {}, (_type, obj: T) => {
      const name = obj.metadata?.name ?? '';
      if (this.done.has(name) || !this.test(obj)) return;
      const t = performance.now();
      this.done.set(name, t);
      this.waiters.get(name)?.(t);
    }, () => undefined);
  }

  when(name: string): Promise<number> {
    const t = this.done.get(name);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve) => this.waiters.set(name, resolve));
  }

  count(): number {
    return this.done.size;
  }

  stop(): void {
    this.req?.abort();
  }
}

async function waitUntil(what: string, timeoutMs: number, test: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function operator(ns: string, tag: string): OperatorProcess {
  return spawnOperator(k.kubeconfig, ['--namespaces', ns, '--no-leader-elect', '--metrics-bind-address', '127.0.0.1:0', '--health-probe-bind-address', '127.0.0.1:0', '--worker-image', 'sluice:bench', '--log-level', 'info', '--concurrency', values.concurrency!], join(logDir, `${ns}.${tag}.log`), 'dist');
}

const isReady = (job: ProcessingJob): boolean =>
  conditionOf(job.status, 'Ready')?.status === 'True' && job.status?.observedGeneration === job.metadata.generation;
const isReconciled = (job: ProcessingJob): boolean => job.status?.observedGeneration === job.metadata.generation;

async function latency(topic: string): Promise<void> {
  const ns = uniqueName('bench-op-lat');
  await cluster.createNamespace(ns);
  const op = operator(ns, 'latency');
  const deployments = new Seen<KubernetesObject>(`/apis/apps/v1/namespaces/${ns}/deployments`, () => true);
  const ready = new Seen<ProcessingJob>(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, isReady);
  try {
    await Promise.all([deployments.start(), ready.start()]);
    // Warm up: the operator's caches are synced and its first reconcile done.
    await cluster.applyJob(ns, 'warmup', spec(topic));
    await ready.when('warmup');
    const toDeployment: number[] = [];
    const toReady: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const name = `lat-${i}`;
      const t0 = performance.now();
      await cluster.applyJob(ns, name, spec(topic));
      toDeployment.push((await deployments.when(`${name}-worker`)) - t0);
      toReady.push((await ready.when(name)) - t0);
    }
    const f = (xs: number[]) => `p50 ${quantile(xs, 0.5).toFixed(0)} ms, p99 ${quantile(xs, 0.99).toFixed(0)} ms`;
    console.log(`create -> worker Deployment applied (${SAMPLES} jobs, one at a time): ${f(toDeployment)}`);
    console.log(`create -> status Ready                 (${SAMPLES} jobs, one at a time): ${f(toReady)}`);
  } finally {
    deployments.stop();
    ready.stop();
    await op.stop();
    await cluster.deleteNamespace(ns);
  }
}

async function scale(topic: string): Promise<void> {
  const ns = uniqueName('bench-op-scale');
  await cluster.createNamespace(ns);
  const reconciled = new Seen<ProcessingJob>(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, isReconciled);
  const ready = new Seen<ProcessingJob>(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, isReady);
  let op: OperatorProcess | undefined;
  try {
    const names = Array.from({ length: JOBS }, (_, i) => `job-${i}`);
    for (let i = 0; i < names.length; i += 25) await Promise.all(names.slice(i, i + 25).map((n) => cluster.applyJob(ns, n, spec(topic))));
    await Promise.all([reconciled.start(), ready.start()]);
    const t0 = performance.now();
    op = operator(ns, 'scale');
    let peak = 0;
    const sampler = setInterval(() => {
      if (op?.child.pid) peak = Math.max(peak, rssMiB(op.child.pid));
    }, 200);
    await waitUntil(`${JOBS} jobs reconciled`, 15 * 60_000, () => reconciled.count() >= JOBS);
    const tReconciled = performance.now() - t0;
    // KWOK nodes hold 250 pods each and other tests share them: some pods may stay Pending.
    await waitUntil(`${JOBS} jobs Ready`, 120_000, () => ready.count() >= JOBS).catch(() => undefined);
    const tReady = performance.now() - t0;
    clearInterval(sampler);
    const rssNow = rssMiB(op.child.pid!);
    const line = op.log().split('\n').find((l) => l.includes('sluice operator started'));
    const metricsAt = line ? (JSON.parse(line) as { metrics: string }).metrics : undefined;
    const text = metricsAt ? await (await fetch(`http://${metricsAt}/metrics`)).text() : '';
    const heap = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 2 ** 20;
    const reconciles = /^sluice_operator_reconcile_total\{result="success"\} (\S+)$/m.exec(text)?.[1];
    const sum = Number(/^sluice_operator_reconcile_duration_seconds_sum (\S+)$/m.exec(text)?.[1]);
    const count = Number(/^sluice_operator_reconcile_duration_seconds_count (\S+)$/m.exec(text)?.[1]);
    console.log(`${JOBS} ProcessingJobs, operator started cold: all reconciled in ${(tReconciled / 1000).toFixed(1)} s (${(JOBS / (tReconciled / 1000)).toFixed(0)} jobs/s); ${ready.count()}/${JOBS} Ready after ${(tReady / 1000).toFixed(1)} s`);
    console.log(`operator RSS with ${JOBS} jobs and their children cached: ${rssNow.toFixed(0)} MiB now, ${peak.toFixed(0)} MiB peak; V8 heap used ${heap.toFixed(0)} MiB; ${reconciles} reconciles, ${((sum / count) * 1000).toFixed(0)} ms each on average (concurrency ${values.concurrency})`);
  } finally {
    reconciled.stop();
    ready.stop();
    await op?.stop();
    await cluster.deleteNamespace(ns);
  }
}

/** RSS of an operator watching an empty namespace: the baseline the 500 jobs add to. */
async function idleRss(): Promise<void> {
  const ns = uniqueName('bench-op-idle');
  await cluster.createNamespace(ns);
  const op = operator(ns, 'idle');
  try {
    await waitUntil('operator started', 60_000, () => op.log().includes('caches synced'));
    await new Promise((r) => setTimeout(r, 3_000));
    console.log(`operator RSS idle (no jobs): ${rssMiB(op.child.pid!).toFixed(0)} MiB`);
  } finally {
    await op.stop();
    await cluster.deleteNamespace(ns);
  }
}

if (!existsSync(join(repoRoot, 'dist/operator/bin.js'))) throw new Error('dist/operator/bin.js is missing: run npm run build first');
mkdirSync(logDir, { recursive: true });
await cluster.installCrd();
const topic = uniqueName('bench-events');
await createTopic({ brokers }, topic, 4);
try {
  await idleRss();
  if (!values['skip-latency']) await latency(topic);
  await scale(topic);
} finally {
  await deleteTopics({ brokers }, [topic]).catch(() => undefined);
}
