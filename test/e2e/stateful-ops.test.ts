import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { infra, infraDir, repoRoot, uniqueName } from '../support/infra.js';
import { produceEvents, readHashes } from '../support/workers.js';
import { cluster, helm, kubectl, kubectlApply } from './cluster.js';
import { imageOnNodes, imageParts } from './image.js';
import { FinalError, keepEvidence as keepEvidenceOf, waitUntil as waitEvery } from './steps.js';
import { hostServices, type DataServices } from './services.js';

/**
 * The state operations of issue 15 on real pods of the real node: the task
 * pods that take a snapshot and restore it really run (the integration tier
 * only sees them as KWOK pods), and a broken model upgrade is rolled back by
 * the operator on its own.
 *
 * Three churn jobs read one topic into keys of their own: `orig` is never
 * changed (the uninterrupted run every other job is compared with), `copy`
 * starts from a snapshot of `orig` taken while its workers run, `up` gets a
 * model that cannot load and is rolled back to its last stable spec.
 */
const c = cluster();
const run = uniqueName('e2e-state');
const release = uniqueName('sluice-state');
const releaseNs = `${run}-sluice`;
const jobNs = `${run}-jobs`;
const topic = `${run}.events`;
const PARTITIONS = 4;
// The operator reads each job's lag this often (a chart extra argument).
const LAG_CHECK_S = 2;
const ROLLBACK_TIMEOUT_S = 30; // the smallest spec.upgrade.timeoutSeconds the API accepts
const prefix = (job: string): string => `${run}-${job}:`;
const work = mkdtempSync(join(tmpdir(), 'sluice-e2e-state-'));

let services: DataServices;
let redis: Redis;
let placement: { nodeSelector?: Record<string, string>; tolerations?: Array<Record<string, string>> } = {};
const timings: string[] = [];
const note = (what: string, since: number, until = Date.now()): void => void timings.push(`${what}: ${((until - since) / 1000).toFixed(1)} s`);

/**
 * One stream of 500 users over 12 days, in event-time order: the first 2 days
 * wait in the topic when the jobs start; the rest arrives while both tests
 * work (the Flow below), so the snapshot, the restore, the upgrade and the
 * rollback all happen while events flow.
 */
const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 1);
const stream: UserEvent[] = [...new EventGenerator({ seed: 15, users: 500, days: 12, start: START })];
const FIRST_DAYS = 2;
const SLICE_MS = 2 * 3_600_000; // two hours of event time every SLICE_EVERY_MS
const SLICE_EVERY_MS = 1_500;

/**
 * The events after the first days, a slice every SLICE_EVERY_MS, until the
 * rollback test has seen its job rolled back and AFTER_ROLLBACK slices more
 * have arrived (events the restored old model must score), or the stream ends.
 */
class Flow {
  private stopAfter = Infinity;
  private sent = 0;
  /** The newest event time produced so far. */
  producedUpTo = START + FIRST_DAYS * DAY;
  endedAt = 0;
  done: Promise<void> | undefined;

  start(): void {
    this.done = this.run();
  }

  /** The rollback test saw its job rolled back: a few more slices, then the flow ends. */
  finishSoon(slices: number): void {
    this.stopAfter = Math.min(this.stopAfter, this.sent + slices);
  }

  private async run(): Promise<void> {
    for (let from = START + FIRST_DAYS * DAY; from < START + 12 * DAY && this.sent < this.stopAfter; from += SLICE_MS) {
      const next = Date.now() + SLICE_EVERY_MS;
      await produceEvents(topic, stream.filter((e) => e.eventTime >= from && e.eventTime < from + SLICE_MS));
      this.producedUpTo = from + SLICE_MS;
      this.sent++;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    this.endedAt = Date.now();
  }
}
const flow = new Flow();
const AFTER_ROLLBACK = 4;

const jsonpath = async (...args: string[]): Promise<string> => (await kubectl(c, ...args)).trim();
const waitUntil = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> => waitEvery(what, timeoutMs, probe, 500);
const keepEvidence = (step: string): Promise<void> =>
  keepEvidenceOf(c, {
    dir: join(infraDir, 'logs', run),
    jobNamespace: jobNs,
    namespaces: [jobNs, releaseNs],
    kinds: 'processingjobs,processingjobsnapshots,deployments,replicasets,jobs,pods,pvc,configmaps',
    yamlKinds: 'processingjobs,processingjobsnapshots,jobs',
  }, step);


/** A churn job of this test: its own key prefix, checkpoints every second, pods on the real node. */
function churnJob(name: string, extra: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProcessingJob',
    metadata: { name },
    spec: {
      type: 'churn',
      parallelism: 1,
      kafka: { bootstrapServers: services.kafkaBootstrap, topic, startFrom: 'earliest' },
      redis: { ...services.redis, keyPrefix: prefix(name) },
      checkpoint: { intervalSeconds: 1, size: '256Mi', accessMode: 'ReadWriteOnce' },
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
      ...(placement.nodeSelector ? { template: placement } : {}),
      ...extra,
    },
  });
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface JobStatus {
  phase?: string;
  consumerLag?: number;
  lastCheckpointTime?: string;
  conditions?: Condition[];
  restore?: { id?: string; phase?: string; message?: string; offsets?: number[] };
  upgrade?: { state?: string; reason?: string; message?: string; snapshot?: string; stableGeneration?: number; changeGeneration?: number };
}
const status = async (job: string): Promise<JobStatus> =>
  JSON.parse((await jsonpath('get', 'processingjob', job, '-n', jobNs, '-o', 'jsonpath={.status}')) || '{}') as JobStatus;
const ready = (s: JobStatus): boolean => s.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

interface SnapshotStatus {
  phase?: string;
  message?: string;
  requestedAt?: string;
  takenAt?: string;
  partitions?: number;
  offsets?: number[];
  modelVersion?: string;
  sizeBytes?: number;
  jobGeneration?: number;
  origin?: string;
}
const snapshotStatus = async (name: string): Promise<SnapshotStatus> =>
  JSON.parse((await jsonpath('get', 'processingjobsnapshot', name, '-n', jobNs, '-o', 'jsonpath={.status}')) || '{}') as SnapshotStatus;

/** Once the flow has ended: each job Ready with lag 0 in a status read after the last events (two lag readings later). */
async function caughtUp(jobs: string[], timeoutMs = 90_000): Promise<void> {
  await flow.done;
  for (const job of jobs) {
    let last: JobStatus = {};
    await waitUntil(`${job} Ready with consumer lag 0`, timeoutMs, async () => {
      if (Date.now() < flow.endedAt + 2 * LAG_CHECK_S * 1000) return undefined;
      last = await status(job);
      return ready(last) && last.consumerLag === 0;
    }).catch((err: Error) => {
      throw new Error(`${err.message} (last status: ${JSON.stringify(last)})`);
    });
  }
}

interface TaskPod {
  name: string;
  node: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
}
/** The pods of a job's task Jobs (`sluice.dev/task=<op>`), as the kubelet reported them. */
async function taskPods(job: string, op: string): Promise<TaskPod[]> {
  const list = JSON.parse(await kubectl(c, 'get', 'pods', '-n', jobNs, '-l', `sluice.dev/job=${job},sluice.dev/task=${op}`, '-o', 'json')) as {
    items: Array<{ metadata: { name: string }; spec: { nodeName?: string }; status: { containerStatuses?: Array<{ state?: { terminated?: { exitCode: number; startedAt: string; finishedAt: string } } }> } }>;
  };
  return list.items.map((p) => {
    const t = p.status.containerStatuses?.[0]?.state?.terminated;
    return { name: p.metadata.name, node: p.spec.nodeName ?? '', exitCode: t?.exitCode, startedAt: t?.startedAt, finishedAt: t?.finishedAt };
  });
}

/** A task pod that ran to success on the real node; its run time goes to the timings. */
async function ranOnNode(job: string, op: string, what: string): Promise<void> {
  const pods = await taskPods(job, op);
  expect(pods.length, `${op} task pods of ${job}`).toBeGreaterThan(0);
  const ok = pods.find((p) => p.exitCode === 0);
  expect(ok, `a ${op} task pod of ${job} that exited 0: ${JSON.stringify(pods)}`).toBeDefined();
  expect(ok!.node).toBe(infra().node!.name);
  note(`${what}: task container ran`, Date.parse(ok!.startedAt!), Date.parse(ok!.finishedAt!));
}

async function eventsOf(job: string): Promise<Array<{ type: string; reason: string; message: string }>> {
  const list = JSON.parse(await kubectl(c, 'get', 'events', '-n', jobNs, '--field-selector', `involvedObject.name=${job},involvedObject.kind=ProcessingJob`, '-o', 'json')) as {
    items: Array<{ type: string; reason: string; message: string }>;
  };
  return list.items;
}


describe('state operations on real pods: snapshot, restore into a new job, automatic rollback of a broken model', () => {
  beforeAll(async () => {
    // Events are produced from this process to the host's Kafka, which the real node's pods read on the pod bridge.
    if (!c.isTestControlPlane) throw new Error('stateful-ops.test.ts runs on the hack/ control plane and its real node only (it produces to the host Kafka)');
    const started = Date.now();
    await imageOnNodes(c);
    note('image built and on the node', started);
    const node = infra().node;
    if (!node) throw new Error("no real node: run 'bash hack/infra.sh up' (hack/node.sh)");
    placement = { nodeSelector: node.nodeSelector, tolerations: node.tolerations };
    services = hostServices();
    redis = services.redisClient();
    await kubectl(c, 'apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'charts', 'sluice', 'crds'));
    await kubectl(c, 'wait', '--for=condition=Established', 'crd/processingjobs.sluice.dev', 'crd/processingjobsnapshots.sluice.dev', '--timeout=60s');
    // The task pods, like the workers, must pass the restricted Pod Security profile.
    for (const ns of [releaseNs, jobNs]) {
      await kubectl(c, 'create', 'namespace', ns);
      await kubectl(c, 'label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted');
    }
    await services.createTopic(topic, PARTITIONS);
    await services.createTopic(`${topic}.dlq`, 1);
    const { repository, tag } = imageParts();
    const values = join(work, 'values.yaml');
    writeFileSync(values, stringify({
      image: { repository, tag, pullPolicy: 'Never' },
      watchNamespaces: [jobNs],
      operator: { replicas: 1, ...placement, extraArgs: [`--lag-check-interval=${LAG_CHECK_S}`] },
    }));
    let t = Date.now();
    await helm(c, 'install', release, join(repoRoot, 'charts', 'sluice'), '-n', releaseNs, '-f', values, '--wait', '--timeout', '180s');
    note('helm install (operator Ready)', t);

    // The first days wait in the topic; orig and up start on them, then events keep arriving (the flow).
    await produceEvents(topic, stream.filter((e) => e.eventTime < START + FIRST_DAYS * DAY));
    t = Date.now();
    await kubectlApply(c, jobNs, churnJob('orig', { parallelism: 2 }));
    await kubectlApply(c, jobNs, churnJob('up', { upgrade: { snapshotBeforeChange: true, rollback: true, timeoutSeconds: ROLLBACK_TIMEOUT_S } }));
    await waitUntil('orig and up Ready', 180_000, async () => ready(await status('orig')) && ready(await status('up')));
    note('apply → orig (2 workers) and up (1) Ready', t);
    flow.start();
  }, 600_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await keepEvidence(ctx.task.name.split(' ').slice(0, 4).join('-').replace(/[^\w-]/g, ''));
  });

  afterAll(async () => {
    flow.finishSoon(0);
    await flow.done?.catch(() => undefined);
    process.stderr.write(`e2e stateful-ops timings:\n  ${timings.join('\n  ')}\n`);
    // As docs/install.md says: jobs and snapshots go while the operator runs (it releases the snapshots' finalizer);
    // after a failure, a snapshot still left is released here, or the namespace would never go.
    await kubectl(c, 'delete', 'processingjobs', '--all', '-n', jobNs, '--wait=true', '--timeout=60s').catch(() => undefined);
    await waitUntil('no snapshot left', 30_000, async () => (await jsonpath('get', 'processingjobsnapshots', '-n', jobNs, '-o', 'name')) === '').catch(async () => {
      for (const name of (await jsonpath('get', 'processingjobsnapshots', '-n', jobNs, '-o', 'name').catch(() => '')).split(/\s+/).filter(Boolean)) {
        await kubectl(c, 'patch', name, '-n', jobNs, '--type=merge', '-p', '{"metadata":{"finalizers":null}}').catch(() => undefined);
      }
    });
    await helm(c, 'uninstall', release, '-n', releaseNs, '--wait', '--timeout', '60s').catch(() => undefined);
    await kubectl(c, 'delete', 'namespace', jobNs, releaseNs, '--wait=false').catch(() => undefined);
    await services?.close();
    rmSync(work, { recursive: true, force: true });
  });

  // The two run at the same time (CI time): each compares with orig only once the flow has ended and every job caught up.
  it.concurrent('a snapshot taken by a task pod while the workers run, restored into a new job, gives the same Redis results as the original; deleting it deletes its files', { timeout: 240_000 }, async () => {
    await scoringTheFlow('orig');
    let t = Date.now();
    await kubectlApply(c, jobNs, stringify({ apiVersion: 'sluice.dev/v1alpha1', kind: 'ProcessingJobSnapshot', metadata: { name: 'orig-1' }, spec: { jobName: 'orig' } }));
    const snap = await waitUntil('snapshot orig-1 Completed', 120_000, async () => {
      const s = await snapshotStatus('orig-1');
      if (s.phase === 'Failed') throw new FinalError(`snapshot orig-1 failed: ${s.message}`);
      return s.phase === 'Completed' ? s : undefined;
    });
    note('snapshot: created → Completed', t);
    await ranOnNode('orig', 'snapshot', 'snapshot');
    // Written by the two running workers, each for the partitions it owns, while events arrived.
    expect(snap.message).toContain('by the running workers');
    expect(snap.partitions).toBe(PARTITIONS);
    expect(snap.offsets).toHaveLength(PARTITIONS);
    expect(snap.offsets!.every((o) => o > 0)).toBe(true);
    expect(snap.modelVersion).toBeTruthy();
    expect(snap.sizeBytes).toBeGreaterThan(0);
    expect(await kubectl(c, 'get', 'processingjobsnapshots', '-n', jobNs)).toMatch(/^orig-1\s+orig\s+Completed\s+4\s/m);

    // A new job of the same type on the same topic, started from the snapshot (its restore task mounts orig's volume).
    t = Date.now();
    await kubectlApply(c, jobNs, churnJob('copy', { restore: { id: 'from-orig-1', fromSnapshot: 'orig-1' } }));
    const restored = await waitUntil('copy: restore Completed', 120_000, async () => {
      const r = (await status('copy')).restore;
      if (r?.phase === 'Failed') throw new FinalError(`restore failed: ${r.message}`);
      return r?.phase === 'Completed' ? r : undefined;
    });
    note('restore into a new job: applied → restore Completed', t);
    await ranOnNode('copy', 'restore', 'restore');
    expect(restored.offsets).toEqual(snap.offsets);
    await waitUntil('copy Ready', 120_000, async () => ready(await status('copy')));
    note('restore into a new job: applied → workers Ready', t);

    // Deleting the snapshot runs a task pod that deletes its files on orig's volume.
    const snapshots = async (): Promise<string> => {
      const [pod] = (await jsonpath('get', 'pods', '-n', jobNs, '-l', 'app.kubernetes.io/instance=orig,app.kubernetes.io/name=sluice-worker', '-o', 'jsonpath={.items[*].metadata.name}')).split(/\s+/);
      return kubectl(c, 'exec', pod!, '-n', jobNs, '--', 'ls', '/var/lib/sluice/checkpoints/.sluice/snapshots');
    };
    expect(await snapshots()).toContain('orig-1');
    t = Date.now();
    await kubectl(c, 'delete', 'processingjobsnapshot', 'orig-1', '-n', jobNs, '--wait=true', '--timeout=120s');
    note('snapshot deleted (files removed by a task pod)', t);
    await ranOnNode('orig', 'delete', 'delete snapshot files');
    expect(await snapshots()).not.toContain('orig-1');

    await caughtUp(['orig', 'copy']);
    const original = await readHashes(redis, prefix('orig'), 'user:*');
    const copy = await readHashes(redis, prefix('copy'), 'user:*');
    // copy wrote every user seen after the snapshot, with the scores of the original (its features carried over):
    // a copy that had started from zero, or missed or doubled an event, would score them differently.
    expect(copy.size).toBeGreaterThan(200);
    for (const [key, fields] of copy) expect(fields, key).toEqual(original.get(key));
  });

  it.concurrent('an upgrade to a model that cannot load is rolled back to the last stable spec: the old model keeps scoring, and no event is lost or counted twice', { timeout: 240_000 }, async () => {
    try {
      await rollback();
    } finally {
      flow.finishSoon(AFTER_ROLLBACK);
    }
    // The stable spec runs again: no worker mounts the broken model, and the job catches up.
    expect(await jsonpath('get', 'deployment', 'up-worker', '-n', jobNs, '-o', 'jsonpath={.spec.template.spec.volumes}')).not.toContain('churn-model-v2');
    await caughtUp(['up', 'orig']);
    note('broken upgrade: end of the flow → up caught up', flow.endedAt);

    // Every user's hash equals that of the run nobody touched, scored by the old model, the events after the rollback included.
    const original = await readHashes(redis, prefix('orig'), 'user:*');
    const up = await readHashes(redis, prefix('up'), 'user:*');
    expect(up.size).toBeGreaterThan(300);
    expect(up).toEqual(original);
    expect(new Set([...up.values()].map((h) => h.model_version))).toEqual(new Set([bundledVersion]));
    expect([...up.values()].filter((h) => Date.parse(h.updated_at!) >= rolledBackAtEventTime).length).toBeGreaterThan(20);
  });

  it('deleting the jobs deletes their snapshots: the operator releases the files\' finalizer, nothing is left behind', { timeout: 120_000 }, async () => {
    expect(await jsonpath('get', 'processingjobsnapshots', '-n', jobNs, '-o', 'name')).toContain('up-pre-upgrade-');
    const t = Date.now();
    await kubectl(c, 'delete', 'processingjobs', '--all', '-n', jobNs, '--wait=true', '--timeout=60s');
    await waitUntil('the snapshots to go with their jobs', 60_000, async () => (await jsonpath('get', 'processingjobsnapshots', '-n', jobNs, '-o', 'name')) === '');
    note('jobs deleted → their snapshots gone', t);
  });
});

/** The job's workers are past the first days: a snapshot now is one of a job in the middle of the stream. */
async function scoringTheFlow(job: string): Promise<void> {
  await waitUntil(`${job} scoring the events of the flow`, 60_000, async () =>
    [...(await readHashes(redis, prefix(job), 'user:*')).values()].some((h) => Date.parse(h.updated_at!) >= START + FIRST_DAYS * DAY));
}

let bundledVersion = '';
/** The event time the flow had reached when the rollback was seen done: later events were scored after it. */
let rolledBackAtEventTime = Infinity;

/** The broken upgrade, from the patch to RolledBack, and what the status, the events and the pods show of it. */
async function rollback(): Promise<void> {
  await waitUntil('up: the first spec stable', 60_000, async () => (await status('up')).upgrade?.state === 'Stable');
  const stableGeneration = (await status('up')).upgrade!.stableGeneration!;
  await scoringTheFlow('up');
  bundledVersion = (await readHashes(redis, prefix('up'), 'user:*')).values().next().value!.model_version!;
  expect(bundledVersion).toBeTruthy();

  // The "new model": a ConfigMap whose file is no ONNX model.
  await kubectl(c, 'create', 'configmap', 'churn-model-v2', '-n', jobNs, '--from-literal=model.onnx=this is not an onnx model');
  const t = Date.now();
  await kubectl(c, 'patch', 'processingjob/up', '-n', jobNs, '--type=merge', '-p',
    JSON.stringify({ spec: { model: { source: 'configMap', configMap: { name: 'churn-model-v2', key: 'model.onnx' } } } }));
  const seen: string[] = [];
  const at: Record<string, number> = {};
  let brokenLog = '';
  const final = await waitUntil('up: RolledBack', 180_000, async () => {
    const s = await status('up');
    const state = s.upgrade?.state ?? '';
    if (seen.at(-1) !== state) {
      seen.push(state);
      at[state] = Date.now();
    }
    if (state === 'Upgrading' && !/model/i.test(brokenLog)) {
      // The new model's worker on the real node: it refuses the file and exits.
      const pods = JSON.parse(await kubectl(c, 'get', 'pods', '-n', jobNs, '-l', 'app.kubernetes.io/instance=up,app.kubernetes.io/name=sluice-worker', '-o', 'json')) as {
        items: Array<{ metadata: { name: string }; status: { containerStatuses?: Array<{ restartCount: number }> } }>;
      };
      const crashed = pods.items.find((p) => (p.status.containerStatuses?.[0]?.restartCount ?? 0) > 0);
      // Asked again until it answers: the kubelet may be replacing the exited container just then.
      if (crashed) {
        const logs = (...extra: string[]): Promise<string> => kubectl(c, 'logs', crashed.metadata.name, '-n', jobNs, ...extra).catch(() => '');
        brokenLog = await logs('--previous');
        if (!/model/i.test(brokenLog)) brokenLog = await logs();
      }
    }
    return state === 'RolledBack' ? s : undefined;
  });
  rolledBackAtEventTime = flow.producedUpTo;
  note('broken upgrade: patch → RolledBack', t);
  if (at.Upgrading && at.RollingBack) note(`broken upgrade: rollout → rollback decided (timeoutSeconds ${ROLLBACK_TIMEOUT_S})`, at.Upgrading, at.RollingBack);
  if (at.RollingBack) note('rollback: decided → RolledBack (workers stopped, state restored)', at.RollingBack, at.RolledBack);
  const pre = `up-pre-upgrade-${stableGeneration + 1}`;
  expect(seen.filter((x) => x !== 'Stable')).toEqual(['Snapshotting', 'Upgrading', 'RollingBack', 'RolledBack']);
  expect(final.upgrade).toMatchObject({ reason: 'WorkersNotReady', stableGeneration, snapshot: pre });
  expect(final.upgrade!.message).toContain(`state restored from snapshot ${pre}`);
  expect(final.conditions?.find((x) => x.type === 'RolledBack')).toMatchObject({ status: 'True', reason: 'WorkersNotReady' });
  expect(brokenLog, "the new model's worker log").toMatch(/model/i);
  const events = await eventsOf('up');
  expect(events.filter((e) => e.type === 'Warning').map((e) => e.reason)).toEqual(expect.arrayContaining(['RollingBack', 'RolledBack']));
  // The snapshot before the change (by the running old workers) and the rollback's restore ran as pods on the real node.
  expect((await snapshotStatus(pre)).message).toContain('by the running workers');
  await ranOnNode('up', 'snapshot', 'snapshot before the upgrade');
  await ranOnNode('up', 'restore', 'rollback restore');
}
