import { LEVELS, parseLogLine, type LogRecord } from './worker-log.js';

/** Fields every line has, shown in the line's head rather than as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'job', 'type', 'v']);

const COLORS: Record<string, string> = { trace: '90', debug: '90', info: '32', warn: '33', error: '31', fatal: '35' };

export interface PrettyOptions {
  color: boolean;
  /** Shown before the message, e.g. `churn/0`. */
  source?: string;
  /** Lines below this pino level are dropped. */
  minLevel?: number;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') return JSON.stringify((v as { message: string }).message);
  return JSON.stringify(v);
}

/** One pino JSON line as `12:00:01.234 WARN  churn/0 message key=value ...`; a line that is not JSON as it is. */
export function prettyLine(line: string, o: PrettyOptions): string | undefined {
  const r: LogRecord | undefined = parseLogLine(line);
  if (!r) return o.source ? `${o.source} ${line}` : line;
  if (o.minLevel !== undefined && (r.level ?? 30) < o.minLevel) return undefined;
  const time = typeof r.time === 'number' ? new Date(r.time).toISOString().slice(11, 23) : '            ';
  const source = o.source ?? [r.job, r.name === 'sluice-worker' ? undefined : r.name].filter(Boolean).join('/');
  const extra = extraFields(r);
  return `${time} ${levelTag(r, o.color)} ${source ? `${source} ` : ''}${r.msg ?? ''}${extra ? ` ${o.color ? `\x1b[90m${extra}\x1b[0m` : extra}` : ''}`;
}

/** `WARN ` (coloured on a terminal). */
function levelTag(r: LogRecord, color: boolean | undefined): string {
  const level = LEVELS[r.level ?? 30] ?? String(r.level);
  const tag = level.toUpperCase().padEnd(5);
  return color ? `\x1b[${COLORS[level] ?? '0'}m${tag}\x1b[0m` : tag;
}

/** The fields after the message, `key=value ...`. */
function extraFields(r: LogRecord): string {
  return Object.entries(r)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
}

/** `--level warn` → 40. */
export function levelNumber(name: string): number {
  const found = Object.entries(LEVELS).find(([, n]) => n === name.toLowerCase());
  if (!found) throw new Error(`--level must be one of ${Object.values(LEVELS).join(', ')}, got '${name}'`);
  return Number(found[0]);
}
