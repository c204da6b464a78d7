import { describe, expect, it } from 'vitest';
import { EventGenerator } from '../../events/generator.js';
import type { UserEvent } from '../../events/types.js';
import { copyUser } from '../../state/table.js';
import { CHURN_FEATURES, churnFeatures, ChurnTable, updateChurn } from './features.js';
import { DAY_MS, dayOf } from '../../features/time.js';

const F = CHURN_FEATURES.length;
const at = (name: string, out: Float32Array): number => out[CHURN_FEATURES.indexOf(name)];
const t0 = Date.UTC(2026, 0, 1);
const ev = (eventType: UserEvent['eventType'], eventTime: number, extra: Partial<UserEvent> = {}): UserEvent => ({ userId: 'u', eventType, eventTime, ...extra });

/** The same windows computed the slow way, from the full event list. */
function reference(events: UserEvent[], asOf: number): Record<string, number> {
  const day = dayOf(asOf);
  const inWindow = (e: UserEvent, w: number): boolean => dayOf(e.eventTime) > day - w && dayOf(e.eventTime) <= day;
  const count = (w: number, type?: UserEvent['eventType']): number => events.filter((e) => inWindow(e, w) && (!type || e.eventType === type)).length;
  const activeDays = (w: number): number => new Set(events.filter((e) => inWindow(e, w)).map((e) => dayOf(e.eventTime))).size;
  return {
    events_1d: count(1),
    events_7d: count(7),
    events_28d: count(28),
    active_days_7d: activeDays(7),
    active_days_28d: activeDays(28),
    sessions_7d: count(7, 'session_start'),
    sessions_28d: count(28, 'session_start'),
    cart_adds_28d: count(28, 'add_to_cart'),
    purchases_28d: count(28, 'purchase'),
    support_contacts_28d: count(28, 'support_contact'),
    purchases_total: events.filter((e) => e.eventType === 'purchase').length,
    days_since_last_event: Math.min(90, (asOf - Math.max(...events.map((e) => e.eventTime))) / DAY_MS),
  };
}

describe('churn features', () => {
  it('match window counts recomputed from the raw events, for every user of a generated shop', () => {
    const byUser = new Map<string, UserEvent[]>();
    const states = new ChurnTable();
    const out = new Float32Array(F);
    let checked = 0;
    for (const e of new EventGenerator({ seed: 21, users: 150, days: 45 })) {
      const s = states.slot(e.userId);
      updateChurn(states, s, e);
      const list = byUser.get(e.userId) ?? [];
      list.push(e);
      byUser.set(e.userId, list);
      // Spot-check after some events, as of the event and as of a later time.
      if (list.length % 37 === 0) {
        for (const asOf of [e.eventTime, e.eventTime + 3.5 * DAY_MS, e.eventTime + 40 * DAY_MS]) {
          churnFeatures(states, s, asOf, out, 0);
          for (const [name, want] of Object.entries(reference(list, asOf))) expect(at(name, out), `${name} of ${e.userId} as of ${asOf}`).toBeCloseTo(want, 4);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('survive an encoded checkpoint at any point unchanged, in 208 bytes', () => {
    const a = new ChurnTable();
    const sa = a.slot('u1');
    let b = new ChurnTable();
    let sb = b.slot('u1');
    const events = [...new EventGenerator({ seed: 4, users: 3, days: 40 })].filter((e) => e.userId === 'u1');
    events.forEach((e, i) => {
      updateChurn(a, sa, e);
      updateChurn(b, sb, e);
      if (i % 5 === 0) {
        const fresh = new ChurnTable();
        sb = copyUser(b, sb, fresh);
        b = fresh;
      }
    });
    const fa = new Float32Array(F);
    const fb = new Float32Array(F);
    churnFeatures(a, sa, events.at(-1)!.eventTime, fa, 0);
    churnFeatures(b, sb, events.at(-1)!.eventTime, fb, 0);
    expect(fb).toEqual(fa);
    expect(b.valueBytes(sb)).toBe(208);
  });

  it('widen a day past 255 events to 32-bit counters, exactly, and keep them through a checkpoint', () => {
    const t = new ChurnTable();
    const s = t.slot('bot');
    for (let i = 0; i < 700; i++) updateChurn(t, s, ev(i % 2 ? 'product_view' : 'page_view', t0 + i * 1000));
    updateChurn(t, s, ev('session_start', t0 + 2 * DAY_MS));
    const copy = new ChurnTable();
    const c = copyUser(t, s, copy);
    expect(copy.valueBytes(c)).toBe(208 + 168 * 4);
    for (const [table, slot] of [[t, s], [copy, c]] as const) {
      const out = new Float32Array(F);
      churnFeatures(table, slot, t0 + 2 * DAY_MS, out, 0);
      expect(at('events_7d', out)).toBe(701);
      expect(at('product_views_28d', out)).toBe(350);
      expect(at('events_1d', out)).toBe(1);
    }
  });

  it('forget activity older than the window but keep totals and recency', () => {
    const t = new ChurnTable();
    const s = t.slot('u');
    updateChurn(t, s, ev('purchase', t0, { price: 40, quantity: 2 }));
    updateChurn(t, s, ev('session_start', t0 + 40 * DAY_MS));
    const out = new Float32Array(F);
    churnFeatures(t, s, t0 + 40 * DAY_MS, out, 0);
    expect(at('purchases_28d', out)).toBe(0);
    expect(at('purchases_total', out)).toBe(1);
    expect(at('revenue_total_log', out)).toBeCloseTo(Math.log1p(80), 5);
    expect(at('days_since_last_purchase', out)).toBe(40);
    expect(at('events_28d', out)).toBe(1);
    expect(at('tenure_days', out)).toBe(40);
  });

  it('count a late event in its own day when that day is still in the window', () => {
    const t = new ChurnTable();
    const s = t.slot('u');
    updateChurn(t, s, ev('page_view', t0 + 10 * DAY_MS));
    updateChurn(t, s, ev('support_contact', t0 + 8 * DAY_MS));
    updateChurn(t, s, ev('support_contact', t0 - 30 * DAY_MS));
    const out = new Float32Array(F);
    churnFeatures(t, s, t0 + 10 * DAY_MS, out, 0);
    expect(at('events_1d', out)).toBe(1);
    expect(at('support_contacts_28d', out)).toBe(1);
    expect(at('days_since_last_event', out)).toBe(0);
    expect(at('tenure_days', out)).toBe(40);
  });

  it('write at the offset it is given and nowhere else', () => {
    const t = new ChurnTable();
    const s = t.slot('u');
    updateChurn(t, s, ev('session_start', t0));
    const out = new Float32Array(3 * F).fill(-1);
    churnFeatures(t, s, t0, out, F);
    expect([...out.subarray(0, F)].every((v) => v === -1)).toBe(true);
    expect([...out.subarray(2 * F)].every((v) => v === -1)).toBe(true);
    expect(out[F + CHURN_FEATURES.indexOf('sessions_7d')]).toBe(1);
  });
});
