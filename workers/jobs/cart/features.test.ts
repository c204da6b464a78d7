import { describe, expect, it } from 'vitest';
import type { UserEvent } from '../../events/types.js';
import { copyUser } from '../../state/table.js';
import { abandonCart, CART_FEATURES, cartFeatures, CartTable, openCart, updateCart } from './features.js';

/** One user on a table of their own. */
interface One {
  t: CartTable;
  s: number;
}
const newUser = (): One => {
  const t = new CartTable();
  return { t, s: t.slot('u7') };
};

const t0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const ev = (eventType: UserEvent['eventType'], minute: number, extra: Partial<UserEvent> = {}): UserEvent => ({ userId: 'u7', eventType, eventTime: t0 + minute * MIN, ...extra });
const add = (minute: number, price: number, quantity = 1, cartId = 'c1'): UserEvent => ev('add_to_cart', minute, { productId: 'p', price, quantity, cartId });
const features = (s: One, asOf: number): Record<string, number> => {
  const out = new Float32Array(CART_FEATURES.length);
  cartFeatures(s.t, s.s, asOf, out, 0);
  return Object.fromEntries(CART_FEATURES.map((n, i) => [n, out[i]]));
};

describe('cart state', () => {
  it('opens a cart on the first add_to_cart and tracks items, value and last activity', () => {
    const s = newUser();
    updateCart(s.t, s.s, ev('page_view', 0));
    expect(openCart(s.t, s.s)).toBeUndefined();
    updateCart(s.t, s.s, add(1, 10, 2));
    updateCart(s.t, s.s, add(5, 4));
    updateCart(s.t, s.s, ev('page_view', 30));
    expect(openCart(s.t, s.s)).toEqual({ cartId: 'c1', lastActivity: t0 + 5 * MIN, items: 3, value: 24 });
  });

  it('closes the cart on purchase, not as abandoned', () => {
    const s = newUser();
    updateCart(s.t, s.s, add(1, 10));
    updateCart(s.t, s.s, ev('checkout_start', 2, { cartId: 'c1' }));
    updateCart(s.t, s.s, ev('purchase', 3, { cartId: 'c1', price: 10 }));
    expect(openCart(s.t, s.s)).toBeUndefined();
    const f = features(s, t0 + 100 * MIN);
    expect(f.past_carts).toBe(1);
    expect(f.past_carts_abandoned).toBe(0);
    expect(f.past_carts_purchased_rate).toBeCloseTo(2 / 3, 6);
  });

  it('abandons the open cart and gives the next cart a new id, even if the shop reuses the cart id', () => {
    const s = newUser();
    updateCart(s.t, s.s, add(1, 10));
    expect(abandonCart(s.t, s.s)).toBe('c1');
    expect(openCart(s.t, s.s)).toBeUndefined();
    updateCart(s.t, s.s, add(200, 5));
    const next = openCart(s.t, s.s)!;
    expect(next.cartId).not.toBe('c1');
    expect(next.cartId).toBe(`c1@${t0 + 200 * MIN}`);
    expect(next.items).toBe(1);
    expect(features(s, t0).past_carts_abandoned).toBe(1);
    updateCart(s.t, s.s, add(300, 5, 1, 'c2'));
    expect(openCart(s.t, s.s)!.cartId).toBe(`c1@${t0 + 200 * MIN}`);
  });

  it('names a cart without cart_id after the user and its first add', () => {
    const s = newUser();
    updateCart(s.t, s.s, ev('add_to_cart', 3, { productId: 'p', price: 1 }));
    expect(openCart(s.t, s.s)!.cartId).toBe(`u7@${t0 + 3 * MIN}`);
  });

  it('refuses to abandon when no cart is open', () => {
    const u = newUser();
    expect(() => abandonCart(u.t, u.s)).toThrow(/no open cart/);
  });

  it('takes removals off the cart, at the given price or the average one', () => {
    const s = newUser();
    updateCart(s.t, s.s, add(1, 10, 2));
    updateCart(s.t, s.s, add(2, 30));
    updateCart(s.t, s.s, ev('remove_from_cart', 3, { productId: 'p', price: 30 }));
    expect(openCart(s.t, s.s)).toMatchObject({ items: 2, value: 20 });
    updateCart(s.t, s.s, ev('remove_from_cart', 4, { productId: 'p' }));
    expect(openCart(s.t, s.s)).toMatchObject({ items: 1, value: 10 });
    updateCart(s.t, s.s, ev('remove_from_cart', 5, { productId: 'p', quantity: 5 }));
    expect(openCart(s.t, s.s)).toMatchObject({ items: 0, value: 0 });
  });

  it('describes the idle cart for the model', () => {
    const s = newUser();
    updateCart(s.t, s.s, ev('purchase', -3 * 24 * 60, { price: 50 }));
    updateCart(s.t, s.s, add(0, 20, 2));
    updateCart(s.t, s.s, ev('remove_from_cart', 10, { productId: 'p', price: 20 }));
    updateCart(s.t, s.s, ev('checkout_start', 15, { cartId: 'c1' }));
    expect(features(s, t0 + 75 * MIN)).toEqual({
      cart_items: 1,
      cart_value_log: Math.fround(Math.log1p(20)),
      avg_item_price_log: Math.fround(Math.log1p(20)),
      cart_age_min: 15,
      cart_events: 3,
      cart_removals: 1,
      checkout_started: 1,
      past_carts: 0,
      past_carts_purchased_rate: 0.5,
      past_carts_abandoned: 0,
      purchases_total: 1,
      days_since_last_purchase: Math.fround(3 + 75 / 1440),
    });
  });

  it('survives an encoded checkpoint unchanged, open cart and last closed id included', () => {
    const s = newUser();
    updateCart(s.t, s.s, add(1, 10));
    abandonCart(s.t, s.s);
    updateCart(s.t, s.s, add(2, 5, 1, 'c2'));
    const t = new CartTable();
    const copy = { t, s: copyUser(s.t, s.s, t) };
    expect(openCart(copy.t, copy.s)).toEqual(openCart(s.t, s.s));
    for (const u of [s, copy]) {
      updateCart(u.t, u.s, add(3, 5, 1, 'c2'));
      updateCart(u.t, u.s, ev('purchase', 4, { cartId: 'c2', price: 10 }));
      // The shop reuses the id of the cart just bought: it must not revive it.
      updateCart(u.t, u.s, add(9, 7, 1, 'c2'));
    }
    expect(openCart(copy.t, copy.s)).toEqual(openCart(s.t, s.s));
    expect(openCart(copy.t, copy.s)!.cartId).toBe(`c2@${t0 + 9 * MIN}`);
    expect(features(copy, t0 + 90 * MIN)).toEqual(features(s, t0 + 90 * MIN));
    abandonCart(s.t, s.s);
    expect(s.t.valueBytes(s.s)).toBe(32);
  });
});
