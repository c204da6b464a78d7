import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { resolveWorkerConfig, type WorkerConfig } from '../../workers/config.js';
import { isAlive, listRunStates, type RunState } from '../local/run-state.js';
import { recentProblem } from '../local/worker-log.js';
import { rollUp, withMetrics, type JobView, type RateTracker, type WorkerView } from './model.js';

/** Problems logged in the last minute count as a worker's "last error". */
const RECENT_MS = 60_000;

async function scrape(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1_500) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

function renderedConfig(state: RunState): WorkerConfig | undefined {
  const file = state.workers[0]?.configFile;
  if (!file) return undefined;
  try {
    // Through the worker's own contract, so the defaults it applied are seen here too.
    return resolveWorkerConfig(parse(readFileSync(file, 'utf8')), {}, { source: file });
  } catch {
    return undefined;
  }
}

async function workerView(state: RunState, w: RunState['workers'][number], rates: RateTracker, now: number): Promise<WorkerView> {
  const alive = w.pid > 0 && isAlive(w.pid);
  const text = alive ? await scrape(w.metricsPort) : undefined;
  const base: WorkerView = {
    id: String(w.index),
    pid: alive ? w.pid : undefined,
    metricsPort: w.metricsPort,
    state: state.failed ? 'failed' : alive ? (w.status ?? 'starting') : (w.status === 'failed' ? 'failed' : 'restarting'),
    restarts: w.restarts ?? 0,
    stalls: [],
    partitions: [],
    reachable: text !== undefined,
    lastError: w.lastExit && w.status !== 'ready' ? w.lastExit.reason : recentProblem(w.logFile, now - RECENT_MS),
  };
  return withMetrics(base, text, { rates, rateKey: `${state.job}/${w.index}/${w.pid}`, owner: `worker ${w.index}`, now });
}

/** Every job `sluice run` recorded in `stateDir`, with what its workers' /metrics say now. */
export async function collectLocal(stateDir: string, rates: RateTracker, now = Date.now()): Promise<JobView[]> {
  const states = listRunStates(stateDir).sort((a, b) => a.job.localeCompare(b.job));
  return Promise.all(
    states.map(async (state) => {
      const workers = await Promise.all(state.workers.map((w) => workerView(state, w, rates, now)));
      const config = renderedConfig(state);
      const supervisorAlive = isAlive(state.supervisorPid);
      const jobState = state.failed ? 'failed' : !supervisorAlive ? 'stopped' : workers.some((w) => w.state === 'stalled') ? 'stalled' : 'running';
      return rollUp({
        name: state.job,
        type: state.type,
        source: 'local',
        state: jobState,
        ready: workers.filter((w) => w.state === 'ready' || w.state === 'stalled').length,
        workers,
        conditions: [],
        lastError: state.failed?.reason,
        detail: state.file,
        redis: config ? { host: config.redis.host, port: config.redis.port, keyPrefix: config.redis.keyPrefix ?? '', db: config.redis.db } : undefined,
        deadLetterTopic: config?.kafka.deadLetterTopic,
        kafka: config ? { brokers: config.kafka.bootstrapServers, topic: config.kafka.topic } : undefined,
      });
    }),
  );
}
