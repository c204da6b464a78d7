/**
 * A job without Kafka or Redis: events from an in-process source (the
 * generator), results into a MemoryStore, through the same processing stage
 * and delivery as the Kafka worker. This is what `sluice demo` runs.
 */
import { randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../events/types.js';
import { Delivery } from './delivery.js';
import { createJob, type JobDefinition, type ScoreModel } from './job.js';
import { MemoryStore } from './memory-store.js';
import { WorkerMetrics } from './metrics.js';
import { Processor } from './processing.js';

export interface InProcessOptions {
  /** The job type (from workers/jobs/registry.ts). */
  definition: JobDefinition;
  /** Its resolved configuration (workers/config.ts); only the job's own sections and `model` matter here. */
  config: WorkerConfig;
  /** Events in event-time order, e.g. an EventGenerator. */
  source: Iterable<UserEvent>;
  store?: MemoryStore;
  /** A model object; default: the job type loads its own (config.model.path, or the bundled model). */
  model?: ScoreModel;
  /** Events per model call. */
  batchSize?: number;
  /** Caps the pace (events per second of wall time); default: as fast as possible. */
  ratePerSecond?: number;
  logger?: Logger;
  /** At the end of the source, move event time to where everything the state holds open has fired (default true). */
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

function nextBatch(it: Iterator<UserEvent>, size: number): { batch: UserEvent[]; finished: boolean } {
  const batch: UserEvent[] = [];
  while (batch.length < size) {
    const next = it.next();
    if (next.done) return { batch, finished: true };
    batch.push(next.value);
  }
  return { batch, finished: false };
}

export async function runJobInProcess(o: InProcessOptions): Promise<InProcessRun> {
  const logger = o.logger ?? pino({ level: 'silent' });
  const type = o.config.job.type;
  const model = o.model ?? (await o.definition.loadModel(o.config.model.path));
  const store = o.store ?? new MemoryStore();
  const metrics = new WorkerMetrics({ job: `demo-${type}`, type }, false);
  const credentials = { kafka: {}, smtp: {} };
  const { job, output } = createJob(o.definition, { config: o.config, model, sink: store, metrics: metrics.registry, logger, credentials, holder: `demo:${randomUUID()}`, state: { backend: 'memory' } });
  const processor = new Processor(job, new Delivery({ sink: store, output, metrics, logger }), metrics);
  const batchSize = o.batchSize ?? 500;
  let stopped = false;

  const pace = async (started: number, total: number): Promise<void> => {
    const wait = o.ratePerSecond ? started + (total * 1000) / o.ratePerSecond - Date.now() : 0;
    await (wait > 0 ? sleep(wait) : tick());
  };

  const loop = async (): Promise<{ events: number }> => {
    const state = job.newState();
    const it = o.source[Symbol.iterator]();
    const started = Date.now();
    let total = 0;
    let finished = false;
    while (!stopped && !finished) {
      const next = nextBatch(it, batchSize);
      finished = next.finished;
      await processor.process(state, next.batch);
      total += next.batch.length;
      store.countEvents(next.batch.length);
      await pace(started, total);
    }
    const settled = job.settledAt?.(state);
    if (finished && !stopped && o.flushTimersAtEnd !== false && settled !== undefined) await processor.advance(state, settled);
    output?.close?.();
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
