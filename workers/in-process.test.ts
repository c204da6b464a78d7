import { describe, expect, it } from 'vitest';
import { EventGenerator } from './events/generator.js';
import { runInProcess } from './in-process.js';
import { storedAlerts } from './jobs/cart/alerts.js';
import { riskiestUsers } from './jobs/churn/index.js';

describe('runJobInProcess (sluice demo without Kafka or Redis)', () => {
  it('scores every generated user and lists the riskiest first', async () => {
    const source = new EventGenerator({ seed: 2, users: 80, days: 10 });
    const run = await runInProcess({ type: 'churn', source, batchSize: 300 });
    const { events } = await run.done;
    expect(events).toBeGreaterThan(1000);
    expect(run.store.eventsProcessed).toBe(events);
    const top = riskiestUsers(run.store, 5);
    expect(top).toHaveLength(5);
    expect(top.map((u) => u.score)).toEqual([...top.map((u) => u.score)].sort((a, b) => b - a));
    expect(run.store.users.size).toBe(new Set([...source].map((e) => e.userId)).size);
  });

  it('records cart alerts (no email configured) and flushes open carts at the end of the source', async () => {
    const run = await runInProcess({ type: 'cart', source: new EventGenerator({ seed: 4, users: 60, days: 5 }), settings: { cart: { abandonWindowMinutes: 60, abandonThreshold: 0.5 } } });
    await run.done;
    const alerts = storedAlerts(run.store, 1_000);
    expect(alerts.length).toBeGreaterThan(0);
    expect(alerts.every((a) => a.email === 'disabled' && a.score >= 0.5)).toBe(true);
  });

  it('stops early when asked', async () => {
    const run = await runInProcess({ type: 'churn', source: new EventGenerator({ seed: 2, users: 50, days: 300 }), ratePerSecond: 2_000, batchSize: 100 });
    await new Promise((r) => setTimeout(r, 300));
    await run.stop();
    const { events } = await run.done;
    expect(events).toBeGreaterThan(0);
    expect(events).toBeLessThan(5_000);
  });
});

