import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { CliError } from '../errors.js';
import { levelNumber, prettyLine } from '../local/pretty.js';
import { listRunStates, readRunState } from '../local/run-state.js';
import { parseLogLine } from '../local/worker-log.js';
import { positiveInt } from '../options.js';

interface LogsOptions {
  stateDir: string;
  logsDir: string;
  worker?: number;
  follow?: boolean;
  tail: number;
  level?: number;
  color: boolean;
}

interface Source {
  file: string;
  label: string;
}

/** The log files of a job: those its run state names, else `<logs-dir>/<job>-<n>.log`. */
function sources(job: string, o: LogsOptions): Source[] {
  const state = readRunState(resolve(o.stateDir), job);
  let found: Source[] = state
    ? state.workers.map((w) => ({ file: w.logFile, label: `${job}/${w.index}` }))
    : (existsSync(o.logsDir) ? readdirSync(o.logsDir) : [])
        .map((f) => /^(.+)-(\d+)\.log$/.exec(f))
        .filter((m): m is RegExpExecArray => m !== null && m[1] === job)
        .map((m) => ({ file: join(o.logsDir, m[0]), label: `${job}/${m[2]}` }));
  if (o.worker !== undefined) found = found.filter((s) => s.label === `${job}/${o.worker}`);
  return found.sort((a, b) => a.label.localeCompare(b.label, 'en', { numeric: true }));
}

function readFrom(file: string, offset: number): { text: string; next: number } {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return { text: '', next: offset };
  }
  if (size < offset) offset = 0; // truncated or replaced
  if (size === offset) return { text: '', next: offset };
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    // Only whole lines: a line being written is read next time.
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    return { text: text.slice(0, end), next: offset + Buffer.byteLength(text.slice(0, end)) };
  } finally {
    closeSync(fd);
  }
}

/** The lines each file gained since its offset (offsets move on), oldest first across the files. */
function readNew(files: Source[], offsets: Map<string, number>): Array<{ line: string; label: string }> {
  const lines: Array<{ line: string; label: string }> = [];
  for (const s of files) {
    const { text, next } = readFrom(s.file, offsets.get(s.file) ?? 0);
    offsets.set(s.file, next);
    for (const line of text.split('\n')) if (line.trim()) lines.push({ line, label: s.label });
  }
  return lines.sort((a, b) => timeOf(a.line) - timeOf(b.line));
}

function emit(lines: Array<{ line: string; label: string }>, o: LogsOptions): void {
  for (const { line, label } of lines) {
    const out = prettyLine(line, { color: o.color, source: label, minLevel: o.level });
    if (out !== undefined) process.stdout.write(`${out}\n`);
  }
}

const timeOf = (line: string): number => parseLogLine(line)?.time ?? 0;

async function fromStdin(o: LogsOptions): Promise<void> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    const out = prettyLine(line, { color: o.color, minLevel: o.level });
    if (out !== undefined) process.stdout.write(`${out}\n`);
  }
}

export function logsCommand(): Command {
  return new Command('logs')
    .summary("Show a local job's worker logs, readable (or pretty-print JSON logs from a pipe with '-')")
    .description(
      'Prints the JSON (pino) logs of the workers of a local job as readable lines, merged in time order, each\n' +
        "line tagged <job>/<worker>. 'sluice logs -' reads JSON lines from standard input instead, e.g.\n" +
        '  kubectl logs deploy/churn-worker | npx sluice logs -',
    )
    .argument('[job]', "the local job ('-' for standard input; default: the only job running)")
    .option('--state-dir <dir>', 'where `sluice run` keeps its state', '.sluice')
    .option('--logs-dir <dir>', 'where `sluice run` wrote the logs', 'logs')
    .option('-w, --worker <n>', 'only this worker', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--worker must be a worker number, got '${v}'`);
      return n;
    })
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --tail <lines>', 'how many of the last lines to show first', positiveInt('--tail'), 100)
    .option('--level <level>', 'only lines at or above: trace, debug, info, warn, error, fatal', (v) => {
      try {
        return levelNumber(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    })
    .option('--no-color', 'no colours (the default when not on a terminal)')
    .action(async (job: string | undefined, options: LogsOptions) => {
      const o = { ...options, logsDir: resolve(options.logsDir), color: options.color && Boolean(process.stdout.isTTY) };
      if (job === '-') return fromStdin(o);
      if (!job) {
        const running = listRunStates(resolve(o.stateDir)).map((s) => s.job);
        if (running.length !== 1) {
          throw new CliError(running.length === 0 ? 'no local job running: name one (sluice logs JOB)' : `several jobs run (${running.join(', ')}): name one`);
        }
        job = running[0]!;
      }
      const files = sources(job, o);
      if (files.length === 0) throw new CliError(`no logs of job '${job}' in ${o.logsDir} (nor in the run state of ${resolve(o.stateDir)})`);
      const offsets = new Map<string, number>();
      emit(readNew(files, offsets).slice(-o.tail), o);
      if (!o.follow) return;
      let stop = false;
      process.once('SIGINT', () => void (stop = true));
      process.once('SIGTERM', () => void (stop = true));
      while (!stop) {
        await new Promise((r) => setTimeout(r, 500));
        emit(readNew(sources(job, o), offsets), o);
      }
    });
}
