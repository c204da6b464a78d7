import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** pino's numeric levels. */
export const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export interface LogRecord {
  level?: number;
  time?: number;
  msg?: string;
  err?: unknown;
  [key: string]: unknown;
}

/** The last `bytes` of a file as lines (the first, maybe partial, line dropped when the file is longer). */
export function tailLines(file: string, bytes = 64 * 1024): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
    return start > 0 ? lines.slice(1) : lines;
  } finally {
    closeSync(fd);
  }
}

export function parseLogLine(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    return value && typeof value === 'object' ? (value as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

function errText(err: unknown): string | undefined {
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
  return undefined;
}

/** One line for a log record: its message, plus the error when the message does not already say it. */
export function recordText(r: LogRecord): string {
  const msg = r.msg ?? '';
  const err = errText(r.err);
  return err && !msg.includes(err) ? `${msg}${msg ? ': ' : ''}${err}` : msg;
}

/**
 * Why a worker exited, in its own words: the last fatal line of its log, else
 * the last error line, else the last line at all. The supervisor prints it on
 * the terminal for every exit, so nobody has to open the log to learn it.
 */
export function workerReason(logFile: string, since?: number): string {
  const lines = tailLines(logFile);
  let lastError: string | undefined;
  for (let i = lines.length - 1; i >= 0; i--) {
    const r = parseLogLine(lines[i]!);
    if (!r || (since !== undefined && (r.time ?? 0) < since)) continue;
    if ((r.level ?? 0) >= 60) return recordText(r);
    if ((r.level ?? 0) >= 50) lastError ??= recordText(r);
  }
  if (lastError) return lastError;
  const last = lines.at(-1);
  if (!last) return `no output (see ${logFile})`;
  const r = parseLogLine(last);
  return r ? recordText(r) : last.slice(0, 500);
}

/** The last warn-or-worse line of a log written since `sinceMs`, for `sluice status` (undefined when none). */
export function recentProblem(logFile: string, sinceMs: number): string | undefined {
  const lines = tailLines(logFile, 32 * 1024);
  for (let i = lines.length - 1; i >= 0; i--) {
    const r = parseLogLine(lines[i]!);
    if (!r) continue;
    if ((r.time ?? 0) < sinceMs) return undefined;
    if ((r.level ?? 0) >= 40) return recordText(r);
  }
  return undefined;
}
