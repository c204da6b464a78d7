import type { UserEvent } from '../../events/types.js';
import { DAY_MS, MINUTE_MS } from '../../features/time.js';

/**
 * Features of an idle cart and of its owner's cart history, in the model's
 * input order. They answer: given a cart idle for the abandonment window, how
 * likely is it that it is never bought?
 */
export const CART_FEATURES: readonly string[] = [
  'cart_items',
  'cart_value_log',
  'avg_item_price_log',
  'cart_age_min',
  'cart_events',
  'cart_removals',
  'checkout_started',
  'past_carts',
  'past_carts_purchased_rate',
  'past_carts_abandoned',
  'purchases_total',
  'days_since_last_purchase',
];

const CAP_DAYS = 90;

/** The cart open now; plain JSON (checkpointed). */
export interface OpenCart {
  id: string;
  opened: number;
  last: number;
  items: number;
  value: number;
  events: number;
  removals: number;
  checkout: boolean;
}

/** One user's open cart and cart history: plain JSON (checkpointed), fixed size. */
export interface CartState {
  open: OpenCart | null;
  /** Id of the last closed cart, so that a reused cart_id does not revive it. */
  lastClosedId: string | null;
  /** Carts closed by a purchase / by abandonment. */
  purchased: number;
  abandoned: number;
  /** All purchases, with or without a tracked cart. */
  purchases: number;
  lastPurchase: number;
}

export function newCartState(): CartState {
  return { open: null, lastClosedId: null, purchased: 0, abandoned: 0, purchases: 0, lastPurchase: -1 };
}

/**
 * Folds one event into the state, O(1). Only cart events matter (add_to_cart,
 * remove_from_cart, checkout_start, purchase): browsing between the last cart
 * event and the abandonment timer must not change the features the timer
 * scores. A purchase closes the open cart as bought.
 */
export function updateCart(s: CartState, e: UserEvent): void {
  switch (e.eventType) {
    case 'add_to_cart':
      return add(s, e);
    case 'remove_from_cart':
      return remove(s, e);
    case 'checkout_start':
      if (s.open) {
        s.open.checkout = true;
        touch(s.open, e.eventTime);
      }
      return;
    case 'purchase':
      return purchase(s, e);
    default:
      return;
  }
}

function add(s: CartState, e: UserEvent): void {
  const cart = s.open ?? openNew(s, e);
  const q = e.quantity ?? 1;
  cart.items += q;
  cart.value += (e.price ?? 0) * q;
  touch(cart, e.eventTime);
}

function remove(s: CartState, e: UserEvent): void {
  const cart = s.open;
  if (!cart) return;
  const q = Math.min(e.quantity ?? 1, cart.items);
  const unit = e.price ?? (cart.items > 0 ? cart.value / cart.items : 0);
  cart.items -= q;
  cart.value = cart.items > 0 ? Math.max(0, cart.value - unit * q) : 0;
  cart.removals += 1;
  touch(cart, e.eventTime);
}

function purchase(s: CartState, e: UserEvent): void {
  s.purchases += 1;
  if (e.eventTime > s.lastPurchase) s.lastPurchase = e.eventTime;
  if (s.open) {
    s.lastClosedId = s.open.id;
    s.open = null;
    s.purchased += 1;
  }
}

function openNew(s: CartState, e: UserEvent): OpenCart {
  // The id is a pure function of the events, so a replay after a crash names
  // the cart the same way and an alert is never sent twice for one cart.
  const id = e.cartId !== undefined && e.cartId !== s.lastClosedId ? e.cartId : `${e.cartId ?? e.userId}@${e.eventTime}`;
  s.open = { id, opened: e.eventTime, last: e.eventTime, items: 0, value: 0, events: 0, removals: 0, checkout: false };
  return s.open;
}

function touch(cart: OpenCart, t: number): void {
  cart.events += 1;
  if (t > cart.last) cart.last = t;
}

export function openCart(s: CartState): { cartId: string; lastActivity: number; items: number; value: number } | undefined {
  const c = s.open;
  return c ? { cartId: c.id, lastActivity: c.last, items: c.items, value: c.value } : undefined;
}

/**
 * Closes the open cart as abandoned and returns its id; the next add_to_cart
 * opens a new cart with a new id. Throws if no cart is open: the caller's
 * timer should only fire for an open cart.
 */
export function abandonCart(s: CartState): string {
  const c = s.open;
  if (!c) throw new Error('abandonCart: the user has no open cart');
  s.lastClosedId = c.id;
  s.open = null;
  s.abandoned += 1;
  return c.id;
}

/**
 * Writes CART_FEATURES.length values into out[offset...] for the open cart as
 * of `asOf` (the worker uses lastActivity + window). With no open cart the
 * cart part is zero and only the history remains.
 */
export function cartFeatures(s: CartState, asOf: number, out: Float32Array, offset: number): void {
  const c = s.open;
  const closed = s.purchased + s.abandoned;
  out[offset] = c ? c.items : 0;
  out[offset + 1] = c ? Math.log1p(c.value) : 0;
  out[offset + 2] = c && c.items > 0 ? Math.log1p(c.value / c.items) : 0;
  out[offset + 3] = c ? (c.last - c.opened) / MINUTE_MS : 0;
  out[offset + 4] = c ? c.events : 0;
  out[offset + 5] = c ? c.removals : 0;
  out[offset + 6] = c && c.checkout ? 1 : 0;
  out[offset + 7] = closed;
  // Smoothed, so a newcomer's rate is 0.5 rather than 0/0.
  out[offset + 8] = (s.purchased + 1) / (closed + 2);
  out[offset + 9] = s.abandoned;
  out[offset + 10] = s.purchases;
  out[offset + 11] = s.lastPurchase < 0 ? CAP_DAYS : Math.min(CAP_DAYS, Math.max(0, (asOf - s.lastPurchase) / DAY_MS));
}
