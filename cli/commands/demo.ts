import { Command, Option } from 'commander';
import { EventGenerator } from '../../workers/events/generator.js';
import type { UserEvent } from '../../workers/events/types.js';
import { runInProcess } from '../../workers/in-process.js';
import { storedAlerts } from '../../workers/jobs/cart/alerts.js';
import { riskiestUsers } from '../../workers/jobs/churn/index.js';
import { MemoryStore, type InProcessRun } from '../../workers/runtime/index.js';
import { duration, nonNegativeNumber, positiveInt } from '../options.js';
import { formatCount } from '../progress.js';

export interface DemoOptions {
  duration?: number;
  users: number;
  seed: number;
  rate: number;
  top: number;
  interval?: number;
}

export function demoCommand(): Command {
  return new Command('demo')
    .summary('The embedded default: score generated events in-process (no Kafka, Redis or cluster)')
    .description(
      'Run the churn and cart jobs on events from the built-in shop simulator, in this process, with an\n' +
        'in-memory store instead of Kafka and Redis. Shows the throughput, the riskiest users and the latest\n' +
        'cart alerts, live on a terminal and as plain periodic lines otherwise. Runs until --duration or Ctrl-C.',
    )
    .option('--duration <duration>', 'stop after this long (30s, 5m); default: until Ctrl-C', duration('--duration'))
    .option('--users <n>', 'simulated users', positiveInt('--users'), 2000)
    .option('--seed <n>', 'simulator seed', positiveInt('--seed'), 42)
    .option('--rate <events/s>', 'cap on events per second per job; 0 = as fast as possible', nonNegativeNumber('--rate'), 0)
    .option('--top <n>', 'how many riskiest users to show', positiveInt('--top'), 10)
    .addOption(
      new Option('--interval <duration>', 'time between updates (default 1s on a terminal, 5s otherwise)').argParser(
        duration('--interval'),
      ),
    )
    .action(async (options: DemoOptions) => {
      await demo(options, process.stdout);
    });
}

/** The simulator covers a finite period; the demo runs on through consecutive periods. */
function* endless(seed: number, users: number): Generator<UserEvent> {
  let start: number | undefined;
  for (let period = 0; ; period++) {
    const gen = new EventGenerator({ seed: seed + period, users, start });
    yield* gen;
    start = gen.end;
  }
}

interface DemoRuns {
  churn: InProcessRun;
  cart: InProcessRun;
  started: number;
}

export async function demo(options: DemoOptions, out: NodeJS.WritableStream & { isTTY?: boolean }): Promise<void> {
  const tty = out.isTTY === true;
  const rate = options.rate > 0 ? options.rate : undefined;
  out.write(`sluice demo: churn and cart jobs on ${formatCount(options.users)} simulated users (seed ${options.seed}), no Kafka or Redis\n`);
  const [churn, cart] = await Promise.all([
    runInProcess({ type: 'churn', source: endless(options.seed, options.users), store: new MemoryStore(), ratePerSecond: rate }),
    runInProcess({ type: 'cart', source: endless(options.seed, options.users), store: new MemoryStore(), ratePerSecond: rate }),
  ]);
  const runs: DemoRuns = { churn, cart, started: Date.now() };
  const everyMs = (options.interval ?? (tty ? 1 : 5)) * 1000;

  await new Promise<void>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const finish = (): void => {
      for (const t of timers) clearTimeout(t);
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      resolve();
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    if (options.duration !== undefined) timers.push(setTimeout(finish, options.duration * 1000));
    const draw = (): void => {
      out.write(tty ? `\x1b[H\x1b[2J${screen(runs, options.top)}` : `${summaryLine(runs, Math.min(options.top, 5))}\n`);
      timers.push(setTimeout(draw, everyMs));
    };
    timers.push(setTimeout(draw, Math.min(everyMs, 1_000)));
  });
  await Promise.all([churn.stop(), cart.stop()]);
  out.write(`\n${screen(runs, options.top)}`);
}

const elapsedSeconds = (runs: DemoRuns): number => (Date.now() - runs.started) / 1000;

function summaryLine(runs: DemoRuns, top: number): string {
  const { churn, cart } = runs;
  const riskiest = riskiestUsers(churn.store, top)
    .map((r) => `${r.userId} ${r.score.toFixed(3)} ${r.riskLevel}`)
    .join(', ');
  return (
    `[${elapsedSeconds(runs).toFixed(0)}s] churn ${formatCount(churn.store.eventsProcessed)} events ` +
    `(${formatCount(churn.store.throughput())}/s), ${formatCount(churn.store.users.size)} users scored; ` +
    `cart ${formatCount(cart.store.eventsProcessed)} events (${formatCount(cart.store.throughput())}/s), ` +
    `${formatCount(storedAlerts(cart.store).length)} abandoned carts alerted; riskiest users: ${riskiest || '(none scored yet)'}`
  );
}

function screen(runs: DemoRuns, top: number): string {
  const { churn, cart } = runs;
  const lines = [
    `sluice demo — ${elapsedSeconds(runs).toFixed(0)}s (Ctrl-C to stop)`,
    '',
    `churn  ${formatCount(churn.store.eventsProcessed).padStart(12)} events  ${formatCount(churn.store.throughput()).padStart(9)}/s  ${formatCount(churn.store.users.size)} users scored`,
    `cart   ${formatCount(cart.store.eventsProcessed).padStart(12)} events  ${formatCount(cart.store.throughput()).padStart(9)}/s  ${formatCount(storedAlerts(cart.store).length)} abandoned carts alerted`,
    '',
    `riskiest users (churn score)`,
    `  ${'user'.padEnd(14)} ${'score'.padStart(6)}  ${'risk'.padEnd(7)} updated (event time)`,
  ];
  for (const r of riskiestUsers(churn.store, top)) {
    lines.push(`  ${r.userId.padEnd(14)} ${r.score.toFixed(3).padStart(6)}  ${r.riskLevel.padEnd(7)} ${r.updatedAt}`);
  }
  if (churn.store.users.size === 0) lines.push('  (none scored yet)');
  lines.push('', 'latest cart alerts');
  const alerts = storedAlerts(cart.store, 5);
  for (const a of alerts) {
    lines.push(
      `  ${a.cartId.padEnd(18)} user ${a.userId.padEnd(10)} p=${a.score.toFixed(3)}  ${a.items} items, ${a.value.toFixed(2)}  ` +
        `abandoned ${new Date(a.abandonedAt).toISOString()}`,
    );
  }
  if (alerts.length === 0) lines.push('  (none yet)');
  return lines.join('\n') + '\n';
}
