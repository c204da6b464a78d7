/**
 * Servers a fault test owns: it starts them on ports of its own, kills them
 * (SIGKILL, by pid) and starts them again, without touching the shared ones
 * that other tests use. A Kafka broker from the cached jars in a temporary
 * directory; a kube-apiserver on the shared etcd under a key prefix of its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from './infra.js';
import { freePort } from './ports.js';

export { freePort };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>, child?: ChildProcess, log?: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${what}: the process exited with ${child.exitCode}${log ? ` (log: ${log})` : ''}`);
    if (await probe().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not ready within ${timeoutMs} ms${log ? ` (log: ${log})` : ''}`);
    await sleep(250);
  }
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * A server process of the test's own, writing to `logFile`: started once at
 * a time, SIGKILLed by its pid (no clean shutdown), started again at will.
 */
abstract class PrivateProcess {
  private child: ChildProcess | undefined;

  protected constructor(
    private readonly what: string,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns it with its output appended to the log; resolves once `ready` answers, with how long that took (ms). */
  protected async launch(command: string, args: string[], ready: () => Promise<boolean>, timeoutMs: number): Promise<number> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) throw new Error(`the ${this.what} is already running`);
    const log = openSync(this.logFile, 'a');
    this.child = spawn(command, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    return until(this.what, timeoutMs, ready, this.child, this.logFile);
  }

  /** SIGKILL, by pid: no clean shutdown. */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    process.kill(this.child.pid!, 'SIGKILL');
    await waitExit(this.child);
  }
}

/** Where hack/kafka.sh cached the broker's jars. */
function kafkaLibs(): string {
  const cache = process.env.SLUICE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sluice');
  const libs = join(cache, 'kafka', 'libs');
  if (!existsSync(libs)) throw new Error(`no Kafka jars in ${libs}: run 'bash hack/infra.sh up kafka' once`);
  return libs;
}

/**
 * A single-node KRaft broker of the test's own, from the jars hack/kafka.sh
 * cached: its data survives kill() and start() (same directory, same ports),
 * as a broker's disk survives a crash.
 */
export class PrivateKafka extends PrivateProcess {
  private readonly config: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly controllerPort: number,
  ) {
    super(`private Kafka on ${port}`, join(dir, 'kafka.log'));
    this.config = join(dir, 'server.properties');
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  static async create(dir: string): Promise<PrivateKafka> {
    mkdirSync(dir, { recursive: true });
    const kafka = new PrivateKafka(dir, await freePort(), await freePort());
    // Its own settings (not the shared broker's template, which carries that broker's listeners).
    writeFileSync(
      kafka.config,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@127.0.0.1:${kafka.controllerPort}`,
        'controller.listener.names=CONTROLLER',
        `listeners=PLAINTEXT://127.0.0.1:${kafka.port},CONTROLLER://127.0.0.1:${kafka.controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${kafka.port}`,
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
        `log.dirs=${join(dir, 'data')}`,
        'auto.create.topics.enable=false',
        'num.partitions=4',
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=4',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'share.coordinator.state.topic.replication.factor=1',
        'share.coordinator.state.topic.min.isr=1',
        'group.initial.rebalance.delay.ms=0',
        'num.network.threads=2',
        'num.io.threads=2',
        '',
      ].join('\n'),
    );
    const format = spawnSync('java', [...kafka.javaOpts(), '-cp', `${kafkaLibs()}/*`, 'kafka.tools.StorageTool', 'format', '-t', 'c2x1dWNlLXByaXZhdGUtMQ', '-c', kafka.config], { encoding: 'utf8' });
    if (format.status !== 0) throw new Error(`formatting the private broker's storage failed: ${format.stderr || format.stdout}`);
    return kafka;
  }

  private javaOpts(): string[] {
    return ['-Xms128m', '-Xmx512m', '-XX:+UseG1GC', '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${join(repoRoot, 'hack', 'kafka', 'log4j2.properties')}`];
  }

  /** Starts the broker and resolves once it answers metadata requests; returns how long that took (ms). */
  start(timeoutMs = 120_000): Promise<number> {
    const from = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    // The controller answers metadata before the broker is unfenced (a topic created then is refused): wait for both.
    return this.launch('java', [...this.javaOpts(), '-cp', `${kafkaLibs()}/*`, 'kafka.Kafka', this.config], async () => this.started(from) && (await this.answers()), timeoutMs);
  }

  /** Whether the broker logged its start since byte `from` of its log. */
  private started(from: number): boolean {
    return existsSync(this.logFile) && readFileSync(this.logFile).subarray(from).includes('Kafka Server started');
  }

  private async answers(): Promise<boolean> {
    const admin = new Kafka({ clientId: 'private-ready', brokers: this.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 1_000, requestTimeout: 3_000, retry: { retries: 0 } }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      await admin.listTopics();
      return cluster.brokers.length > 0;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    await this.kill();
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The shared control plane's files (hack/kube.sh), which a private API server reuses: certificates, tokens. */
function sharedKubeDir(kubeconfig: string): string {
  return dirname(kubeconfig);
}

/**
 * A kube-apiserver of the test's own on the shared etcd, under a key prefix
 * nobody else uses, so killing it disturbs no other test. It reuses the shared
 * control plane's certificates and token file: the same admin token works.
 */
export class PrivateApiServer extends PrivateProcess {
  readonly kubeconfig: string;
  readonly prefix: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly binDir: string,
    private readonly sharedDir: string,
    private readonly etcd: string,
  ) {
    super(`private kube-apiserver on ${port}`, join(dir, 'kube-apiserver.log'));
    this.kubeconfig = join(dir, 'kubeconfig');
    this.prefix = `/sluice-private-${port}-${Date.now().toString(36)}`;
  }

  static async create(dir: string, shared: { kubeconfig: string; binDir: string }, etcd = 'http://127.0.0.1:32379'): Promise<PrivateApiServer> {
    mkdirSync(dir, { recursive: true });
    const server = new PrivateApiServer(dir, await freePort(), shared.binDir, sharedKubeDir(shared.kubeconfig), etcd);
    const sharedConfig = readFileSync(shared.kubeconfig, 'utf8');
    writeFileSync(server.kubeconfig, sharedConfig.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${server.port}`));
    return server;
  }

  start(timeoutMs = 120_000): Promise<number> {
    const pki = join(this.sharedDir, 'pki');
    const token = readFileSync(join(pki, 'admin.token'), 'utf8').trim();
    const ca = readFileSync(join(pki, 'ca.crt'));
    return this.launch(
      join(this.binDir, 'kube-apiserver'),
      [
        '--etcd-servers', this.etcd, '--etcd-prefix', this.prefix,
        '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', String(this.port),
        '--tls-cert-file', join(pki, 'apiserver.crt'), '--tls-private-key-file', join(pki, 'apiserver.key'), '--client-ca-file', join(pki, 'ca.crt'),
        '--token-auth-file', join(pki, 'tokens.csv'), '--authorization-mode', 'RBAC',
        '--service-cluster-ip-range', '10.97.0.0/16', '--allow-privileged=true',
        '--service-account-issuer', 'https://kubernetes.default.svc', '--service-account-key-file', join(pki, 'sa.pub'),
        '--service-account-signing-key-file', join(pki, 'sa.key'), '--cert-dir', join(this.dir, 'certs'),
        // Its own endpoint reconciler lease must not fight the shared server's.
        '--endpoint-reconciler-type', 'none',
      ],
      () => readyz(this.port, token, ca),
      timeoutMs,
    );
  }

  /** Stops it and deletes its keys from the shared etcd. */
  async remove(): Promise<void> {
    await this.kill();
    const key = Buffer.from(`${this.prefix}/`).toString('base64');
    const end = Buffer.from(`${this.prefix}0`).toString('base64');
    await fetch(`${this.etcd}/v3/kv/deleterange`, { method: 'POST', body: JSON.stringify({ key, range_end: end }) }).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function readyz(port: number, token: string, ca: Buffer): Promise<boolean> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', ca, headers: { authorization: `Bearer ${token}` }, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
