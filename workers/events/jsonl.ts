import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Writable } from 'node:stream';
import { Command, InvalidArgumentError } from 'commander';
import { EventGenerator, type GeneratorOptions } from './generator.js';
import { toWire } from './wire.js';

/**
 * Writes generated events as JSON lines (the topic's wire format, one event a
 * line), respecting the stream's backpressure. Returns the number written.
 * To put events on Kafka at a chosen rate, use `sluice produce`.
 */
export async function writeJsonLines(o: GeneratorOptions, out: Writable, limit = Infinity): Promise<number> {
  let n = 0;
  let chunk = '';
  for (const e of new EventGenerator(o)) {
    if (n >= limit) break;
    chunk += toWire(e) + '\n';
    n++;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  if (chunk.length > 0 && !out.write(chunk)) await once(out, 'drain');
  return n;
}

function positive(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

// `npx tsx workers/events/jsonl.ts --users 1000 --days 7 > events.jsonl`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const o = new Command('jsonl')
    .description('write simulated shop events as JSON lines (the user_events wire format)')
    .option('--seed <n>', 'generator seed', positive('--seed'), 42)
    .option('--users <n>', 'simulated users', positive('--users'), 1000)
    .option('--days <n>', 'simulated days', positive('--days'), 30)
    .option('--count <n>', 'stop after this many events', positive('--count'))
    .option('--out <file>', 'output file (default: stdout)')
    .parse()
    .opts<{ seed: number; users: number; days: number; count?: number; out?: string }>();
  const out = o.out ? createWriteStream(o.out) : process.stdout;
  const n = await writeJsonLines({ seed: o.seed, users: o.users, days: o.days }, out, o.count);
  if (o.out) out.end();
  process.stderr.write(`${n} events\n`);
}
