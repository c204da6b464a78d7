import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { createTopic, deleteTopics } from '../../lib/kafka/client.js';
import { kafka, redis, repoRoot, smtp, uniqueName } from './infra.js';
import { tempDir } from './workers.js';

/** The built CLI (`npm run build` first; `npm test` does it in pretest). */
export const sluiceBin = join(repoRoot, 'bin', 'sluice.js');

export interface CliProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the output matches, rejects when the process exits first or the time is up. */
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, [sluiceBin, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = text.match(pattern);
        if (m) {
          cleanup();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output so far:\n${text}`));
      }, timeoutMs);
      const onExit = (): void => {
        cleanup();
        reject(new Error(`sluice ${args[0]} exited before printing ${pattern}; output:\n${text}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });
  return { child, output: () => text, waitFor, exited };
}

/** Runs the CLI to completion. */
export async function runCliToEnd(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  const p = startCli(args, opts);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, output: p.output() };
}

export { freePorts } from './ports.js';

/**
 * Ends a `sluice run` a test started, even when the test failed half-way: SIGINT
 * (the workers checkpoint and leave), SIGKILL after `graceMs`, then any worker
 * process its run state still names (a supervisor killed hard leaves them behind).
 */
export async function stopLocalRun(run: CliProcess, stateDir: string, graceMs = 15_000): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) {
    run.child.kill('SIGINT');
    const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs);
    await run.exited;
    clearTimeout(timer);
  }
  let files: string[] = [];
  try {
    files = readdirSync(stateDir).filter((f) => f.endsWith('.json'));
  } catch {
    return;
  }
  for (const f of files) {
    let state: { workers?: Array<{ pid?: number }> };
    try {
      state = JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as typeof state;
    } catch {
      continue;
    }
    for (const { pid } of state.workers ?? []) if (pid && isSluiceWorker(pid)) process.kill(pid, 'SIGKILL');
  }
}

function isSluiceWorker(pid: number): boolean {
  try {
    return /sluice\.js\0worker\0/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
  } catch {
    return false;
  }
}

/** What a test that runs both examples locally uses: names, a topic and a key prefix of its own, the shared servers. */
export interface ExamplesRun {
  dir: string;
  topic: string;
  prefix: string;
  churn: string;
  cart: string;
  brokers: string[];
  redis: { host: string; port: number };
  smtp: { host: string; port: number };
  /** A client of the shared Redis, connected before the tests. */
  client: Redis;
  /** Writes examples/churn-job.yaml and cart-job.yaml as shipped (the cart file keeps its Secret) into `into`, renamed, and on `topic` when given. */
  writeExamples(into: string, topic?: string): void;
}

/**
 * Call in a describe block: the topic (2 partitions) is created before its
 * tests; after them (and after the block's own afterAll, which stops its
 * processes) the keys under the prefix and the topic and its dead-letter
 * topic are removed.
 */
export function examplesRun(base: string): ExamplesRun {
  const r = redis();
  const run: ExamplesRun = {
    dir: tempDir(`sluice-${base}-`),
    topic: uniqueName(base),
    prefix: `${uniqueName(base)}:`,
    churn: uniqueName('churn'),
    cart: uniqueName('cart'),
    brokers: kafka().brokers,
    redis: r,
    smtp: smtp(),
    client: new Redis({ host: r.host, port: r.port, lazyConnect: true }),
    writeExamples(into, topic) {
      for (const [file, name] of [['churn-job.yaml', run.churn], ['cart-job.yaml', run.cart]] as const) {
        const docs = parseAllDocuments(readFileSync(join(repoRoot, 'examples', file), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: { kafka: { topic?: string } } });
        for (const d of docs) {
          if (d.kind !== 'ProcessingJob') continue;
          d.metadata.name = name;
          if (topic) d.spec.kafka.topic = topic;
        }
        writeFileSync(join(into, file), docs.map((d) => stringify(d)).join('---\n'));
      }
    },
  };
  beforeAll(async () => {
    await run.client.connect();
    await createTopic({ brokers: run.brokers }, run.topic, 2);
  });
  afterAll(async () => {
    const keys = await run.client.keys(`${run.prefix}*`);
    if (keys.length > 0) await run.client.del(...keys);
    run.client.disconnect();
    await deleteTopics({ brokers: run.brokers }, [run.topic, `${run.topic}.dlq`]).catch(() => undefined);
  });
  return run;
}
