import { describe, expect, it } from 'vitest';
import type { UserEvent } from '../events/types.js';
import { CART_FEATURES, cartFeatures, CartTable, openCart, updateCart, abandonCart } from '../jobs/cart/features.js';
import { CHURN_FEATURES, churnFeatures, ChurnTable, updateChurn } from '../jobs/churn/features.js';

/** One user on a table of their own. */
interface One<T> {
  t: T;
  s: number;
}
function one<T extends ChurnTable | CartTable>(t: T): One<T> {
  return { t, s: t.slot('u') };
}
import { DAY_MS, HOUR_MS } from '../features/time.js';
import { bundledModelPath } from './bundled.js';
import { Scorer } from './scorer.js';

const t0 = Date.UTC(2026, 1, 1);
const ev = (eventType: UserEvent['eventType'], eventTime: number, extra: Partial<UserEvent> = {}): UserEvent => ({ userId: 'u', eventType, eventTime, ...extra });

/** A user who visits every day for `days` days from t0, with a purchase each week. */
function regular(days: number): One<ChurnTable> {
  const s = one(new ChurnTable());
  for (let d = 0; d < days; d++) {
    const t = t0 + d * DAY_MS + 10 * HOUR_MS;
    for (const type of ['session_start', 'page_view', 'product_view', 'search', 'session_end'] as const) updateChurn(s.t, s.s, ev(type, t, { productId: 'p' }));
    if (d % 7 === 3) updateChurn(s.t, s.s, ev('purchase', t + 60_000, { price: 30 }));
  }
  return s;
}

async function score(job: 'churn' | 'cart', rows: Float32Array): Promise<Float32Array> {
  const names = job === 'churn' ? CHURN_FEATURES : CART_FEATURES;
  const scorer = await Scorer.load(bundledModelPath(job), names);
  const p = await scorer.score(rows, rows.length / names.length);
  await scorer.close();
  return p;
}

describe('bundled models behave as a shop owner expects', () => {
  it('churn: a daily buyer scores low, the same user silent for three weeks scores high', async () => {
    const F = CHURN_FEATURES.length;
    const s = regular(30);
    const x = new Float32Array(2 * F);
    churnFeatures(s.t, s.s, t0 + 30 * DAY_MS, x, 0);
    churnFeatures(s.t, s.s, t0 + 51 * DAY_MS, x, F);
    const [active, silent] = await score('churn', x);
    expect(active).toBeLessThan(0.1);
    expect(silent).toBeGreaterThan(0.75);
  });

  it('cart: a loyal buyer who started checkout is less likely to abandon than a serial abandoner who did not', async () => {
    const F = CART_FEATURES.length;
    const cart = (history: (s: One<CartTable>) => void, checkout: boolean): One<CartTable> => {
      const s = one(new CartTable());
      history(s);
      const t = t0 + 20 * DAY_MS;
      updateCart(s.t, s.s, ev('add_to_cart', t, { productId: 'p', price: 40, cartId: 'c-now' }));
      if (checkout) updateCart(s.t, s.s, ev('checkout_start', t + 60_000, { cartId: 'c-now' }));
      return s;
    };
    const loyal = cart((s) => {
      for (let i = 0; i < 6; i++) {
        updateCart(s.t, s.s, ev('add_to_cart', t0 + i * DAY_MS, { productId: 'p', price: 30, cartId: `c${i}` }));
        updateCart(s.t, s.s, ev('purchase', t0 + i * DAY_MS + 600_000, { price: 30, cartId: `c${i}` }));
      }
    }, true);
    const abandoner = cart((s) => {
      for (let i = 0; i < 6; i++) {
        updateCart(s.t, s.s, ev('add_to_cart', t0 + i * DAY_MS, { productId: 'p', price: 30, cartId: `c${i}` }));
        abandonCart(s.t, s.s);
      }
    }, false);
    const x = new Float32Array(2 * F);
    cartFeatures(loyal.t, loyal.s, openCart(loyal.t, loyal.s)!.lastActivity + HOUR_MS, x, 0);
    cartFeatures(abandoner.t, abandoner.s, openCart(abandoner.t, abandoner.s)!.lastActivity + HOUR_MS, x, F);
    const [p, q] = await score('cart', x);
    expect(q - p).toBeGreaterThan(0.2);
    expect(q).toBeGreaterThan(0.75);
  });
});
