import { describe, expect, it } from 'vitest';
import { EventGenerator } from '../events/generator.js';
import type { UserEvent } from '../events/types.js';
import { abandonCart, CART_FEATURES, cartFeatures, CartTable, openCart, updateCart } from '../jobs/cart/features.js';
import { CHURN_FEATURES, churnFeatures, ChurnTable, updateChurn } from '../jobs/churn/features.js';
import { copyUser, type UserTable } from '../state/table.js';
import { DAY_MS } from '../features/time.js';
import { CartRowsBuilder, ChurnRowsBuilder } from './dataset.js';

const generator = new EventGenerator({ seed: 99, users: 300, days: 50 });
const events = [...generator];
const byUser = new Map<string, UserEvent[]>();
for (const e of events) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);
/** What a checkpoint and restore does to a user's state: encoded, then decoded into a fresh table. */
function restore<T extends UserTable>(u: { t: T; s: number }, fresh: () => T): { t: T; s: number } {
  const t = fresh();
  return { t, s: copyUser(u.t, u.s, t) };
}

describe('training rows', () => {
  it('churn: features computed event by event, with checkpoints, equal the one-pass training rows', () => {
    const cutoffs = [28, 35].map((d) => generator.start + d * DAY_MS);
    const builder = new ChurnRowsBuilder({ cutoffs, horizonDays: 14 });
    for (const e of events) builder.add(e);
    const rows = builder.finish(generator.end);
    expect(rows.y.length).toBeGreaterThan(200);
    expect(new Set(rows.y)).toEqual(new Set([0, 1]));
    const F = CHURN_FEATURES.length;
    const out = new Float32Array(F);
    for (let r = 0; r < rows.y.length; r++) {
      const asOf = rows.asOf[r];
      const first = new ChurnTable();
      let u = { t: first, s: first.slot(rows.users[r]) };
      const mine = byUser.get(rows.users[r])!;
      mine.filter((e) => e.eventTime < asOf).forEach((e, i) => {
        updateChurn(u.t, u.s, e);
        if (i % 7 === 3) u = restore(u, () => new ChurnTable());
      });
      churnFeatures(u.t, u.s, asOf, out, 0);
      expect(out).toEqual(rows.x.subarray(r * F, (r + 1) * F));
      const activeInHorizon = mine.some((e) => e.eventTime >= asOf && e.eventTime < asOf + 14 * DAY_MS);
      expect(rows.y[r]).toBe(activeInHorizon ? 0 : 1);
    }
  });

  it('cart: a per-user worker with an idle timer and checkpoints scores the same carts with the same features', () => {
    const window = 60 * 60_000;
    const builder = new CartRowsBuilder({ windowMinutes: 60, horizonHours: 24 });
    for (const e of events) builder.add(e);
    const rows = builder.finish(generator.end);
    expect(rows.y.length).toBeGreaterThan(300);
    const F = CART_FEATURES.length;
    const scored = new Map<string, Float32Array>();
    for (const [user, mine] of byUser) {
      const first = new CartTable();
      let u = { t: first, s: first.slot(user) };
      const fire = (now: number): void => {
        const cart = openCart(u.t, u.s);
        if (!cart || cart.lastActivity + window > now) return;
        const x = new Float32Array(F);
        cartFeatures(u.t, u.s, cart.lastActivity + window, x, 0);
        scored.set(`${user}@${cart.lastActivity + window}`, x);
        abandonCart(u.t, u.s);
      };
      mine.forEach((e, i) => {
        fire(e.eventTime);
        updateCart(u.t, u.s, e);
        if (i % 5 === 2) u = restore(u, () => new CartTable());
      });
      fire(generator.end);
    }
    for (let r = 0; r < rows.y.length; r++) {
      const x = scored.get(`${rows.users[r]}@${rows.asOf[r]}`);
      expect(x, `row ${r}`).toBeDefined();
      expect(x).toEqual(rows.x.subarray(r * F, (r + 1) * F));
      const lastActivity = rows.asOf[r] - window;
      const bought = byUser.get(rows.users[r])!.some((e) => e.eventType === 'purchase' && e.eventTime >= rows.asOf[r] && e.eventTime <= lastActivity + 24 * 3_600_000);
      expect(rows.y[r]).toBe(bought ? 0 : 1);
    }
    // Rows whose 24 h horizon runs past the data are dropped unless already bought.
    expect(scored.size).toBeGreaterThanOrEqual(rows.y.length);
  });
});
