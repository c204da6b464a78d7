import { describe, expect, it } from 'vitest';
import type { UserEvent } from '../../events/types.js';
import { abandonCart, CART_FEATURES, cartFeatures, newCartState, openCart, updateCart, type CartState } from './features.js';

const t0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const ev = (eventType: UserEvent['eventType'], minute: number, extra: Partial<UserEvent> = {}): UserEvent => ({ userId: 'u7', eventType, eventTime: t0 + minute * MIN, ...extra });
const add = (minute: number, price: number, quantity = 1, cartId = 'c1'): UserEvent => ev('add_to_cart', minute, { productId: 'p', price, quantity, cartId });
const features = (s: CartState, asOf: number): Record<string, number> => {
  const out = new Float32Array(CART_FEATURES.length);
  cartFeatures(s, asOf, out, 0);
  return Object.fromEntries(CART_FEATURES.map((n, i) => [n, out[i]]));
};

describe('cart state', () => {
  it('opens a cart on the first add_to_cart and tracks items, value and last activity', () => {
    const s = newCartState();
    updateCart(s, ev('page_view', 0));
    expect(openCart(s)).toBeUndefined();
    updateCart(s, add(1, 10, 2));
    updateCart(s, add(5, 4));
    updateCart(s, ev('page_view', 30));
    expect(openCart(s)).toEqual({ cartId: 'c1', lastActivity: t0 + 5 * MIN, items: 3, value: 24 });
  });

  it('closes the cart on purchase, not as abandoned', () => {
    const s = newCartState();
    updateCart(s, add(1, 10));
    updateCart(s, ev('checkout_start', 2, { cartId: 'c1' }));
    updateCart(s, ev('purchase', 3, { cartId: 'c1', price: 10 }));
    expect(openCart(s)).toBeUndefined();
    const f = features(s, t0 + 100 * MIN);
    expect(f.past_carts).toBe(1);
    expect(f.past_carts_abandoned).toBe(0);
    expect(f.past_carts_purchased_rate).toBeCloseTo(2 / 3, 6);
  });

  it('abandons the open cart and gives the next cart a new id, even if the shop reuses the cart id', () => {
    const s = newCartState();
    updateCart(s, add(1, 10));
    expect(abandonCart(s)).toBe('c1');
    expect(openCart(s)).toBeUndefined();
    updateCart(s, add(200, 5));
    const next = openCart(s)!;
    expect(next.cartId).not.toBe('c1');
    expect(next.cartId).toBe(`c1@${t0 + 200 * MIN}`);
    expect(next.items).toBe(1);
    expect(features(s, t0).past_carts_abandoned).toBe(1);
    updateCart(s, add(300, 5, 1, 'c2'));
    expect(openCart(s)!.cartId).toBe(`c1@${t0 + 200 * MIN}`);
  });

  it('names a cart without cart_id after the user and its first add', () => {
    const s = newCartState();
    updateCart(s, ev('add_to_cart', 3, { productId: 'p', price: 1 }));
    expect(openCart(s)!.cartId).toBe(`u7@${t0 + 3 * MIN}`);
  });

  it('refuses to abandon when no cart is open', () => {
    expect(() => abandonCart(newCartState())).toThrow(/no open cart/);
  });

  it('takes removals off the cart, at the given price or the average one', () => {
    const s = newCartState();
    updateCart(s, add(1, 10, 2));
    updateCart(s, add(2, 30));
    updateCart(s, ev('remove_from_cart', 3, { productId: 'p', price: 30 }));
    expect(openCart(s)).toMatchObject({ items: 2, value: 20 });
    updateCart(s, ev('remove_from_cart', 4, { productId: 'p' }));
    expect(openCart(s)).toMatchObject({ items: 1, value: 10 });
    updateCart(s, ev('remove_from_cart', 5, { productId: 'p', quantity: 5 }));
    expect(openCart(s)).toMatchObject({ items: 0, value: 0 });
  });

  it('describes the idle cart for the model', () => {
    const s = newCartState();
    updateCart(s, ev('purchase', -3 * 24 * 60, { price: 50 }));
    updateCart(s, add(0, 20, 2));
    updateCart(s, ev('remove_from_cart', 10, { productId: 'p', price: 20 }));
    updateCart(s, ev('checkout_start', 15, { cartId: 'c1' }));
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

  it('survives a JSON checkpoint unchanged', () => {
    const s = newCartState();
    updateCart(s, add(1, 10));
    const copy = JSON.parse(JSON.stringify(s)) as CartState;
    updateCart(s, add(2, 5));
    updateCart(copy, add(2, 5));
    expect(copy).toEqual(s);
    expect(features(copy, t0 + 90 * MIN)).toEqual(features(s, t0 + 90 * MIN));
  });
});
