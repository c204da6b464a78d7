import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { parseAllDocuments, stringify } from 'yaml';
import { createTopic } from '../../lib/kafka/client.js';
import { infra, kafka, receivedMails, redis as hostRedis, repoRoot } from '../support/infra.js';
import { kubectl, kubectlApply, type Cluster } from './cluster.js';

const run = promisify(execFile);

/**
 * The Kafka, Redis and SMTP server the e2e jobs use, as the pods see them
 * (addresses in the job specs) and as the test sees them (to create topics,
 * read Redis, read mails, crash a container).
 *
 * - On the hack/ control plane: the host's servers, which the real node's pods
 *   reach on the pod bridge (hack/podnet.sh); the test uses loopback.
 * - On any other cluster (kind, `hack/e2e-kind.sh`): the dev Kafka, Redis and
 *   mailpit of examples/dev/ in a namespace of their own, which the test reaches
 *   with `kubectl port-forward` and `kubectl exec`.
 */
export interface DataServices {
  /** For the pods. */
  kafkaBootstrap: string[];
  redis: { host: string; port: number };
  smtp: { host: string; port: number };
  createTopic(topic: string, partitions: number): Promise<void>;
  redisClient(): Redis;
  /** The raw mails delivered to `to`, in arrival order. */
  mailsTo(to: string): Promise<string[]>;
  /** SIGKILL of a container's main process, as the OOM killer or a crash would end it. */
  killContainer(containerId: string): Promise<void>;
  close(): Promise<void>;
}

/** The host's servers, through the pod bridge of the real node. */
export function hostServices(): DataServices {
  const env = infra();
  const podBrokers = env.kafka?.podBrokers;
  if (!podBrokers?.length || !env.podnet) {
    throw new Error("the real node's pods cannot reach Kafka: run 'bash hack/infra.sh up' (podnet before kafka adds the broker's pod listener)");
  }
  const node = env.node;
  if (!node) throw new Error("no real node: run 'bash hack/infra.sh up node'");
  const clients: Redis[] = [];
  return {
    kafkaBootstrap: podBrokers,
    redis: env.podnet.redis,
    smtp: env.podnet.smtp,
    createTopic: async (topic, partitions) => {
      await createTopic({ brokers: kafka().brokers }, topic, partitions);
    },
    redisClient: () => {
      const r = hostRedis();
      const client = new Redis({ host: r.host, port: r.port, maxRetriesPerRequest: 2 });
      client.on('error', () => undefined);
      clients.push(client);
      return client;
    },
    mailsTo: async (to) => receivedMails().filter((m) => headerOf(m, 'to')?.includes(to)),
    killContainer: async (containerId) => {
      // The task list of the node's containerd has the container's pid on this host.
      const { stdout } = await run('ctr', ['--address', node.containerd, '--namespace', 'k8s.io', 'tasks', 'ls']);
      const line = stdout.split('\n').find((l) => l.startsWith(containerId));
      const pid = Number(line?.trim().split(/\s+/)[1]);
      if (!pid) throw new Error(`container ${containerId} has no running task on the node:\n${stdout}`);
      process.kill(pid, 'SIGKILL');
    },
    close: async () => {
      for (const c of clients) c.disconnect();
    },
  };
}

/**
 * The dev servers of examples/dev/ in their own namespace (the job namespace
 * enforces the restricted Pod Security profile, which they do not meet), with
 * Kafka advertising its Service's full name so that pods of other namespaces can
 * use it.
 */
export async function clusterServices(c: Cluster, ns: string): Promise<DataServices> {
  await kubectl(c, 'create', 'namespace', ns);
  const host = (svc: string): string => `${svc}.${ns}.svc`;
  for (const f of ['kafka.yaml', 'redis.yaml', 'mailpit.yaml']) {
    const docs = parseAllDocuments(readFileSync(join(repoRoot, 'examples', 'dev', f), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
    const text = docs.map((d) => stringify(d).replace('PLAINTEXT://kafka:9092', `PLAINTEXT://${host('kafka')}:9092`)).join('---\n');
    await kubectlApply(c, ns, text);
  }
  await kubectl(c, 'wait', '--for=condition=Available', 'deployment/kafka', 'deployment/redis', 'deployment/mailpit', '-n', ns, '--timeout=300s');
  const forwards: ChildProcess[] = [];
  const clients: Redis[] = [];
  const forward = async (target: string, port: number): Promise<number> => {
    const child = spawn(c.kubectl, ['port-forward', '-n', ns, target, `:${port}`], { env: { ...process.env, KUBECONFIG: c.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    forwards.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', (code) => reject(new Error(`kubectl port-forward ${target} exited (${code}): ${out}`)));
    });
  };
  const redisPort = await forward('svc/redis', 6379);
  const mailpitPort = await forward('svc/mailpit', 8025);
  return {
    kafkaBootstrap: [`${host('kafka')}:9092`],
    redis: { host: host('redis'), port: 6379 },
    smtp: { host: host('mailpit'), port: 1025 },
    createTopic: async (topic, partitions) => {
      await kubectl(c, 'exec', '-n', ns, 'deploy/kafka', '--', '/opt/kafka/bin/kafka-topics.sh', '--bootstrap-server', 'localhost:9092',
        '--create', '--if-not-exists', '--topic', topic, '--partitions', String(partitions));
    },
    redisClient: () => {
      const client = new Redis({ host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: 2 });
      client.on('error', () => undefined);
      clients.push(client);
      return client;
    },
    mailsTo: async (to) => {
      const api = `http://127.0.0.1:${mailpitPort}/api/v1`;
      const list = (await (await fetch(`${api}/messages?limit=1000`)).json()) as { messages: Array<{ ID: string; To: Array<{ Address: string }> }> };
      const mine = list.messages.filter((m) => m.To.some((t) => t.Address === to)).reverse();
      return Promise.all(mine.map(async (m) => (await fetch(`${api}/message/${m.ID}/raw`)).text()));
    },
    killContainer: async (containerId) => {
      // A kind node is a Docker container running containerd: crictl there knows the pid.
      const nodes = (await kubectl(c, 'get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}')).trim().split(/\s+/);
      for (const n of nodes) {
        try {
          await run('docker', ['exec', n, 'sh', '-c', `kill -9 "$(crictl inspect --output go-template --template '{{.info.pid}}' ${containerId})"`]);
          return;
        } catch {
          // not on this node
        }
      }
      throw new Error(`container ${containerId} was found on no node (${nodes.join(', ')})`);
    },
    close: async () => {
      for (const cl of clients) cl.disconnect();
      for (const f of forwards) f.kill();
    },
  };
}

/** A header of a raw RFC 5322 message (first occurrence, unfolded), lower-cased name. */
export function headerOf(mail: string, name: string): string | undefined {
  const head = mail.replace(/\r\n/g, '\n').split('\n\n')[0]!.replace(/\n[ \t]+/g, ' ');
  const line = head.split('\n').find((l) => l.toLowerCase().startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}
