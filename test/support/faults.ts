/**
 * For the fault tests (test/integration/fault-*.test.ts): worker processes
 * kept running the way a Deployment keeps its pods (restarted when they exit),
 * a producer that keeps trying through a broker outage, and the comparison of
 * a disturbed run's Redis state with an undisturbed run over the same events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { latestManifest } from '../../workers/state/checkpoints.js';
import { join } from 'node:path';
import type { UserEvent } from '../../workers/events/types.js';
import { toWire } from '../../workers/events/wire.js';
import { RecordProducer, topicEndOffsets, type KafkaConnectionOptions } from '../../lib/kafka/client.js';
import { repoRoot } from './infra.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One `sluice worker` process restarted when it exits by itself (after 1 s),
 * as a pod's container is. kill() is a SIGKILL; the replacement starts at once.
 */
export class SupervisedWorker {
  private child: ChildProcess | undefined;
  private stopping = false;
  /** Exits the worker took by itself (not the test's kills). */
  exitsByItself = 0;
  kills = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly configFile: string,
    readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  start(): void {
    const log = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'workers', 'bin.ts'), 'worker', '--config', this.configFile, '--metrics-host', '127.0.0.1'], {
      cwd: repoRoot,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.child = child;
    child.once('exit', () => {
      if (this.stopping || this.child !== child || (child as { killedByTest?: boolean }).killedByTest) return;
      this.exitsByItself += 1;
      this.timer = setTimeout(() => this.start(), 1_000);
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** SIGKILL now, then a new process at once. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      (child as { killedByTest?: boolean }).killedByTest = true;
      const gone = new Promise((r) => child.once('exit', r));
      process.kill(child.pid!, 'SIGKILL');
      await gone;
    }
    this.kills += 1;
    this.start();
  }

  /** Whether this process logged "worker started" (its signal handlers are in place). */
  started(): boolean {
    const pid = this.child?.pid;
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .some((l) => l.includes(`"pid":${pid},`) && l.includes('"msg":"worker started"'));
  }

  /** SIGTERM (final checkpoint) and wait; returns the exit code. */
  async stop(): Promise<number | null> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const code = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    child.kill('SIGTERM');
    return code;
  }

  /** SIGKILL without a replacement (clean-up after a failed test). */
  async destroy(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  }
}

/**
 * Produces the events keyed by user in chunks, `pauseMs` apart, retrying a
 * chunk until the broker takes it (a chunk whose acknowledgement was lost may
 * land twice: the topic is what the reference run reads too).
 */
export async function produceThrough(
  connection: KafkaConnectionOptions,
  topic: string,
  events: readonly UserEvent[],
  o: { chunk: number; pauseMs: number; onProgress?: (sent: number) => void | Promise<void> },
): Promise<{ sent: number; retries: number }> {
  const sender = new PersistentSender(connection);
  let sent = 0;
  try {
    for (let i = 0; i < events.length; i += o.chunk) {
      const records = events.slice(i, i + o.chunk).map((e) => ({ key: e.userId, value: toWire(e) }));
      await sender.send(topic, records);
      sent += records.length;
      await o.onProgress?.(sent);
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  } finally {
    await sender.close();
  }
  return { sent, retries: sender.retries };
}

/** A producer that sends a chunk again (on a new connection) until the broker takes it, for at most 120 s. */
class PersistentSender {
  retries = 0;
  private producer: RecordProducer | undefined;

  constructor(private readonly connection: KafkaConnectionOptions) {}

  async send(topic: string, records: Array<{ key: string; value: string }>): Promise<void> {
    const giveUpAt = Date.now() + 120_000;
    for (;;) {
      try {
        this.producer ??= await RecordProducer.connect(this.connection);
        await this.producer.send(topic, records);
        return;
      } catch (err) {
        if (Date.now() > giveUpAt) throw new Error(`the broker took no records for 120 s: ${(err as Error).message}`);
        this.retries += 1;
        await this.close();
        await sleep(500);
      }
    }
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }
}

/** The next offset of each partition's checkpoint (-1: none yet), from its manifest. */
export function checkpointPositions(dir: string, group: string, topic: string, partitions: number): number[] {
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return Array.from({ length: partitions }, (_, p) => latestManifest(join(dir, safe(group), safe(topic), String(p)))?.nextOffset ?? -1);
}

/** Resolves once every partition's checkpoint reached the topic's end; returns how long it took (ms). */
export async function checkpointedToEnd(connection: KafkaConnectionOptions, dir: string, group: string, topic: string, partitions: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const ends = await topicEndOffsets(connection, topic);
  for (;;) {
    const at = checkpointPositions(dir, group, topic, partitions);
    if (at.every((o, p) => o >= (ends.get(p) ?? 0))) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`checkpoints of ${group} at ${JSON.stringify(at)}, not at the end offsets ${JSON.stringify([...ends])}, after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Every hash under `<prefix><pattern>`, keyed by the rest of the key. */
export { readHashes as hashesUnder } from './workers.js';

export const withoutField = (h: Record<string, string>, field: string): Record<string, string> =>
  Object.fromEntries(Object.entries(h).filter(([f]) => f !== field));

/** Keys whose hashes differ between two runs (missing on either side included), a few of them for the message. */
export function differences(a: Map<string, Record<string, string>>, b: Map<string, Record<string, string>>, ignore?: string): string[] {
  const norm = (h: Record<string, string> | undefined): string => JSON.stringify(h && Object.entries(ignore ? withoutField(h, ignore) : h).sort());
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => norm(a.get(k)) !== norm(b.get(k))).slice(0, 5).map((k) => `${k}: ${norm(a.get(k))} vs ${norm(b.get(k))}`);
}
