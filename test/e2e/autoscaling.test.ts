import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { deleteTopics, RecordProducer, TopicAdmin, type OutgoingRecord } from '../../lib/kafka/client.js';
import { flaps, type Scale } from '../../operator/autoscaling/simulate.js';
import { parseSeries } from '../../operator/observe/prometheus-text.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { toWire } from '../../workers/events/wire.js';
import { infra, infraDir, kafka, repoRoot, uniqueName } from '../support/infra.js';
import { cluster, helm, kubectl, kubectlApply } from './cluster.js';
import { imageOnNodes, imageParts } from './image.js';
import { hostServices } from './services.js';
import { keepEvidence as keepEvidenceOf, waitUntil as waitEvery } from './steps.js';

/**
 * Autoscaling on real pods of the real node (hack/node.sh): the chart's
 * operator, scoped to this file's namespace, sizes a churn job whose workers
 * are throttled to CAP events/s each (spec.throttle) from what it reads of
 * Kafka and of the worker pods' /metrics. A producer on the host goes from a
 * rate one worker handles to one that needs four (the topic's partitions, so
 * four is also the cap), then back. The job scales up, the lag (measured here,
 * from the topic's end offsets and the workers' own positions) is worked off
 * within the documented time, and after the scale-down window the job is back
 * at one worker, never flapping. Windows are short (spec fields) so that the
 * file stays short; the assertions are on sequences and bounds, never on how
 * fast a loaded machine is.
 */
const c = cluster();
const run = uniqueName('e2e-as');
const release = uniqueName('sluice-as');
const releaseNs = `${run}-sluice`;
const jobNs = `${run}-jobs`;
const topic = `${run}.events`;
const JOB = 'churn';
const PARTITIONS = 4;
/** Events per second one throttled worker processes. */
const CAP = 100;
/** One worker at 40% of its rate. */
const LOW = 40;
/** 220/s over CAP x targetUtilization is 3.7 workers: four, the topic's partitions. */
const HIGH = 220;
const AUTOSCALING = {
  enabled: true,
  minParallelism: 1,
  catchUpSeconds: 30,
  targetUtilization: 0.6,
  metricsWindowSeconds: 6,
  scaleUpStabilizationSeconds: 8,
  scaleDownStabilizationSeconds: 12,
};
/** The lag target of the test: two seconds of the high input. */
const LAG_TARGET = 2 * HIGH;
/** --autoscale-interval of the operator, and the sampling period of the timeline. */
const LOOK_S = 2;
const work = mkdtempSync(join(tmpdir(), 'sluice-e2e-as-'));

interface Sample {
  t: number;
  input: number;
  workers: number;
  ready: number;
  recommended?: number;
  /** Events behind, as this test measures it (end offsets minus the workers' positions); undefined while a partition has no position. */
  lag?: number;
  /** Events the workers read since the previous sample, per second. */
  done?: number;
  /** Partitions each worker owns, e.g. "1 1 1 1". */
  assigned?: string;
  decision?: string;
}

const timeline: Sample[] = [];
const fileStarted = Date.now();
let started = Date.now();
let rate = 0;
let producing = true;
let producer: Promise<void> | undefined;
let sampling = false;
let sampler: Promise<void> | undefined;
let admin: TopicAdmin | undefined;
let operatorMetrics: string | undefined;

const jsonOf = async <T>(...args: string[]): Promise<T> => JSON.parse(await kubectl(c, ...args, '-o', 'json')) as T;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const secondsSince = (t0: number): number => Math.round((Date.now() - t0) / 1000);
const waitUntil = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> => waitEvery(what, timeoutMs, probe, 500);
const keepEvidence = (step: string): Promise<void> =>
  keepEvidenceOf(c, {
    dir: join(infraDir, 'logs', run),
    jobNamespace: jobNs,
    namespaces: [jobNs, releaseNs],
    kinds: 'processingjobs,deployments,replicasets,pods,pvc',
    yamlKinds: 'processingjobs,deployments',
  }, step);

/** Events at `rate` per second (read at every tick, so the test can change it), keyed by user. */
async function produce(): Promise<void> {
  const p = await RecordProducer.connect({ brokers: kafka().brokers, clientId: `${run}-producer` });
  const events = new EventGenerator({ seed: 14, users: 2000, days: 30 })[Symbol.iterator]();
  let due = 0;
  let last = Date.now();
  try {
    while (producing) {
      const now = Date.now();
      due += (rate * (now - last)) / 1000;
      last = now;
      const n = Math.floor(due);
      if (n > 0) {
        due -= n;
        const batch: OutgoingRecord[] = [];
        for (let i = 0; i < n; i++) {
          const e = events.next().value!;
          batch.push({ key: e.userId, value: toWire(e) });
        }
        await p.send(topic, batch);
      }
      await sleep(100);
    }
  } finally {
    await p.disconnect();
  }
}

interface Item {
  kind: string;
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec?: { replicas?: number };
  status?: {
    podIP?: string;
    readyReplicas?: number;
    autoscaling?: { lastDecision?: string; processingRatePerWorker?: number; currentParallelism?: number; lastScaleDirection?: string; lastReversalTime?: string };
  };
}

async function text(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return res.text();
}

/**
 * The lag as a user would measure it: the topic's end offsets minus the
 * position each partition's owner reports (the worker pods are on the pod
 * bridge, which this host reaches). Undefined while a partition has no owner.
 */
async function workerView(pods: Item[]): Promise<{ lag?: number; read: number; assigned: string }> {
  const positions = new Map<number, number>();
  let read = 0;
  const assigned: number[] = [];
  await Promise.all(
    pods.filter((p) => !p.metadata.deletionTimestamp && p.status?.podIP).map(async (p) => {
      const names = new Set(['sluice_consumer_position', 'sluice_events_in_total', 'sluice_assigned_partitions']);
      const series = parseSeries(await text(`http://${p.status!.podIP}:9090/metrics`).catch(() => ''), names);
      for (const s of series.get('sluice_consumer_position') ?? []) {
        const partition = Number(s.labels.partition);
        positions.set(partition, Math.min(positions.get(partition) ?? Infinity, s.value));
      }
      read += series.get('sluice_events_in_total')?.[0]?.value ?? 0;
      assigned.push(series.get('sluice_assigned_partitions')?.[0]?.value ?? 0);
    }),
  );
  const view = { read, assigned: assigned.sort().join(' ') };
  if (positions.size < PARTITIONS) return view;
  const ends = await admin!.endOffsets(topic);
  let lag = 0;
  for (const [partition, end] of ends) lag += Math.max(0, end - (positions.get(partition) ?? 0));
  return { ...view, lag };
}

/** Events read by the workers as of the previous sample (a counter per pod: a pod that goes takes its count along). */
let lastRead: { at: number; read: number } | undefined;

/** The operator's live figures for the job (its gauges, unrounded unlike the status). */
async function gauges(): Promise<Record<string, number>> {
  if (!operatorMetrics) return {};
  const out: Record<string, number> = {};
  for (const m of (await text(operatorMetrics)).matchAll(/^sluice_operator_autoscaling_(\w+)\{([^}]*)\} (\S+)$/gm)) {
    if (m[2].includes(`namespace="${jobNs}"`) && !m[1].endsWith('_total')) out[m[1]] = Number(m[3]);
  }
  return out;
}

/** The job, its Deployment and its pods in one kubectl call (one a look: the machine has two cores). */
async function objects(): Promise<{ job?: Item; deployment?: Item; pods: Item[] }> {
  const { items } = await jsonOf<{ items: Item[] }>('get', 'processingjobs,deployments,pods', '-n', jobNs);
  return {
    job: items.find((i) => i.kind === 'ProcessingJob' && i.metadata.name === JOB),
    deployment: items.find((i) => i.kind === 'Deployment' && i.metadata.name === `${JOB}-worker`),
    pods: items.filter((i) => i.kind === 'Pod' && i.metadata.labels?.['app.kubernetes.io/instance'] === JOB),
  };
}

/** Events per second the workers read since the previous sample (undefined when a pod that went took its count along). */
function readRate(read: number | undefined, now: number): number | undefined {
  if (read === undefined) return undefined;
  const before = lastRead;
  lastRead = { at: now, read };
  return before && read >= before.read ? Math.round(((read - before.read) * 1000) / (now - before.at)) : undefined;
}

async function sample(): Promise<void> {
  const [{ job, deployment, pods }, g] = await Promise.all([objects(), gauges().catch(() => ({}) as Record<string, number>)]);
  const view = await workerView(pods).catch(() => undefined);
  const done = readRate(view?.read, Date.now());
  timeline.push({
    t: secondsSince(started),
    input: rate,
    workers: deployment?.spec?.replicas ?? 0,
    ready: deployment?.status?.readyReplicas ?? 0,
    recommended: g.recommended_workers,
    lag: view?.lag,
    done,
    assigned: view?.assigned,
    decision: job?.status?.autoscaling?.lastDecision,
  });
}

async function sampleEvery(ms: number): Promise<void> {
  while (sampling) {
    const at = Date.now();
    await sample().catch(() => undefined);
    await sleep(Math.max(0, ms - (Date.now() - at)));
  }
}

let printed = false;
function printTimeline(): void {
  if (printed || !timeline.length) return;
  printed = true;
  const rows = timeline.map((s) =>
    [s.t, s.input, s.workers, s.ready, s.recommended ?? '', s.lag ?? '?', s.lag === undefined || !s.input ? '' : (s.lag / s.input).toFixed(1), s.done ?? '', s.assigned ?? '', s.decision ?? ''].map(String),
  );
  const head = ['t(s)', 'input/s', 'workers', 'ready', 'recommended', 'lag', 'lag(s)', 'read/s', 'partitions', 'decision'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((cell, i) => cell.padStart(width[i])).join('  ');
  process.stdout.write(`autoscaling timeline (one row per ${LOOK_S} s; lag measured from the end offsets and the workers' positions):\n${[line(head), ...rows.map(line)].join('\n')}\n`);
}

const latest = (): Sample => timeline[timeline.length - 1]!;

function jobManifest(): string {
  const node = infra().node;
  if (!node) throw new Error("no real node: run 'bash hack/infra.sh up' (hack/node.sh)");
  const services = hostServices();
  return stringify({
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProcessingJob',
    metadata: { name: JOB },
    spec: {
      type: 'churn',
      parallelism: 1,
      kafka: { bootstrapServers: services.kafkaBootstrap, topic, startFrom: 'earliest' },
      redis: { ...services.redis, keyPrefix: `${run}:` },
      // One real node: ReadWriteOnce is shared by every worker on it.
      checkpoint: { intervalSeconds: 5, size: '64Mi', accessMode: 'ReadWriteOnce' },
      resources: { requests: { cpu: '50m', memory: '128Mi' } },
      template: { nodeSelector: node.nodeSelector, tolerations: node.tolerations },
      throttle: { eventsPerSecondPerWorker: CAP },
      autoscaling: AUTOSCALING,
    },
  });
}

/** The changes of the worker count in the timeline. */
function scalesOf(samples: readonly Sample[]): Scale[] {
  const out: Scale[] = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    if (a.workers > 0 && b.workers !== a.workers) out.push({ t: b.t, from: a.workers, to: b.workers, reason: '' });
  }
  return out;
}

describe(`autoscaling on real pods (${c.kubeconfig})`, () => {
  beforeAll(async () => {
    if (!c.isTestControlPlane) throw new Error('this file runs on the real node of the hack/ control plane (hack/node.sh): it reads the pods\' /metrics over the pod bridge');
    const node = infra().node;
    if (!node) throw new Error("no real node: run 'bash hack/infra.sh up' (hack/node.sh)");
    await imageOnNodes(c);
    // The repo's own CRDs, unchanged (as docs/install.md says before an install).
    await kubectl(c, 'apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'charts', 'sluice', 'crds'));
    await kubectl(c, 'wait', '--for=condition=Established', 'crd/processingjobs.sluice.dev', '--timeout=60s');
    for (const ns of [releaseNs, jobNs]) {
      await kubectl(c, 'create', 'namespace', ns);
      await kubectl(c, 'label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted');
    }
    const services = hostServices();
    await services.createTopic(topic, PARTITIONS);
    await services.createTopic(`${topic}.dlq`, 1);
    admin = await TopicAdmin.connect({ brokers: kafka().brokers, clientId: `${run}-admin` });
    const { repository, tag } = imageParts();
    const values = join(work, 'values.yaml');
    writeFileSync(
      values,
      stringify({
        image: { repository, tag, pullPolicy: 'Never' },
        watchNamespaces: [jobNs],
        operator: {
          replicas: 1,
          leaderElection: { enabled: false },
          podDisruptionBudget: { enabled: false },
          nodeSelector: node.nodeSelector,
          tolerations: node.tolerations,
          resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
          extraArgs: [`--autoscale-interval=${LOOK_S}`, '--lag-check-interval=0'],
        },
      }),
    );
    await helm(c, 'install', release, join(repoRoot, 'charts', 'sluice'), '-n', releaseNs, '-f', values, '--wait', '--timeout', '120s');
    const operatorPod = (await jsonOf<{ items: Item[] }>('get', 'pods', '-n', releaseNs, '-l', `app.kubernetes.io/instance=${release}`)).items[0];
    operatorMetrics = operatorPod?.status?.podIP ? `http://${operatorPod.status.podIP}:8080/metrics` : undefined;
    process.stdout.write(`e2e autoscaling: setup (image, CRDs, namespaces, topics, operator Ready) took ${secondsSince(fileStarted)} s\n`);
  }, 300_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') {
      printTimeline();
      await keepEvidence('autoscaling');
    }
  });

  afterAll(async () => {
    const cleanup = Date.now();
    sampling = false;
    producing = false;
    await sampler?.catch(() => undefined);
    await producer?.catch(() => undefined);
    printTimeline();
    await admin?.disconnect().catch(() => undefined);
    // The workers stop while their topic still exists (a worker whose topic went waits out its grace period on
    // its final commit) and while the operator runs; then the operator, the namespaces and the topics go.
    await kubectl(c, 'delete', 'processingjob', JOB, '-n', jobNs, '--cascade=foreground', '--wait=true', '--timeout=60s').catch(() => undefined);
    await kubectl(c, 'wait', '--for=delete', 'pods', '-l', `app.kubernetes.io/instance=${JOB}`, '-n', jobNs, '--timeout=60s').catch(() => undefined);
    await helm(c, 'uninstall', release, '-n', releaseNs, '--timeout', '60s').catch(() => undefined);
    await kubectl(c, 'delete', 'namespace', jobNs, releaseNs, '--wait=false').catch(() => undefined);
    await deleteTopics({ brokers: kafka().brokers }, [topic, `${topic}.dlq`]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    process.stdout.write(`e2e autoscaling: cleanup took ${secondsSince(cleanup)} s; the file took ${secondsSince(fileStarted)} s, hooks included\n`);
  });

  it('scales a throttled job from one worker to four as the input rises, works off the lag, and back to one after the scale-down window, never flapping', async () => {
    started = Date.now();
    rate = LOW;
    producer = produce();
    await kubectlApply(c, jobNs, jobManifest());
    sampling = true;
    sampler = sampleEvery(LOOK_S * 1000);

    // One worker handles the low rate, and the operator measured what it really does: its throttle.
    const steady = await waitUntil('a Steady decision at one worker, with its true rate', 120_000, async () => {
      const a = (await objects()).job?.status?.autoscaling;
      return a?.lastDecision === 'Steady' && a.processingRatePerWorker ? a : undefined;
    });
    expect(steady.currentParallelism).toBe(1);
    expect(steady.processingRatePerWorker).toBeGreaterThan(CAP * 0.8);
    expect(steady.processingRatePerWorker).toBeLessThan(CAP * 1.2);
    expect(latest().workers).toBe(1);

    rate = HIGH;
    const highAt = secondsSince(started);
    const upAt = await waitUntil('a scale-up', 60_000, async () => timeline.find((s) => s.t >= highAt && s.workers > 1)?.t);
    const allReady = await waitUntil('four ready workers', 120_000, async () => timeline.find((s) => s.t >= upAt && s.workers === PARTITIONS && s.ready === PARTITIONS)?.t);
    // Sized for the input plus lag / catchUpSeconds: once its workers are ready the lag is worked off within
    // catchUpSeconds (and a metrics window for the figures to follow), the workers reading more than comes in.
    const caughtUp = await waitUntil('the lag back under two seconds of input', (AUTOSCALING.catchUpSeconds + AUTOSCALING.metricsWindowSeconds) * 1000 + 30_000, async () => {
      return timeline.find((s) => s.t > allReady && s.lag !== undefined && s.lag < LAG_TARGET)?.t;
    });
    expect(caughtUp - allReady).toBeLessThanOrEqual(AUTOSCALING.catchUpSeconds + AUTOSCALING.metricsWindowSeconds);
    const peakLag = Math.max(...timeline.filter((s) => s.t >= highAt && s.t <= caughtUp).map((s) => s.lag ?? 0));

    rate = LOW;
    const lowAt = secondsSince(started);
    const downAt = await waitUntil('one worker again', 90_000, async () => timeline.find((s) => s.t > lowAt && s.workers === 1)?.t);
    // Settled at one: two looks more, and no change.
    await waitUntil('two more looks at one worker', 20_000, async () => timeline.filter((s) => s.t > downAt).length >= 2 || undefined);
    sampling = false;
    await sampler;

    printTimeline();
    const scales = scalesOf(timeline);
    process.stdout.write(
      `e2e autoscaling: one worker measured at ${steady.processingRatePerWorker}/busy s (cap ${CAP}); rate ${LOW} -> ${HIGH}/s at ${highAt} s, first scale-up at ${upAt} s (${upAt - highAt} s later), four workers ready at ${allReady} s; ` +
        `lag (peak ${peakLag} events) under ${LAG_TARGET} at ${caughtUp} s (${caughtUp - allReady} s after all four were ready); ` +
        `rate back to ${LOW}/s at ${lowAt} s; one worker at ${downAt} s (${downAt - lowAt} s later, scale-down window ${AUTOSCALING.scaleDownStabilizationSeconds} s); ` +
        `scales ${scales.map((s) => `${s.from}->${s.to}@${s.t}s`).join(' ')}; lag at the end ${latest().lag ?? '?'}\n`,
    );

    // The sequence: up to four (in one step or more, never down on the way), then down to one, one change of direction.
    const sequence = [1, ...scales.map((s) => s.to)];
    const top = sequence.indexOf(Math.max(...sequence));
    expect(Math.max(...sequence)).toBe(PARTITIONS);
    expect(top, `sequence ${sequence.join(' -> ')}`).toBeGreaterThan(0);
    expect(sequence.slice(0, top + 1), `sequence ${sequence.join(' -> ')}`).toEqual([...sequence.slice(0, top + 1)].sort((a, b) => a - b));
    expect(sequence.slice(top), `sequence ${sequence.join(' -> ')}`).toEqual([...sequence.slice(top)].sort((a, b) => b - a));
    expect(sequence.at(-1)).toBe(1);
    expect(flaps(scales, AUTOSCALING.scaleDownStabilizationSeconds)).toEqual([]);
    // Down only after the window: no scale for scaleDownStabilizationSeconds, and the drop seen for the window's data.
    const lastUp = scales.filter((s) => s.to > s.from).at(-1)!;
    const firstDown = scales.find((s) => s.to < s.from)!;
    expect(firstDown.t - lastUp.t).toBeGreaterThanOrEqual(AUTOSCALING.scaleDownStabilizationSeconds - LOOK_S);
    expect(firstDown.t - lowAt).toBeGreaterThanOrEqual(AUTOSCALING.scaleDownStabilizationSeconds - AUTOSCALING.metricsWindowSeconds - LOOK_S);
    expect(timeline.filter((s) => s.t > downAt).every((s) => s.workers === 1)).toBe(true);

    // Every scale announced with its figures, in the words of the issue.
    const events = (await jsonOf<{ items: Array<{ reason: string; message: string; involvedObject: { name: string } }> }>('get', 'events', '-n', jobNs)).items
      .filter((e) => e.reason === 'Autoscaled' && e.involvedObject.name === JOB)
      .map((e) => e.message);
    process.stdout.write(`e2e autoscaling: events:\n  ${events.join('\n  ')}\n`);
    expect(events.length).toBe(scales.length);
    for (const m of events) expect(m).toMatch(/^Scaled churn from \d to \d workers?: input [\d.]+k?\/s, one worker does \d+\/s, lag [\d.]+ s$/);
    const job = (await objects()).job!;
    expect(job.status!.autoscaling).toMatchObject({ currentParallelism: 1, lastScaleDirection: 'Down' });
    expect(job.status!.autoscaling!.lastReversalTime).toBeDefined();
    // What a user sees in kubectl get -o wide: the autoscaler's DESIRED column.
    const [header, row] = (await kubectl(c, 'get', 'processingjob', JOB, '-n', jobNs, '-o', 'wide')).split('\n');
    expect(row!.slice(header!.indexOf('DESIRED')).trim().split(/\s+/)[0]).toBe('1');
  }, 240_000);
});
