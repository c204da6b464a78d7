import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jobTypes } from '../../workers/jobs/registry.js';
import type { ResultsView } from '../../workers/runtime/job.js';
import { RateTracker, type JobView } from '../status/model.js';
import { Extras, type JobExtras } from './extras.js';
import { dashboardPage } from './page.js';

export interface DashboardOptions {
  host: string;
  port: number;
  /** Where the jobs come from (local run state or a cluster): the same collectors as `sluice status`. */
  collect: (rates: RateTracker) => Promise<JobView[]>;
  describe: string;
  intervalMs: number;
  /** Redis and dead-letter views (local jobs). */
  extras: boolean;
}

export interface Point {
  t: number;
  eventsPerSecond?: number;
  lag?: number;
}

export interface DashboardState {
  at: string;
  source: string;
  intervalMs: number;
  error?: string;
  jobs: Array<JobView & { history: Point[]; results?: ShownResults; extras?: JobExtras }>;
}

const HISTORY = 180;

/** What the page needs of a job type's results view to lay out its card (its words, and whether it has alerts). */
export type ShownResults = Pick<ResultsView, 'scoreName' | 'topHeading' | 'alerts'>;

function shownResults(type: string): ShownResults | undefined {
  const r = jobTypes.find(type)?.results;
  return r && { scoreName: r.scoreName, topHeading: r.topHeading, alerts: r.alerts };
}

export interface RunningDashboard {
  url: string;
  close(): Promise<void>;
}

/**
 * The successor of the Flink Web UI: one page served on loopback, which polls
 * `/api/state`; this process samples the jobs every interval (the same
 * collectors as `sluice status`) and keeps a few minutes of history for the
 * charts. No front-end build: the page is one HTML document with inline
 * script and SVG charts.
 */
export async function startDashboard(o: DashboardOptions): Promise<RunningDashboard> {
  const rates = new RateTracker();
  const history = new Map<string, Point[]>();
  const extras = o.extras ? new Extras() : undefined;
  let state: DashboardState = { at: new Date().toISOString(), source: o.describe, intervalMs: o.intervalMs, jobs: [] };
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const sample = async (): Promise<void> => {
    try {
      const jobs = await o.collect(rates);
      const now = Date.now();
      const out: DashboardState['jobs'] = [];
      for (const job of jobs) {
        const key = `${job.namespace ?? ''}/${job.name}`;
        const points = history.get(key) ?? [];
        points.push({ t: now, eventsPerSecond: job.eventsPerSecond, lag: job.lag });
        if (points.length > HISTORY) points.splice(0, points.length - HISTORY);
        history.set(key, points);
        out.push({ ...job, history: points, results: shownResults(job.type), extras: extras ? await extras.of(job) : undefined });
      }
      state = { at: new Date(now).toISOString(), source: o.describe, intervalMs: o.intervalMs, jobs: out };
    } catch (err) {
      state = { ...state, at: new Date().toISOString(), error: (err as Error).message };
    }
  };
  const loop = async (): Promise<void> => {
    await sample();
    if (!closed) timer = setTimeout(() => void loop(), o.intervalMs);
  };

  const page = dashboardPage();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page);
    } else if (path === '/api/state') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(state));
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: the dashboard is at /\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${o.host}:${o.port}: ${err.message} (pick another with --port)`)));
    server.listen(o.port, o.host, () => resolve());
  });
  await loop();
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}/`,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await extras?.close();
    },
  };
}
