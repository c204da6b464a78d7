import { readFileSync } from 'node:fs';
import { CliError } from '../errors.js';

/**
 * A `.env` file as the system Sluice replaces used it (and as docker compose
 * and python-dotenv read it): `KEY=value` lines, `#` comments, blank lines, an
 * optional `export ` prefix, values optionally in single quotes (taken as is) or
 * double quotes (with \n, \t, \" and \\ escapes). An unquoted value ends at ` #`.
 */
export function parseDotEnv(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new CliError(`${file}:${index + 1}: expected KEY=value, got '${line}'`);
    out[m[1]!] = value(m[2]!, `${file}:${index + 1}`);
  }
  return out;
}

function value(raw: string, where: string): string {
  if (raw.startsWith("'")) {
    const end = raw.indexOf("'", 1);
    if (end < 0) throw new CliError(`${where}: unclosed single quote`);
    return raw.slice(1, end);
  }
  if (raw.startsWith('"')) {
    let out = '';
    for (let i = 1; i < raw.length; i++) {
      const c = raw[i]!;
      if (c === '"') return out;
      if (c === '\\' && i + 1 < raw.length) {
        const next = raw[++i]!;
        out += next === 'n' ? '\n' : next === 't' ? '\t' : next;
      } else {
        out += c;
      }
    }
    throw new CliError(`${where}: unclosed double quote`);
  }
  const comment = raw.search(/\s#/);
  return (comment >= 0 ? raw.slice(0, comment) : raw).trim();
}

/** The variables of `file`, or none when it does not exist and was not asked for by name. */
export function readDotEnv(file: string, required: boolean): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return {};
    throw new CliError(`--env-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseDotEnv(text, file);
}

/**
 * The environment local workers see, lowest precedence first: the `.env` file,
 * then the real environment (a variable set in the shell wins over the file;
 * set but empty, it does not hide the file's value), then what flags say
 * (flags win over both). The job file is below all three: the workers apply
 * these variables over the rendered job.
 */
export function layeredEnv(
  dotenv: Record<string, string>,
  env: NodeJS.ProcessEnv,
  fromFlags: Record<string, string | undefined>,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...dotenv };
  for (const [key, v] of Object.entries(env)) if (v !== undefined && (v !== '' || !(key in dotenv))) out[key] = v;
  for (const [key, v] of Object.entries(fromFlags)) if (v !== undefined) out[key] = v;
  return out;
}
