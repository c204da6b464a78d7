import { describe, expect, it } from 'vitest';
import { EventGenerator } from '../events/generator.js';
import type { UserEvent } from '../events/types.js';
import { jobTypes } from './registry.js';
import { CartJob } from './cart/job.js';
import { ChurnJob, riskLevel } from './churn/job.js';
import { copyUser } from '../state/table.js';
import type { PartitionState, StreamJob } from '../runtime/job.js';
import type { CartAlert } from './cart/alerts.js';
import { TimerHeap } from './cart/timer-heap.js';

const events = [...new EventGenerator({ seed: 21, users: 120, days: 10 })];

/** What a checkpoint and restore do to a partition's state: every user encoded and decoded into a new table, the scalars kept. */
function roundTrip<S extends PartitionState>(job: StreamJob<S, unknown>, state: S): S {
  const table = job.newTable();
  for (let slot = 0; slot < state.table.size; slot++) copyUser(state.table, slot, table);
  table.settle();
  return job.restored(table, job.meta(state));
}

/** Runs the events through the job in batches of the given sizes, checkpointing between batches. */
async function run<S extends PartitionState>(job: StreamJob<S, unknown>, sizes: () => number): Promise<{ users: Map<string, Record<string, string>>; alerts: CartAlert[] }> {
  const users = new Map<string, Record<string, string>>();
  const alerts: CartAlert[] = [];
  let state = job.newState();
  for (let i = 0; i < events.length; ) {
    const n = sizes();
    const out = await job.process(state, events.slice(i, i + n));
    for (const w of out.writes) users.set(w.userId, { ...users.get(w.userId), ...w.fields });
    alerts.push(...(out.emits as CartAlert[]));
    state = roundTrip(job, state);
    i += n;
  }
  return { users, alerts };
}

function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return 1 + (x % 700);
  };
}

describe('churn job', () => {
  it('writes the same results however the stream is cut into batches and restored from checkpoints', async () => {
    const job = new ChurnJob(await jobTypes.get('churn').loadModel(undefined));
    const whole = await run(job, () => events.length);
    const pieces = await run(job, seeded(5));
    expect(pieces.users).toEqual(whole.users);
    expect(whole.users.size).toBe(new Set(events.map((e) => e.userId)).size);
    for (const h of whole.users.values()) expect(h.risk_level).toBe(riskLevel(Number(h.churn_score)));
  });

  it('bands risk as low below 0.4, medium below 0.7, high from 0.7', () => {
    expect([0, 0.39, 0.4, 0.69, 0.7, 1].map((s) => riskLevel(s))).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high']);
    expect([0.39, 0.5, 0.85, 0.9].map((s) => riskLevel(s, 0.85))).toEqual(['low', 'medium', 'high', 'high']);
    expect([0.2, 0.3].map((s) => riskLevel(s, 0.3))).toEqual(['low', 'high']);
  });
});

describe('cart job', () => {
  it('abandons, scores and alerts the same carts however the stream is cut and restored', async () => {
    const job = new CartJob(await jobTypes.get('cart').loadModel(undefined), { abandonWindowMinutes: 60, abandonThreshold: 0.7 });
    const whole = await run(job, () => events.length);
    const pieces = await run(job, seeded(9));
    expect(pieces.users).toEqual(whole.users);
    expect(pieces.alerts).toEqual(whole.alerts);
    expect(whole.alerts.length).toBeGreaterThan(0);
    expect(whole.alerts.every((a) => a.score >= 0.7)).toBe(true);
    expect(new Set(whole.alerts.map((a) => a.cartId)).size).toBe(whole.alerts.length);
  });

  it('fires a timer a window after the last cart activity, never for a bought cart', async () => {
    const job = new CartJob(await jobTypes.get('cart').loadModel(undefined), { abandonWindowMinutes: 30, abandonThreshold: 0 });
    const m = 60_000;
    const e = (userId: string, eventType: UserEvent['eventType'], t: number, cartId?: string): UserEvent => ({ userId, eventType, eventTime: t * m, cartId, productId: 'p', price: 10, quantity: 1 });
    const state = job.newState();
    const first = await job.process(state, [e('a', 'add_to_cart', 0, 'ca'), e('b', 'add_to_cart', 0, 'cb'), e('a', 'add_to_cart', 20, 'ca'), e('b', 'purchase', 25, 'cb')]);
    expect(first.writes).toEqual([]);
    // a's timer is due at 50: an event at 49 does not fire it, one at 50 does.
    expect((await job.process(state, [e('c', 'page_view', 49)])).emits).toEqual([]);
    const fired = await job.process(state, [e('c', 'page_view', 50)]);
    expect(fired.emits.map((a) => [a.userId, a.cartId, a.abandonedAt, a.items])).toEqual([['a', 'ca', 50 * m, 2]]);
    expect(fired.writes[0].fields).toMatchObject({ cart_id: 'ca', cart_items: '2', cart_value: '20.00' });
    // The idle clock reaches the same decision without events; b's bought cart never fires.
    expect((await job.advanceTo(state, 1_000 * m)).emits).toEqual([]);
  });
});

describe('timer heap', () => {
  it('pops in due order', () => {
    const h = new TimerHeap();
    const dues = [5, 3, 9, 1, 7, 3, 8, 2];
    dues.forEach((d, i) => h.push(d, i));
    const out: number[] = [];
    for (let t = h.pop(); t; t = h.pop()) out.push(t.due);
    expect(out).toEqual([...dues].sort((a, b) => a - b));
  });
});
