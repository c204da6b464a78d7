import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopic } from '../../lib/kafka/client.js';
import { launchBrowser } from '../support/browser.js';
import { repoRoot } from '../support/infra.js';
import { examplesRun, freePorts, startCli, type CliProcess } from '../support/cli.js';
import { firstEvents, produceEvents, removeTempDirsAfterAll } from '../support/workers.js';

removeTempDirsAfterAll();

/**
 * `sluice dashboard` in a real browser (Debian's chromium, headless) against
 * the two example jobs run locally on the real Kafka and Redis: the page must
 * show what the Flink Web UI showed and more, from live data.
 */
describe('sluice dashboard in a browser', () => {
  const { dir, topic, prefix, churn, cart, brokers, redis: r, smtp: mail, writeExamples } = examplesRun('dashboard');
  const processes: CliProcess[] = [];

  beforeAll(async () => {
    await createTopic({ brokers }, `${topic}.dlq`, 1);
    mkdirSync(join(dir, 'jobs'));
    writeExamples(join(dir, 'jobs'), topic);
    const events = firstEvents(12_000, { seed: 5, users: 400 });
    // Two malformed records among them: the dead-letter panel shows why.
    await produceEvents(topic, events, [
      { partition: 0, value: 'this is not an event' },
      { partition: 1, value: 'this is not an event either' },
    ]);
  });

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });

  it('shows the jobs, their workers, charts, partitions with owners, dead-letter reasons, alerts and the riskiest users', async () => {
    const state = join(dir, 'state');
    const run = startCli(
      [
        'run', '-f', join(dir, 'jobs'), '--bootstrap-servers', brokers.join(','), '--redis', `${r.host}:${r.port}`,
        '--smtp', `${mail.host}:${mail.port}`, '--key-prefix', prefix, '--metrics-port', String(await freePorts(3)),
        '--logs-dir', join(dir, 'logs'), '--checkpoint-dir', join(dir, 'checkpoints'), '--state-dir', state,
      ],
      { cwd: dir, env: { CART_ABANDON_THRESHOLD: '0.5' } },
    );
    processes.push(run);
    await run.waitFor(new RegExp(`\\[${churn}\\] worker 1 ready`), 90_000);
    await run.waitFor(new RegExp(`\\[${cart}\\] worker 0 ready`), 90_000);

    const dashboard = startCli(['dashboard', '--port', '0', '--state-dir', state, '--interval', '1s'], { cwd: dir });
    processes.push(dashboard);
    const url = (await dashboard.waitFor(/http:\/\/127\.0\.0\.1:\d+\//, 30_000))[0];

    const browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      await page.goto(url);
      const churnCard = page.locator(`section[data-job="${churn}"]`);
      const cartCard = page.locator(`section[data-job="${cart}"]`);
      await churnCard.waitFor({ timeout: 30_000 });
      await cartCard.waitFor({ timeout: 30_000 });

      // Workers: two for churn, one for cart, all ready.
      await expect.poll(() => churnCard.locator('[data-testid="ready"]').textContent(), { timeout: 30_000 }).toBe('2/2');
      await expect.poll(() => cartCard.locator('[data-testid="ready"]').textContent(), { timeout: 30_000 }).toBe('1/1');
      expect(await churnCard.locator('[data-testid="workers"] tr').count()).toBe(3);

      // Partitions with their owner: both workers of churn own one each.
      await expect.poll(async () => (await churnCard.locator('[data-testid="partitions"]').innerText()).match(/worker [01]/g)?.sort().join(','), { timeout: 30_000 }).toBe('worker 0,worker 1');

      // The charts have points (the page keeps sampling).
      await expect.poll(() => churnCard.locator('svg[data-chart="lag"] polyline').count(), { timeout: 30_000 }).toBe(1);

      // Dead-letter reasons, read from the job's dead-letter topic.
      await expect.poll(() => churnCard.locator('[data-testid="dead-letters"]').innerText(), { timeout: 60_000 }).toMatch(/not JSON: .*\s+1\b/);
      await expect.poll(() => churnCard.locator('[data-testid="dlq"]').textContent(), { timeout: 30_000 }).toBe('2');

      // The riskiest users (from Redis), and cart alerts.
      await expect.poll(() => churnCard.locator('[data-testid="riskiest"] tr').count(), { timeout: 60_000 }).toBe(11);
      expect(await churnCard.locator('[data-testid="riskiest"]').innerText()).toMatch(/u\d+\s+0\.\d{3}\s+(low|medium|high) risk/);
      await expect.poll(() => cartCard.locator('[data-testid="alerts"] tr').count(), { timeout: 60_000 }).toBeGreaterThan(1);
      await expect.poll(() => cartCard.locator('[data-testid="alerts"]').innerText(), { timeout: 60_000 }).toMatch(/\bsent\b/);

      const shot = join(repoRoot, 'test-results', 'dashboard.png');
      mkdirSync(join(repoRoot, 'test-results'), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true });
      copyFileSync(shot, join(dir, 'dashboard.png'));
    } finally {
      await browser.close();
    }

    dashboard.child.kill('SIGINT');
    expect((await dashboard.exited).code).toBe(0);
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
  });
});
