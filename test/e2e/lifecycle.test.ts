import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { infra, infraDir, repoRoot, uniqueName } from '../support/infra.js';
import { readHashes } from '../support/workers.js';
import { cluster, helm, kubectl, kubectlApply } from './cluster.js';
import { e2eImage, imageOnNodes, imageParts } from './image.js';
import { keepEvidence as keepEvidenceOf, waitUntil } from './steps.js';
import { clusterServices, headerOf, hostServices, type DataServices } from './services.js';

/**
 * The user's path through Sluice on a cluster whose pods really run: on the
 * hack/ control plane, the real node of hack/node.sh (kubelet + containerd); on
 * kind (hack/e2e-kind.sh), kind's node. helm install the chart, apply the
 * examples, produce events, and watch what a user would: Ready by the real
 * probes, user:<id> hashes in Redis, cart mails, lag and checkpoints in the
 * status, JSON logs; then scale, kill, roll, suspend, delete and re-apply while
 * events flow, and check each time that the Redis state equals that of jobs
 * nobody touched (the same job specs at parallelism 1, reading the same topic
 * into their own keys): scaling and recovery lose nothing and count nothing twice.
 */
const c = cluster();
const run = uniqueName('e2e');
const release = uniqueName('sluice');
const releaseNs = `${run}-sluice`;
const jobNs = `${run}-jobs`;
const topic = `${run}.events`;
const PARTITIONS = 6;
// The operator reads each job's lag this often (the chart passes it as an extra argument).
const LAG_CHECK_S = 5;
const prefix = { churn: `${run}-churn:`, cart: `${run}-cart:`, 'churn-ref': `${run}-churn-ref:`, 'cart-ref': `${run}-cart-ref:` } as const;
type JobName = keyof typeof prefix;
const mailTo = { cart: `retention-${run}@shop.example`, 'cart-ref': `reference-${run}@shop.example` };
const work = mkdtempSync(join(tmpdir(), 'sluice-e2e-'));

let services: DataServices;
let redis: Redis;
/** Where the pods go: the real node on the hack/ control plane (it is tainted: pods must ask for it). */
let placement: { nodeSelector?: Record<string, string>; tolerations?: Array<Record<string, string>> } = {};
const timings: string[] = [];
let producerSeq = 0;
/** The simulated days of each producer follow those of the one before. */
let nextDay = 0;

const jsonpath = async (...args: string[]): Promise<string> => (await kubectl(c, ...args)).trim();
/** After a failed step: kept under .infra/logs/<run>/ (the namespaces are deleted after the file). */
const keepEvidence = (step: string): Promise<void> =>
  keepEvidenceOf(c, {
    dir: join(infraDir, 'logs', run),
    jobNamespace: jobNs,
    namespaces: [jobNs, releaseNs],
    kinds: 'processingjobs,deployments,replicasets,pods,pvc,configmaps',
    yamlKinds: 'processingjobs',
  }, step);
const note = (what: string, since: number): void => {
  timings.push(`${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`);
};


interface JobDoc {
  kind: string;
  metadata: { name: string };
  spec: {
    parallelism: number;
    kafka: { bootstrapServers: string[]; topic: string };
    redis: Record<string, unknown>;
    alerts?: { smtp: Record<string, unknown>; to: string[] };
    template?: Record<string, unknown>;
    checkpoint: { intervalSeconds?: number };
  };
}

/** A line of a worker's JSON log. */
interface LogLine {
  msg?: string;
  level?: number;
  partitions?: number[];
  partition?: number;
  nextOffset?: number;
  model?: string;
  [field: string]: unknown;
}

/**
 * An example as shipped, changed only where this cluster differs: the addresses
 * (Kafka, Redis, SMTP; the test's own topic, key prefix and mail recipient, as
 * the servers are shared) and the node the pods go to.
 */
function example(file: string, name: JobName): string {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'examples', file), 'utf8')).map((d) => d.toJS() as JobDoc);
  for (const doc of docs) {
    if (doc.kind !== 'ProcessingJob') continue;
    const spec = doc.spec;
    doc.metadata.name = name;
    spec.kafka.bootstrapServers = services.kafkaBootstrap;
    spec.kafka.topic = topic;
    Object.assign(spec.redis, services.redis, { keyPrefix: prefix[name] });
    if (spec.alerts) {
      Object.assign(spec.alerts.smtp, services.smtp);
      spec.alerts.to = [mailTo[name as 'cart' | 'cart-ref']];
    }
    if (placement.nodeSelector) spec.template = { ...spec.template, ...placement };
    if (name.endsWith('-ref')) {
      // The reference: one worker, never touched, checkpointing often (so its lag reaches 0 sooner).
      spec.parallelism = 1;
      spec.checkpoint.intervalSeconds = 5;
    }
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

const restricted = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } };

/**
 * Produces events with the image's own `sluice produce` in a pod of the job
 * namespace (as the README does), starting where the previous producer's
 * simulated days ended. Returns once the pod is running; `done` resolves when
 * it has exited successfully.
 */
async function startProducer(count: number, rate: number): Promise<{ name: string; done: () => Promise<number> }> {
  const name = `produce-${++producerSeq}`;
  const start = new Date(Date.UTC(2026, 0, 1) + nextDay * 86_400_000).toISOString().slice(0, 10);
  nextDay += 5;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'e2e-producer' } },
    spec: {
      restartPolicy: 'Never',
      securityContext: restricted,
      ...placement,
      containers: [
        {
          name: 'produce',
          image: e2eImage,
          imagePullPolicy: 'Never',
          args: ['produce', '--brokers', services.kafkaBootstrap.join(','), '--topic', topic, '--seed', String(producerSeq), '--users', '2000',
            '--days', '5', '--start', start, '--count', String(count), '--rate', String(rate)],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
        },
      ],
    },
  };
  await kubectlApply(c, jobNs, stringify(pod));
  await waitUntil(`producer ${name} running`, 120_000, async () => ['Running', 'Succeeded'].includes(await jsonpath('get', 'pod', name, '-n', jobNs, '-o', 'jsonpath={.status.phase}')));
  return {
    name,
    done: async () => {
      const phase = await waitUntil(`producer ${name} done`, 300_000, async () => {
        const p = await jsonpath('get', 'pod', name, '-n', jobNs, '-o', 'jsonpath={.status.phase}');
        return p === 'Succeeded' || p === 'Failed' ? p : undefined;
      });
      if (phase !== 'Succeeded') throw new Error(`producer ${name} failed:\n${await kubectl(c, 'logs', name, '-n', jobNs)}`);
      return Date.now();
    },
  };
}

interface JobStatus {
  phase?: string;
  replicas?: number;
  readyReplicas?: number;
  selector?: string;
  consumerLag?: number;
  lastCheckpointTime?: string;
}
const status = async (job: string): Promise<JobStatus> =>
  (JSON.parse(await jsonpath('get', 'processingjob', job, '-n', jobNs, '-o', 'jsonpath={.status}')) as JobStatus);

/**
 * Waits until each job's status shows lag 0 as read after `producedAt` (the
 * operator reads lag every LAG_CHECK_S and writes the status when it changes,
 * so a reading from two periods later is at least that recent).
 */
async function caughtUp(jobs: string[], producedAt: number, timeoutMs = 180_000): Promise<void> {
  for (const job of jobs) {
    let last: JobStatus = {};
    await waitUntil(`${job} to show consumer lag 0 in its status`, timeoutMs, async () => {
      if (Date.now() < producedAt + 2 * LAG_CHECK_S * 1000) return undefined;
      last = await status(job);
      return last.consumerLag === 0 && last.lastCheckpointTime !== undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message} (last status: ${JSON.stringify(last)})`);
    });
  }
}


/** The job's Redis state (user and alert hashes, by the rest of their key) equals its reference's. */
async function sameStateAsReference(job: 'churn' | 'cart'): Promise<number> {
  const ref = `${job}-ref` as const;
  const read = async (): Promise<{ job: unknown[]; ref: unknown[] }> => {
    const kinds = job === 'cart' ? ['user:*', 'alert:*'] : ['user:*'];
    return {
      job: await Promise.all(kinds.map((k) => readHashes(redis, prefix[job], k))),
      ref: await Promise.all(kinds.map((k) => readHashes(redis, prefix[ref], k))),
    };
  };
  // Lag 0 in both statuses means both have consumed everything; a cart whose abandonment is due by the
  // idle clock (wall time) may still be written a moment later by one of them. Identical within a
  // minute, or the difference is shown.
  let state = await read();
  const deadline = Date.now() + 60_000;
  while (!isDeepStrictEqual(state.job, state.ref) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2_000));
    state = await read();
  }
  const users = state.job[0] as Map<string, unknown>;
  expect(users.size).toBeGreaterThan(100);
  expect(state.job).toEqual(state.ref);
  return users.size;
}

/** The cart ids of the alert mails sent to `to`, one entry per mail. */
async function mailedCarts(to: string): Promise<string[]> {
  return (await services.mailsTo(to)).map((m) => /^cart_id: (.+)$/m.exec(m.replace(/\r\n/g, '\n'))?.[1]?.trim() ?? `(no cart id in "${headerOf(m, 'subject')}")`);
}

async function noAlertTwice(): Promise<void> {
  const sent = await mailedCarts(mailTo.cart);
  expect(sent.length).toBeGreaterThan(0);
  expect(new Set(sent).size, `duplicate alerts: ${sent.filter((id, i) => sent.indexOf(id) !== i).join(', ')}`).toBe(sent.length);
  expect([...sent].sort()).toEqual([...(await mailedCarts(mailTo['cart-ref']))].sort());
}

interface PodInfo {
  name: string;
  node: string;
  ready: boolean;
  containerId: string;
  restarts: number;
  deleting: boolean;
}
async function pods(job: string): Promise<PodInfo[]> {
  const selector = (await status(job)).selector ?? `app.kubernetes.io/instance=${job}`;
  const list = JSON.parse(await kubectl(c, 'get', 'pods', '-n', jobNs, '-l', selector, '-o', 'json')) as {
    items: Array<{ metadata: { name: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ containerID?: string; restartCount: number }> } }>;
  };
  return list.items.map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName ?? '',
    ready: p.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false,
    containerId: (p.status.containerStatuses?.[0]?.containerID ?? '').replace(/^\w+:\/\//, ''),
    restarts: p.status.containerStatuses?.[0]?.restartCount ?? 0,
    deleting: p.metadata.deletionTimestamp !== undefined,
  }));
}

/** The JSON lines of a worker pod's log (`kubectl logs`), optionally of the container's previous run. */
async function logLines(pod: string, previous = false): Promise<LogLine[]> {
  const text = await kubectl(c, 'logs', pod, '-n', jobNs, ...(previous ? ['--previous'] : []));
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as LogLine);
}

/** The partitions a pod owns now: its last "partitions assigned" line. */
async function assigned(pod: string): Promise<number[]> {
  return (await logLines(pod)).filter((l) => l.msg === 'partitions assigned').at(-1)?.partitions ?? [];
}

/** All of `job`'s pods (and only `replicas` of them) Ready, and every partition owned by one of them. */
async function rebalanced(job: string, replicas: number): Promise<PodInfo[]> {
  return waitUntil(`${job}: ${replicas} Ready pods sharing the ${PARTITIONS} partitions`, 180_000, async () => {
    const ps = (await pods(job)).filter((p) => !p.deleting);
    if (ps.length !== replicas || !ps.every((p) => p.ready)) return undefined;
    const owned = (await Promise.all(ps.map((p) => assigned(p.name)))).flat().sort((a, b) => a - b);
    return JSON.stringify(owned) === JSON.stringify([...Array(PARTITIONS).keys()]) && (await Promise.all(ps.map((p) => assigned(p.name)))).every((a) => a.length > 0) ? ps : undefined;
  }, 2_000);
}

/** The pod's log says it resumed every partition it owns from a checkpoint (none started without one). */
async function resumedFromCheckpoint(pod: string): Promise<void> {
  const lines = await waitUntil(`${pod} restoring its partitions`, 120_000, async () => {
    const l = await logLines(pod);
    const owned = l.filter((x) => x.msg === 'partitions assigned').at(-1)?.partitions;
    const restored = l.filter((x) => /^partition (restored from checkpoint|starts without checkpoint)$/.test(x.msg ?? ''));
    return owned?.length && owned.every((p) => restored.some((r) => r.partition === p)) ? restored : undefined;
  });
  expect(lines.filter((l) => l.msg === 'partition starts without checkpoint')).toEqual([]);
  expect(lines.every((l) => (l.nextOffset ?? 0) > 0)).toBe(true);
}

describe(`Sluice on a cluster with real pods (${c.kubeconfig})`, () => {
  beforeAll(async () => {
    const started = Date.now();
    await imageOnNodes(c);
    note('image built and on the node', started);
    if (c.isTestControlPlane) {
      const node = infra().node;
      if (!node) throw new Error("no real node: run 'bash hack/infra.sh up' (hack/node.sh)");
      placement = { nodeSelector: node.nodeSelector, tolerations: node.tolerations };
      services = hostServices();
    } else {
      services = await clusterServices(c, `${run}-dev`);
    }
    redis = services.redisClient();
    // As docs/install.md says to do before every install or upgrade: the cluster may hold an older CRD.
    await kubectl(c, 'apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'charts', 'sluice', 'crds'));
    await kubectl(c, 'wait', '--for=condition=Established', 'crd/processingjobs.sluice.dev', '--timeout=60s');
    // Both namespaces enforce the restricted Pod Security profile: the operator and the workers must pass it.
    for (const ns of [releaseNs, jobNs]) {
      await kubectl(c, 'create', 'namespace', ns);
      await kubectl(c, 'label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted');
    }
    await services.createTopic(topic, PARTITIONS);
    await services.createTopic(`${topic}.dlq`, 1);
  }, 900_000); // a first image build on a fresh machine makes the local base images too

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await keepEvidence(ctx.task.name.split(' ').slice(0, 4).join('-').replace(/[^\w-]/g, ''));
  });

  afterAll(async () => {
    process.stderr.write(`e2e timings:\n  ${timings.join('\n  ')}\n`);
    await helm(c, 'uninstall', release, '-n', releaseNs, '--wait', '--timeout', '60s').catch(() => undefined);
    await kubectl(c, 'delete', 'namespace', jobNs, releaseNs, ...(c.isTestControlPlane ? [] : [`${run}-dev`]), '--wait=false').catch(() => undefined);
    await services?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('helm install runs the operator as two real pods that pass the restricted profile, with leader election and the chart RBAC', async () => {
    const { repository, tag } = imageParts();
    const values = join(work, 'values.yaml');
    writeFileSync(values, stringify({
      image: { repository, tag, pullPolicy: 'Never' },
      watchNamespaces: [jobNs],
      operator: { ...placement, extraArgs: [`--lag-check-interval=${LAG_CHECK_S}`] },
    }));
    const out = await helm(c, 'install', release, join(repoRoot, 'charts', 'sluice'), '-n', releaseNs, '-f', values, '--wait', '--timeout', '180s');
    expect(out).toContain('STATUS: deployed');
    expect(out).toContain(`manages ProcessingJobs in namespaces: ${jobNs}`);

    const operatorPods = JSON.parse(await kubectl(c, 'get', 'pods', '-n', releaseNs, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'json')) as {
      items: Array<{ metadata: { name: string }; spec: { nodeName: string }; status: { phase: string; containerStatuses: Array<{ ready: boolean; restartCount: number }> } }>;
    };
    expect(operatorPods.items).toHaveLength(2);
    for (const p of operatorPods.items) {
      expect(p.status.phase).toBe('Running');
      expect(p.status.containerStatuses[0]!.ready).toBe(true); // its readiness probe passes
      if (c.isTestControlPlane) expect(p.spec.nodeName).toBe(infra().node!.name);
    }
    const first = operatorPods.items[0]!.metadata.name;
    // Non-root, read-only root file system: what the process itself sees.
    expect((await kubectl(c, 'exec', first, '-n', releaseNs, '--', 'id', '-u')).trim()).toBe('65532');
    await expect(kubectl(c, 'exec', first, '-n', releaseNs, '--', 'touch', '/app/x')).rejects.toThrow(/Read-only file system/);
    // One of the two holds the lease.
    const holder = await waitUntil('a leader', 90_000, async () =>
      (await jsonpath('get', 'lease', 'sluice-operator-leader', '-n', releaseNs, '-o', 'jsonpath={.spec.holderIdentity}')) || undefined,
    );
    expect(operatorPods.items.map((p) => p.metadata.name).some((n) => holder.startsWith(n))).toBe(true);

    // Least privilege: the operator's ServiceAccount may manage jobs in the watched namespace only, and read no Secret list.
    const sa = `system:serviceaccount:${releaseNs}:${release}`;
    const can = (verb: string, what: string, ns: string): Promise<string> =>
      kubectl(c, 'auth', 'can-i', verb, what, '-n', ns, `--as=${sa}`).then((s) => s.trim(), () => 'no');
    expect(await can('watch', 'processingjobs.sluice.dev', jobNs)).toBe('yes');
    expect(await can('patch', 'deployments.apps', jobNs)).toBe('yes');
    expect(await can('list', 'processingjobs.sluice.dev', 'default')).toBe('no');
    expect(await can('list', 'secrets', jobNs)).toBe('no');
    expect(await can('delete', 'deployments.apps', jobNs)).toBe('no');
  });

  it('the churn and cart examples become Ready by their real probes and turn events into user hashes, mails, lag and checkpoints', async () => {
    // Events wait in the topic; the jobs start from the earliest offset.
    const producer = await startProducer(20_000, 0);
    const producedAt = await producer.done();
    const applied = Date.now();
    await kubectlApply(c, jobNs, example('churn-job.yaml', 'churn'));
    await kubectlApply(c, jobNs, example('cart-job.yaml', 'cart'));
    await kubectlApply(c, jobNs, example('churn-job.yaml', 'churn-ref'));
    await kubectlApply(c, jobNs, example('cart-job.yaml', 'cart-ref'));
    await kubectl(c, 'wait', '--for=condition=Ready', 'processingjob/churn', 'processingjob/cart', 'processingjob/churn-ref', 'processingjob/cart-ref', '-n', jobNs, '--timeout=300s');
    note('apply → workers Ready', applied);

    const table = await kubectl(c, 'get', 'processingjobs', '-n', jobNs);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+TYPE\s+PARALLELISM\s+READY\s+LAG\s+PHASE\s+AGE/);
    expect(table).toMatch(/^churn\s+churn\s+2\s+2\s+(\d+\s+)?Running\s/m);
    expect(table).toMatch(/^cart\s+cart\s+1\s+1\s+(\d+\s+)?Running\s/m);
    for (const job of ['churn', 'cart']) {
      for (const p of await pods(job)) {
        expect(p.ready).toBe(true);
        if (c.isTestControlPlane) expect(p.node).toBe(infra().node!.name);
      }
    }
    expect(await jsonpath('get', 'deployment', 'churn-worker', '-n', jobNs, '-o', 'jsonpath={.spec.template.spec.containers[0].image}')).toBe(e2eImage);

    // user:<id> hashes with scores.
    const firstScore = await waitUntil('a churn score in Redis', 120_000, async () => {
      const [, keys] = await redis.scan('0', 'MATCH', `${prefix.churn}user:*`, 'COUNT', 1000);
      return keys.length ? keys[0] : undefined;
    }, 250);
    note('apply → first churn score in Redis', applied);
    expect(await redis.hgetall(firstScore!)).toMatchObject({ churn_score: expect.stringMatching(/^0\.\d+|^1/), risk_level: expect.stringMatching(/^(low|medium|high)$/) });
    // Abandoned-cart mails in the SMTP server.
    await waitUntil('a cart alert mail', 120_000, async () => (await services.mailsTo(mailTo.cart)).length > 0);
    const mail = (await services.mailsTo(mailTo.cart))[0]!;
    expect(headerOf(mail, 'from')).toContain('alerts@shop.example');

    // The status: lag falling to 0, and a last checkpoint.
    await caughtUp(['churn', 'cart', 'churn-ref', 'cart-ref'], producedAt);
    note('apply → lag 0 in status', applied);
    const s = await status('churn');
    expect(Date.parse(s.lastCheckpointTime!)).toBeGreaterThan(applied - 60_000);
    expect(await sameStateAsReference('churn')).toBeGreaterThan(100);
    await sameStateAsReference('cart');

    // kubectl logs: the worker's JSON log.
    const lines = await logLines((await pods('churn'))[0]!.name);
    expect(lines.find((l) => l.msg === 'worker started')).toMatchObject({ level: 30, topic, group: expect.any(String) });
  });

  it('a rolling change of a worker setting, then of the model (from a ConfigMap), keeps every user\'s state', async () => {
    const producer = await startProducer(20_000, 1_000);
    const hashOf = async (): Promise<string> =>
      jsonpath('get', 'deployment', 'churn-worker', '-n', jobNs, '-o', "jsonpath={.spec.template.metadata.annotations['sluice\\.dev/config-hash']}");
    const hash0 = await hashOf();
    // Both jobs checkpoint more often from now on.
    for (const job of ['churn', 'cart']) {
      await kubectl(c, 'patch', `processingjob/${job}`, '-n', jobNs, '--type=merge', '-p', JSON.stringify({ spec: { checkpoint: { intervalSeconds: 10 } } }));
    }
    await waitUntil('the worker setting to roll out', 60_000, async () => (await hashOf()) !== hash0);
    for (const job of ['churn', 'cart']) await kubectl(c, 'rollout', 'status', `deployment/${job}-worker`, '-n', jobNs, '--timeout=180s');
    for (const [job, n] of [['churn', 2], ['cart', 1]] as const) {
      for (const p of await rebalanced(job, n)) await resumedFromCheckpoint(p.name);
    }

    // The same model file as the bundled one, now from a ConfigMap: the state carries over, the scores stay comparable.
    await kubectl(c, 'create', 'configmap', 'churn-model', '-n', jobNs, `--from-file=churn.onnx=${join(repoRoot, 'workers', 'models', 'bundled', 'churn.onnx')}`);
    const hash1 = await hashOf();
    await kubectl(c, 'patch', 'processingjob/churn', '-n', jobNs, '--type=merge', '-p',
      JSON.stringify({ spec: { model: { source: 'configMap', configMap: { name: 'churn-model', key: 'churn.onnx' } } } }));
    await waitUntil('the model change to roll out', 60_000, async () => (await hashOf()) !== hash1);
    await kubectl(c, 'rollout', 'status', 'deployment/churn-worker', '-n', jobNs, '--timeout=180s');
    for (const p of await rebalanced('churn', 2)) {
      await resumedFromCheckpoint(p.name);
      const loaded = (await logLines(p.name)).find((l) => l.msg === 'model loaded');
      expect(loaded?.model).not.toBe('bundled');
    }

    const producedAt = await producer.done();
    await caughtUp(['churn', 'cart', 'churn-ref', 'cart-ref'], producedAt);
    await sameStateAsReference('churn');
    await sameStateAsReference('cart');
  });

  it('kubectl scale to 4 and back to 1 while events flow moves partitions between pods, and the state equals an uninterrupted run', async () => {
    const producer = await startProducer(30_000, 1_000);
    let t = Date.now();
    await kubectl(c, 'scale', 'processingjob/churn', 'processingjob/cart', '--replicas=4', '-n', jobNs);
    const four = await rebalanced('churn', 4);
    await rebalanced('cart', 4);
    note('scale 2 → 4: rebalance done', t);
    expect(four.map((p) => p.name)).toHaveLength(4);
    t = Date.now();
    await kubectl(c, 'scale', 'processingjob/churn', 'processingjob/cart', '--replicas=1', '-n', jobNs);
    const [last] = await rebalanced('churn', 1);
    await rebalanced('cart', 1);
    note('scale 4 → 1: rebalance done', t);
    expect(await assigned(last!.name)).toEqual([...Array(PARTITIONS).keys()]);
    const producedAt = await producer.done();
    t = Date.now();
    await caughtUp(['churn', 'cart', 'churn-ref', 'cart-ref'], producedAt);
    note('scaled jobs: end of events → lag 0', t);
    await sameStateAsReference('churn');
    await sameStateAsReference('cart');
    await noAlertTwice();
  });

  it('a worker pod deleted and a worker container killed mid-stream resume from the checkpoint volume; the state stays identical', async () => {
    const producer = await startProducer(20_000, 1_000);
    const [before] = await rebalanced('churn', 1);
    let t = Date.now();
    await kubectl(c, 'delete', 'pod', before!.name, '-n', jobNs, '--wait=false');
    const [replacement] = await rebalanced('churn', 1);
    expect(replacement!.name).not.toBe(before!.name);
    await resumedFromCheckpoint(replacement!.name);
    note('pod deleted → replacement resumed', t);

    // SIGKILL: no final checkpoint; the kubelet restarts the container in the same pod.
    t = Date.now();
    await services.killContainer(replacement!.containerId);
    await waitUntil('the killed container restarted', 120_000, async () => {
      const [p] = await pods('churn');
      return p && p.restarts > replacement!.restarts && p.ready ? true : undefined;
    });
    await resumedFromCheckpoint(replacement!.name);
    note('container killed → resumed', t);
    const previous = await logLines(replacement!.name, true);
    expect(previous.some((l) => l.msg === 'worker stopped: checkpoints written, left the group')).toBe(false); // it really was killed

    const producedAt = await producer.done();
    await caughtUp(['churn', 'churn-ref'], producedAt);
    await sameStateAsReference('churn');
  });

  it('suspend leaves no worker pod; resume continues from the checkpoints', async () => {
    await kubectl(c, 'patch', 'processingjob/churn', '-n', jobNs, '--type=merge', '-p', '{"spec":{"suspend":true}}');
    await kubectl(c, 'wait', '--for=jsonpath={.status.phase}=Suspended', 'processingjob/churn', '-n', jobNs, '--timeout=120s');
    await waitUntil('no churn worker pod', 120_000, async () => (await pods('churn')).length === 0);
    expect(await kubectl(c, 'get', 'pvc', 'churn-checkpoints', '-n', jobNs, '-o', 'name')).toContain('churn-checkpoints');
    // Events arrive while it is suspended: the lag shows them.
    const producedAt = await (await startProducer(10_000, 0)).done();
    await waitUntil('churn to show the events it has not read', 60_000, async () => ((await status('churn')).consumerLag ?? 0) > 0);

    await kubectl(c, 'patch', 'processingjob/churn', '-n', jobNs, '--type=merge', '-p', '{"spec":{"suspend":false}}');
    await kubectl(c, 'wait', '--for=condition=Ready', 'processingjob/churn', '-n', jobNs, '--timeout=180s');
    const [resumed] = await rebalanced('churn', 1);
    await resumedFromCheckpoint(resumed!.name);
    await caughtUp(['churn', 'churn-ref'], producedAt);
    await sameStateAsReference('churn');
  });

  it('deleting the jobs removes their children and keeps the checkpoint volume that asks to be kept; applied again, the job continues from it', async () => {
    await kubectl(c, 'patch', 'processingjob/churn', '-n', jobNs, '--type=merge', '-p', '{"spec":{"checkpoint":{"retainOnDelete":true}}}');
    await waitUntil('the churn PVC to be released from its owner', 60_000, async () =>
      (await jsonpath('get', 'pvc', 'churn-checkpoints', '-n', jobNs, '-o', 'jsonpath={.metadata.ownerReferences}')) === '',
    );
    const live = JSON.parse(await kubectl(c, 'get', 'processingjob/churn', '-n', jobNs, '-o', 'json')) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    await kubectl(c, 'delete', 'processingjob/churn', 'processingjob/cart', '-n', jobNs, '--wait=true', '--timeout=120s');
    await waitUntil('the children to be garbage-collected', 180_000, async () => {
      const left = await kubectl(c, 'get', 'deployment,configmap,service,pod', '-n', jobNs, '-l', 'app.kubernetes.io/instance in (churn,cart)', '-o', 'name');
      return left.trim() === '' ? true : undefined;
    });
    // cart keeps the default (retainOnDelete: false): its volume goes with it.
    await waitUntil('the cart PVC to be deleted', 120_000, async () => (await kubectl(c, 'get', 'pvc', '-n', jobNs, '-o', 'name')).includes('cart-checkpoints') ? undefined : true);
    expect(await kubectl(c, 'get', 'pvc', 'churn-checkpoints', '-n', jobNs, '-o', 'name')).toContain('churn-checkpoints');

    const producer = await startProducer(10_000, 0);
    const again = { apiVersion: 'sluice.dev/v1alpha1', kind: 'ProcessingJob', metadata: { name: 'churn' }, spec: live.spec };
    await kubectlApply(c, jobNs, stringify(again));
    await kubectl(c, 'wait', '--for=condition=Ready', 'processingjob/churn', '-n', jobNs, '--timeout=180s');
    const [back] = await rebalanced('churn', 1);
    await resumedFromCheckpoint(back!.name);
    const producedAt = await producer.done();
    await caughtUp(['churn', 'churn-ref'], producedAt);
    await sameStateAsReference('churn');
  });
});
