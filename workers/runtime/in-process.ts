/**
 * The same jobs without Kafka or Redis: events from an in-process source (the
 * generator), results into a MemoryStore. This is what `sluice demo` runs.
 */
import { randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { JobType, WorkerConfig } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../events/types.js';
import type { ScoreModel } from './job.js';
import { AlertDispatcher, type Mailer } from '../jobs/cart/alerts.js';
import { buildJob, DEFAULT_CART_SETTINGS, loadModel } from '../jobs/registry.js';
import { MemoryStore } from './memory-store.js';
import { WorkerMetrics } from './metrics.js';

export interface InProcessOptions {
  type: JobType;
  /** Events in event-time order, e.g. an EventGenerator. */
  source: Iterable<UserEvent>;
  store?: MemoryStore;
  /** A model object, or a path; default: the bundled model of the type. */
  model?: ScoreModel | string;
  cart?: WorkerConfig['cart'];
  /** Events per model call. */
  batchSize?: number;
  /** Caps the pace (events per second of wall time); default: as fast as possible. */
  ratePerSecond?: number;
  /** Alert emails; default none (alerts are only recorded in the store). */
  mailer?: { mailer: Mailer; from: string; to: string[] };
  logger?: Logger;
  /** At the end of the source, move event time past every open cart so their timers fire (default true). */
  flushTimersAtEnd?: boolean;
}

export interface InProcessRun {
  store: MemoryStore;
  metrics: WorkerMetrics;
  /** Resolves when the source is exhausted (or stop() was called), with the number of events processed. */
  done: Promise<{ events: number }>;
  stop(): Promise<void>;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runJobInProcess(o: InProcessOptions): Promise<InProcessRun> {
  const logger = o.logger ?? pino({ level: 'silent' });
  const model = typeof o.model === 'object' ? o.model : await loadModel(o.type, o.model);
  const cart = o.cart ?? DEFAULT_CART_SETTINGS;
  const job = buildJob(o.type, model, cart);
  const store = o.store ?? new MemoryStore();
  const metrics = new WorkerMetrics({ job: `demo-${o.type}`, type: o.type }, false);
  const alerts = new AlertDispatcher(store, o.mailer?.mailer, o.mailer, `demo:${randomUUID()}`, metrics, logger);
  const batchSize = o.batchSize ?? 500;
  let stopped = false;

  const loop = async (): Promise<{ events: number }> => {
    const state = job.newState();
    const it = o.source[Symbol.iterator]();
    const started = Date.now();
    let total = 0;
    let finished = false;
    while (!stopped && !finished) {
      const batch: UserEvent[] = [];
      while (batch.length < batchSize) {
        const next = it.next();
        if (next.done) {
          finished = true;
          break;
        }
        batch.push(next.value);
      }
      const outputs = await job.process(state, batch);
      await store.writeUsers(outputs.writes);
      await alerts.dispatch(outputs.alerts);
      metrics.eventsIn.inc(batch.length);
      if (outputs.scoredRows) metrics.inference.observe(outputs.inferenceMs / 1000);
      total += batch.length;
      store.countEvents(batch.length);
      if (o.ratePerSecond) {
        const due = started + (total * 1000) / o.ratePerSecond;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        else await tick();
      } else {
        await tick();
      }
    }
    if (finished && !stopped && o.type === 'cart' && o.flushTimersAtEnd !== false) {
      const end = job.watermark(state) + cart.abandonWindowMinutes * 60_000;
      const outputs = await job.advanceTo(state, end);
      await store.writeUsers(outputs.writes);
      await alerts.dispatch(outputs.alerts);
    }
    return { events: total };
  };

  const done = loop();
  return {
    store,
    metrics,
    done,
    stop: async () => {
      stopped = true;
      await done.catch(() => undefined);
    },
  };
}
