import { describe, expect, it } from 'vitest';
import { buildProgram, runCli } from './program.js';

/** Runs the CLI in-process and returns its exit code and everything it wrote. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const program = buildProgram({ output: { writeOut: (s) => void (out += s), writeErr: (s) => void (err += s) } });
  const code = await runCli(program, ['node', 'sluice', ...args], (s) => void (err += s));
  return { code, out, err };
}

describe('sluice command-line errors', () => {
  it('rejects an unknown flag in one line that names it, and points at --help', async () => {
    const r = await cli('run', '-f', 'examples/churn-job.yaml', '--paralelism', '2');
    expect(r.code).toBe(1);
    expect(r.err).toContain("error: unknown option '--paralelism'");
    expect(r.err).toContain('--parallelism');
    expect(r.err).toContain("run 'sluice run --help'");
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('suggests the command meant by a typo', async () => {
    const r = await cli('rnu');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown command 'rnu'[\s\S]*Did you mean run\?/);
  });

  it('explains a bad value for a numeric flag', async () => {
    const r = await cli('run', '-f', 'examples/churn-job.yaml', '--parallelism', 'two');
    expect(r.code).toBe(1);
    expect(r.err).toContain("--parallelism must be a whole number >= 1, got 'two'");
  });

  it('explains a bad duration', async () => {
    const r = await cli('stop', '--timeout', 'soon');
    expect(r.code).toBe(1);
    expect(r.err).toContain("--timeout must be a duration like 30s, 5m or 1h, got 'soon'");
  });

  it('requires the job file and names the flag', async () => {
    const r = await cli('run');
    expect(r.code).toBe(1);
    expect(r.err).toContain("required option '-f, --file <path...>' not specified");
  });

  it('reports a missing job file as one line, without a stack', async () => {
    const r = await cli('run', '-f', 'examples/no-such-job.yaml');
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: examples/no-such-job.yaml: no such file\n');
  });

  it('prints help for every subcommand and exits 0', async () => {
    for (const sub of ['run', 'stop', 'demo', 'produce']) {
      const r = await cli(sub, '--help');
      expect(r.code, sub).toBe(0);
      expect(r.out, sub).toContain(`Usage: sluice ${sub}`);
    }
  });
});
