import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { kafka, repoRoot, uniqueName } from '../support/infra.js';
import { freePorts } from '../support/cli.js';
import { cluster, helm, kubectl, kubectlApply, serviceAccountKubeconfig } from './cluster.js';
import { buildImage, e2eImage, operatorMode, startOperator, type OperatorMode, type RunningOperator } from './operator-runner.js';

/**
 * The user's path through Sluice on a cluster: helm install the chart, apply the
 * examples, wait for Ready, scale, suspend, delete. On the hack/ control plane
 * worker Pods are KWOK Pods (Ready, but no container runs), so this covers the
 * control path; the data path is covered by the worker and CLI tests.
 */
const c = cluster();
const release = uniqueName('sluice');
const releaseNs = uniqueName('e2e-sluice');
const jobNs = uniqueName('e2e-jobs');
const topic = uniqueName('e2e-events');
// registry:port/name:tag → name part and tag (the tag is after the last ':' that follows the last '/').
const tagAt = e2eImage.lastIndexOf(':') > e2eImage.lastIndexOf('/') ? e2eImage.lastIndexOf(':') : -1;
const imageRepo = tagAt < 0 ? e2eImage : e2eImage.slice(0, tagAt);
const imageTag = tagAt < 0 ? 'latest' : e2eImage.slice(tagAt + 1);

let mode: OperatorMode;
let operator: RunningOperator | undefined;
let healthPort = 0;

/**
 * The examples as shipped. Outside a cluster that runs containers, they point at the local Kafka and a
 * topic of this test's own; in a real cluster (kind) they use the dev Kafka and Redis of examples/dev/ in
 * the job namespace, as they are.
 */
function example(file: string): string {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'examples', file), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  for (const doc of docs) {
    if (doc.kind !== 'ProcessingJob') continue;
    const spec = doc.spec as { kafka: { topic: string; bootstrapServers: string[] } };
    if (mode !== 'in-cluster') {
      spec.kafka.topic = topic;
      spec.kafka.bootstrapServers = kafka().brokers;
    }
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

/** In a real cluster: the dev Kafka and Redis of examples/dev/, and the examples' topic with 6 partitions. */
async function devKafkaAndRedis(): Promise<void> {
  for (const f of ['kafka.yaml', 'redis.yaml', 'mailpit.yaml']) {
    await kubectlApply(c, jobNs, readFileSync(join(repoRoot, 'examples', 'dev', f), 'utf8'));
  }
  await kubectl(c, 'wait', '--for=condition=Available', 'deployment/kafka', 'deployment/redis', '-n', jobNs, '--timeout=300s');
  await waitUntil('the user_events topic', 120_000, async () => {
    await kubectl(c, 'exec', '-n', jobNs, 'deploy/kafka', '--', '/opt/kafka/bin/kafka-topics.sh', '--bootstrap-server', 'localhost:9092',
      '--create', '--if-not-exists', '--topic', 'user_events', '--partitions', '6');
    return true;
  });
}

async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (operator?.exit()) throw new Error(`the operator exited (${operator.exit()}) while waiting for ${what}:\n${operator.logs()}`);
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}${operator ? `\noperator logs:\n${operator.logs().slice(-3000)}` : ''}`);
}

const jsonpath = async (...args: string[]): Promise<string> => (await kubectl(c, ...args)).trim();

describe(`helm install, examples, scale, suspend, delete (cluster: ${c.kubeconfig})`, () => {
  beforeAll(async () => {
    mode = await operatorMode(c);
    process.stderr.write(`e2e: operator runs ${mode === 'in-cluster' ? 'in the cluster' : mode === 'image' ? `from the image ${e2eImage}` : 'as a local process'}\n`);
    if (mode === 'image') await buildImage();
    // As docs/install.md says to do before every install or upgrade: the cluster may hold an older CRD.
    await kubectl(c, 'apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'charts', 'sluice', 'crds'));
    await kubectl(c, 'wait', '--for=condition=Established', 'crd/processingjobs.sluice.dev', '--timeout=60s');
    await kubectl(c, 'create', 'namespace', jobNs);
    if (mode === 'in-cluster') await devKafkaAndRedis();
    else await createTopic({ brokers: kafka().brokers }, topic, 6);
  }, 900_000); // a first image build on a fresh machine makes the local base images too

  afterAll(async () => {
    await operator?.stop();
    await helm(c, 'uninstall', release, '-n', releaseNs, '--wait', '--timeout', '60s').catch(() => undefined);
    await kubectl(c, 'delete', 'namespace', jobNs, releaseNs, '--wait=false').catch(() => undefined);
    if (mode !== 'in-cluster') await deleteTopics({ brokers: kafka().brokers }, [topic]).catch(() => undefined);
  });

  it('helm install brings the operator up, watching only the namespaces it is given, with their RBAC', async () => {
    const out = await helm(
      c, 'install', release, join(repoRoot, 'charts', 'sluice'), '-n', releaseNs, '--create-namespace',
      '--set', `image.repository=${imageRepo}`, '--set', `image.tag=${imageTag}`, '--set', 'image.pullPolicy=IfNotPresent',
      '--set', `watchNamespaces={${jobNs}}`, '--wait', '--timeout', '180s',
    );
    expect(out).toContain('STATUS: deployed');
    expect(out).toContain(`manages ProcessingJobs in namespaces: ${jobNs}`);
    const available = await jsonpath('get', 'deployment', release, '-n', releaseNs, '-o', 'jsonpath={.status.availableReplicas}');
    expect(available).toBe('2');

    // Least privilege: the operator's ServiceAccount may manage jobs in the watched namespace only, and read no Secret list.
    const sa = `system:serviceaccount:${releaseNs}:${release}`;
    const can = (verb: string, what: string, ns: string): Promise<string> =>
      kubectl(c, 'auth', 'can-i', verb, what, '-n', ns, `--as=${sa}`).then((s) => s.trim(), () => 'no');
    expect(await can('watch', 'processingjobs.sluice.dev', jobNs)).toBe('yes');
    expect(await can('patch', 'deployments.apps', jobNs)).toBe('yes');
    expect(await can('list', 'processingjobs.sluice.dev', 'default')).toBe('no');
    expect(await can('list', 'secrets', jobNs)).toBe('no');
    expect(await can('delete', 'deployments.apps', jobNs)).toBe('no');

    if (mode === 'in-cluster') return;
    // No container runs in a KWOK Pod: run the operator the chart deploys, with the chart's arguments and
    // the chart's ServiceAccount (so its RBAC is what is tested), from the image or as a local process.
    const args = JSON.parse(
      await jsonpath('get', 'deployment', release, '-n', releaseNs, '-o', 'jsonpath={.spec.template.spec.containers[0].args}'),
    ) as string[];
    expect(args).toEqual(expect.arrayContaining(['operator', `--namespaces=${jobNs}`, `--worker-image=${e2eImage}`]));
    const base = await freePorts(2);
    healthPort = base + 1;
    const local = [...args, `--metrics-bind-address=127.0.0.1:${base}`, `--health-probe-bind-address=127.0.0.1:${healthPort}`];
    const kubeconfig = await serviceAccountKubeconfig(c, releaseNs, release);
    operator = startOperator(mode, local, kubeconfig, release);
    await waitUntil('the operator to be ready', 90_000, async () => {
      const exit = operator!.exit();
      if (exit) throw new Error(`the operator exited (${exit}):\n${operator!.logs()}`);
      const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      return res.ok ? true : undefined;
    });
    const holder = await waitUntil('a leader', 60_000, async () =>
      (await jsonpath('get', 'lease', 'sluice-operator-leader', '-n', releaseNs, '-o', 'jsonpath={.spec.holderIdentity}')) || undefined,
    );
    expect(holder).not.toBe('');
  });

  it('applies the churn and cart examples, which become Ready with their workers', async () => {
    await kubectlApply(c, jobNs, example('churn-job.yaml'));
    await kubectlApply(c, jobNs, example('cart-job.yaml'));
    await kubectl(c, 'wait', '--for=condition=Ready', 'processingjob/churn', 'processingjob/cart', '-n', jobNs, '--timeout=180s');

    const table = await kubectl(c, 'get', 'processingjobs', '-n', jobNs);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+TYPE\s+PARALLELISM\s+READY\s+LAG\s+PHASE\s+AGE/);
    expect(table).toMatch(/^churn\s+churn\s+2\s+2\s+(\d+\s+)?Running\s/m);
    expect(table).toMatch(/^cart\s+cart\s+1\s+1\s+(\d+\s+)?Running\s/m);

    // The workers run the operator's own image (the chart passes it as --worker-image).
    const image = await jsonpath('get', 'deployment', 'churn-worker', '-n', jobNs, '-o', 'jsonpath={.spec.template.spec.containers[0].image}');
    expect(image).toBe(e2eImage);
    const children = await kubectl(c, 'get', 'configmap,service,pvc', '-n', jobNs, '-l', 'sluice.dev/job=churn', '-o', 'name');
    expect(children).toContain('configmap/churn-config');
    expect(children).toContain('service/churn-metrics');
    expect(children).toContain('persistentvolumeclaim/churn-checkpoints');
  });

  it('scales with kubectl scale, through the scale subresource', async () => {
    await kubectl(c, 'scale', 'processingjob/churn', '--replicas=4', '-n', jobNs);
    await kubectl(c, 'wait', '--for=jsonpath={.status.readyReplicas}=4', 'processingjob/churn', '-n', jobNs, '--timeout=120s');
    expect(await jsonpath('get', 'deployment', 'churn-worker', '-n', jobNs, '-o', 'jsonpath={.spec.replicas}')).toBe('4');
    await kubectl(c, 'wait', '--for=condition=Ready', 'processingjob/churn', '-n', jobNs, '--timeout=120s');
  });

  it('suspends to zero workers and resumes', async () => {
    await kubectl(c, 'patch', 'processingjob/churn', '-n', jobNs, '--type=merge', '-p', '{"spec":{"suspend":true}}');
    await kubectl(c, 'wait', '--for=jsonpath={.status.phase}=Suspended', 'processingjob/churn', '-n', jobNs, '--timeout=120s');
    expect(await jsonpath('get', 'deployment', 'churn-worker', '-n', jobNs, '-o', 'jsonpath={.spec.replicas}')).toBe('0');
    // Checkpoints are kept while suspended.
    expect(await kubectl(c, 'get', 'pvc', 'churn-checkpoints', '-n', jobNs, '-o', 'name')).toContain('churn-checkpoints');

    await kubectl(c, 'patch', 'processingjob/churn', '-n', jobNs, '--type=merge', '-p', '{"spec":{"suspend":false}}');
    await kubectl(c, 'wait', '--for=condition=Ready', 'processingjob/churn', '-n', jobNs, '--timeout=120s');
    expect(await jsonpath('get', 'processingjob', 'churn', '-n', jobNs, '-o', 'jsonpath={.status.readyReplicas}')).toBe('4');
  });

  it('deletes the jobs, and garbage collection removes their children', async () => {
    await kubectl(c, 'delete', 'processingjob/churn', 'processingjob/cart', '-n', jobNs, '--wait=true', '--timeout=60s');
    await waitUntil('the worker Deployments to be garbage-collected', 120_000, async () => {
      const left = await kubectl(c, 'get', 'deployment,configmap,service', '-n', jobNs, '-l', 'app.kubernetes.io/managed-by=sluice-operator', '-o', 'name');
      return left.trim() === '' ? true : undefined;
    });
  });
});
