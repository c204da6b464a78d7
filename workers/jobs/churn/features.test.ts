import { describe, expect, it } from 'vitest';
import { EventGenerator } from '../../events/generator.js';
import type { UserEvent } from '../../events/types.js';
import { CHURN_FEATURES, churnFeatures, newChurnState, updateChurn, type ChurnState } from './features.js';
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
    const states = new Map<string, ChurnState>();
    const out = new Float32Array(F);
    let checked = 0;
    for (const e of new EventGenerator({ seed: 21, users: 150, days: 45 })) {
      let s = states.get(e.userId);
      if (!s) states.set(e.userId, (s = newChurnState()));
      updateChurn(s, e);
      const list = byUser.get(e.userId) ?? [];
      list.push(e);
      byUser.set(e.userId, list);
      // Spot-check after some events, as of the event and as of a later time.
      if (list.length % 37 === 0) {
        for (const asOf of [e.eventTime, e.eventTime + 3.5 * DAY_MS, e.eventTime + 40 * DAY_MS]) {
          churnFeatures(s, asOf, out, 0);
          for (const [name, want] of Object.entries(reference(list, asOf))) expect(at(name, out), `${name} of ${e.userId} as of ${asOf}`).toBeCloseTo(want, 4);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('survive a JSON checkpoint at any point unchanged', () => {
    const a = newChurnState();
    let b = newChurnState();
    const events = [...new EventGenerator({ seed: 4, users: 3, days: 40 })].filter((e) => e.userId === 'u1');
    events.forEach((e, i) => {
      updateChurn(a, e);
      updateChurn(b, e);
      if (i % 5 === 0) b = JSON.parse(JSON.stringify(b)) as ChurnState;
    });
    const fa = new Float32Array(F);
    const fb = new Float32Array(F);
    churnFeatures(a, events.at(-1)!.eventTime, fa, 0);
    churnFeatures(b, events.at(-1)!.eventTime, fb, 0);
    expect(fb).toEqual(fa);
    expect(JSON.stringify(b).length).toBeLessThan(1000);
  });

  it('forget activity older than the window but keep totals and recency', () => {
    const s = newChurnState();
    updateChurn(s, ev('purchase', t0, { price: 40, quantity: 2 }));
    updateChurn(s, ev('session_start', t0 + 40 * DAY_MS));
    const out = new Float32Array(F);
    churnFeatures(s, t0 + 40 * DAY_MS, out, 0);
    expect(at('purchases_28d', out)).toBe(0);
    expect(at('purchases_total', out)).toBe(1);
    expect(at('revenue_total_log', out)).toBeCloseTo(Math.log1p(80), 5);
    expect(at('days_since_last_purchase', out)).toBe(40);
    expect(at('events_28d', out)).toBe(1);
    expect(at('tenure_days', out)).toBe(40);
  });

  it('count a late event in its own day when that day is still in the window', () => {
    const s = newChurnState();
    updateChurn(s, ev('page_view', t0 + 10 * DAY_MS));
    updateChurn(s, ev('support_contact', t0 + 8 * DAY_MS));
    updateChurn(s, ev('support_contact', t0 - 30 * DAY_MS));
    const out = new Float32Array(F);
    churnFeatures(s, t0 + 10 * DAY_MS, out, 0);
    expect(at('events_1d', out)).toBe(1);
    expect(at('support_contacts_28d', out)).toBe(1);
    expect(at('days_since_last_event', out)).toBe(0);
    expect(at('tenure_days', out)).toBe(40);
  });

  it('write at the offset it is given and nowhere else', () => {
    const s = newChurnState();
    updateChurn(s, ev('session_start', t0));
    const out = new Float32Array(3 * F).fill(-1);
    churnFeatures(s, t0, out, F);
    expect([...out.subarray(0, F)].every((v) => v === -1)).toBe(true);
    expect([...out.subarray(2 * F)].every((v) => v === -1)).toBe(true);
    expect(out[F + CHURN_FEATURES.indexOf('sessions_7d')]).toBe(1);
  });
});
