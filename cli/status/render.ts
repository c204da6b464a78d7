import { jobTypes } from '../../workers/jobs/registry.js';
import { notableConditions } from './cluster.js';
import type { JobView, WorkerView } from './model.js';

const num = (n: number | undefined, digits = 0): string =>
  n === undefined ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function ago(iso: string | undefined, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function table(rows: string[][], indent = ''): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

function partitions(w: WorkerView): string {
  if (w.partitions.length === 0) return '-';
  return w.partitions
    .map((p) => `${p.partition}${p.lag !== undefined || p.checkpointAgeSeconds !== undefined ? `(lag ${num(p.lag)}${p.checkpointAgeSeconds !== undefined ? `, ckpt ${p.checkpointAgeSeconds}s` : ''})` : ''}`)
    .join(' ');
}

function jobName(j: JobView): string {
  return j.namespace ? `${j.namespace}/${j.name}` : j.name;
}

/** The terminal view of `sluice status`: one line per job, its workers below, then what is wrong. */
export function renderStatus(jobs: JobView[], now: number): string {
  if (jobs.length === 0) return '';
  const lines: string[] = [];
  const header = ['JOB', 'TYPE', 'STATE', 'READY', 'EVENTS/S', 'LAG', 'CHECKPOINT', 'DLQ', 'ALERTS', jobs[0]!.source === 'local' ? 'FILE' : 'TOPIC'];
  const jobRows = jobs.map((j) => [
    jobName(j), j.type, j.state, `${j.ready}/${j.source === 'local' ? j.workers.length : Math.max(j.workers.length, j.ready)}`,
    num(j.eventsPerSecond), num(j.lag), ago(j.lastCheckpoint, now), num(j.deadLetters), jobTypes.find(j.type)?.results?.alerts ? num(j.alerts) : '-', j.detail ?? '',
  ]);
  const rendered = table([header, ...jobRows]);
  lines.push(rendered[0]!);
  jobs.forEach((j, i) => {
    lines.push(rendered[i + 1]!);
    if (j.workers.length > 0) {
      const wh = ['WORKER', ...(j.source === 'local' ? ['PID', 'PORT'] : []), 'STATE', 'RESTARTS', 'EVENTS/S', 'LAG', 'PARTITIONS'];
      const wr = j.workers.map((w) => [
        w.id, ...(j.source === 'local' ? [w.pid ? String(w.pid) : '-', String(w.metricsPort ?? '-')] : []), w.state, String(w.restarts),
        num(w.eventsPerSecond), num(w.lag), partitions(w),
      ]);
      lines.push(...table([wh, ...wr], '    '));
    }
    for (const s of j.stalls) lines.push(`    waiting: worker ${s.worker} is stalled on ${s.on} (${s.reason})`);
    for (const c of notableConditions(j.conditions)) lines.push(`    condition ${c.type}=${c.status} ${c.reason}: ${c.message}`);
    if (j.lastError && j.source === 'local') lines.push(`    last problem: ${j.lastError}`);
    for (const w of j.workers) if (w.lastError && w.lastError !== j.lastError) lines.push(`    worker ${w.id}: ${w.lastError}`);
  });
  return lines.join('\n') + '\n';
}
