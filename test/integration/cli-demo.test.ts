import { describe, expect, it } from 'vitest';
import { runCliToEnd } from '../support/cli.js';

describe('sluice demo (no Kafka, Redis or cluster)', () => {
  it('prints throughput and the riskiest users as plain lines when not on a terminal, and stops after --duration', async () => {
    const started = Date.now();
    const r = await runCliToEnd(['demo', '--duration', '5', '--interval', '1s', '--top', '5'], { timeoutMs: 60_000 });
    const took = Date.now() - started;
    expect(r.code).toBe(0);
    expect(took).toBeLessThan(30_000);
    // Periodic plain lines while running ...
    const periodic = r.output.split('\n').filter((l) => /^\[\d+s\] churn [\d,]+ events/.test(l));
    expect(periodic.length).toBeGreaterThanOrEqual(3);
    // ... and a final table of the riskiest users with scores and risk bands, highest first.
    const table = r.output.slice(r.output.indexOf('riskiest users (churn score)'));
    const rows = [...table.matchAll(/^ {2}(u\d+)\s+([01]\.\d{3})\s+(low|medium|high)\s/gm)];
    expect(rows).toHaveLength(5);
    const scores = rows.map((m) => Number(m[2]));
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(r.output).not.toContain('\x1b['); // no terminal escapes in a pipe
  });
});
