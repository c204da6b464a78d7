import { Command } from 'commander';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { toWire } from '../../workers/events/wire.js';
import { createTopic, RecordProducer, type OutgoingRecord } from '../../lib/kafka/client.js';
import { CliError } from '../errors.js';
import { brokerList, duration, nonNegativeNumber, positiveInt } from '../options.js';
import { formatCount, Progress } from '../progress.js';

export interface ProduceOptions {
  brokers: string[];
  topic: string;
  rate: number;
  count?: number;
  duration?: number;
  seed: number;
  users: number;
  days: number;
  start?: string;
  partitions: number;
}

const TICK_MS = 50;
const MAX_BATCH = 5_000;

/** Defaults come from the same variables as the workers' (KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC). */
export function produceCommand(env: NodeJS.ProcessEnv = process.env): Command {
  return new Command('produce')
    .summary('Write generated user events into Kafka at a chosen rate')
    .description(
      'Write events of the shop simulator (the one the bundled models were trained on) into a Kafka topic,\n' +
        'keyed by user id, at --rate events/s, until --count events or --duration have passed (or Ctrl-C).\n' +
        'Creates the topic with --partitions partitions if it does not exist.',
    )
    .option('--brokers <host:port,...>', 'Kafka bootstrap servers (default: env KAFKA_BOOTSTRAP_SERVERS, else localhost:9092)', brokerList('--brokers'))
    .option('--topic <name>', 'topic (env KAFKA_TOPIC)', env.KAFKA_TOPIC ?? 'user_events')
    .option('--rate <events/s>', 'events per second; 0 = as fast as possible', nonNegativeNumber('--rate'), 1000)
    .option('--count <n>', 'stop after this many events', positiveInt('--count'))
    .option('--duration <duration>', 'stop after this long (30s, 5m, 1h)', duration('--duration'))
    .option('--seed <n>', 'generator seed: the same seed gives the same events', positiveInt('--seed'), 42)
    .option('--users <n>', 'number of simulated users', positiveInt('--users'), 1000)
    .option('--days <n>', 'simulated period in days (event time)', positiveInt('--days'), 30)
    .option('--start <iso-date>', 'event time of the first simulated day (default 2026-01-01)')
    .option('--partitions <n>', 'partitions of the topic if it has to be created', positiveInt('--partitions'), 6)
    .action(async (options: Omit<ProduceOptions, 'brokers'> & { brokers?: string[] }) => {
      let brokers = options.brokers;
      if (!brokers) {
        try {
          brokers = brokerList('KAFKA_BOOTSTRAP_SERVERS')(env.KAFKA_BOOTSTRAP_SERVERS ?? 'localhost:9092');
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      }
      await produce({ ...options, brokers });
    });
}

export async function produce(options: ProduceOptions, progress = new Progress()): Promise<number> {
  let start: number | undefined;
  if (options.start !== undefined) {
    start = Date.parse(options.start);
    if (Number.isNaN(start)) throw new CliError(`--start must be an ISO-8601 date such as 2026-01-01, got '${options.start}'`);
  }
  const connection = { brokers: options.brokers, clientId: 'sluice-produce', connectionTimeoutMs: 5_000 };
  const where = `${options.brokers.join(',')}/${options.topic}`;
  try {
    await createTopic(connection, options.topic, options.partitions);
  } catch (err) {
    throw new CliError(`cannot reach Kafka at ${options.brokers.join(',')} to create topic '${options.topic}': ${(err as Error).message}`);
  }
  const producer = await RecordProducer.connect(connection);
  const events = endless({ seed: options.seed, users: options.users, days: options.days, start });
  const limit = options.count ?? Infinity;
  const deadline = options.duration !== undefined ? Date.now() + options.duration * 1000 : Infinity;
  let stopRequested = false;
  const onSignal = (): void => void (stopRequested = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const began = Date.now();
  let sent = 0;
  try {
    while (!stopRequested && sent < limit && Date.now() < deadline) {
      const elapsed = (Date.now() - began) / 1000;
      const due = options.rate > 0 ? Math.floor(options.rate * elapsed) + 1 : sent + MAX_BATCH;
      const n = Math.min(due - sent, limit - sent, MAX_BATCH);
      if (n > 0) {
        const batch: OutgoingRecord[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const e = events.next().value as UserEvent;
          batch[i] = { key: e.userId, value: toWire(e) };
        }
        await producer.send(options.topic, batch);
        sent += n;
      } else {
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
      const secs = (Date.now() - began) / 1000;
      const of = Number.isFinite(limit) ? `/${formatCount(limit)}` : '';
      progress.update(`produced ${formatCount(sent)}${of} events to ${where} (${formatCount(sent / Math.max(secs, 0.001))}/s)`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await producer.disconnect();
  }
  const secs = (Date.now() - began) / 1000;
  progress.done(`produced ${formatCount(sent)} events to ${where} in ${secs.toFixed(1)}s (${formatCount(sent / Math.max(secs, 0.001))}/s)`);
  return sent;
}

/**
 * The simulator covers a finite period; for a producer that runs until told to
 * stop, each period is followed by the next one (same users, next seed).
 */
function* endless(o: { seed: number; users: number; days: number; start?: number }): Generator<UserEvent> {
  let start = o.start;
  for (let period = 0; ; period++) {
    const gen = new EventGenerator({ seed: o.seed + period, users: o.users, days: o.days, start });
    yield* gen;
    start = gen.end;
  }
}
