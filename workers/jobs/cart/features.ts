import type { UserEvent } from '../../events/types.js';
import { legacyUsers, UserTable, type Page, type StateFormat, type StateStore } from '../../state/table.js';
import { fingerprint } from '../../state/user-index.js';
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

export const CART_STATE_FORMAT: StateFormat = { name: 'cart', version: 1, features: CART_FEATURES };

/*
 * One user's record, 32 bytes (little-endian):
 *   f64 lastPurchase (-1: never), u32 purchased, u32 abandoned (carts closed by
 *   a purchase / by abandonment), u32 purchases (all, with or without a cart),
 *   i32 open (the open cart's index in OpenCarts; -1: none and no closed cart;
 *   -2: none, and the last closed cart's id fingerprint follows),
 *   u32 closed[2] (64-bit fingerprint of the last closed cart's id, so that a
 *   reused cart_id does not revive it).
 * The open cart (a minority of users) lives beside the records; encoded, it is
 * the record's tail: f64 opened, f64 last, f64 items, f64 value, u32 events,
 * u32 removals, u8 checkout, u16 id length, id (UTF-8).
 */
const F_LAST_PURCHASE = 0;
const U_PURCHASED = 2;
const U_ABANDONED = 3;
const U_PURCHASES = 4;
const I_OPEN = 5;
const U_CLOSED_A = 6;
const U_CLOSED_B = 7;
const RECORD_BYTES = 32;
const NO_CART = -1;
const CLOSED = -2;
const OPEN_FIXED = 43;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A copy of the column `a`, `n` long. */
function grown<T extends Float64Array | Uint32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** Open carts: columns plus a free list; a user's record holds the index. */
class OpenCarts {
  opened: Float64Array = new Float64Array(64);
  last: Float64Array = new Float64Array(64);
  items: Float64Array = new Float64Array(64);
  value: Float64Array = new Float64Array(64);
  events: Uint32Array = new Uint32Array(64);
  removals: Uint32Array = new Uint32Array(64);
  checkout: Uint8Array = new Uint8Array(64);
  ids: string[] = [];
  private free: number[] = [];
  private top = 0;
  count = 0;

  alloc(id: string, at: number): number {
    let c = this.free.pop();
    if (c === undefined) {
      c = this.top++;
      if (c === this.opened.length) this.grow();
    }
    this.opened[c] = at;
    this.last[c] = at;
    this.items[c] = 0;
    this.value[c] = 0;
    this.events[c] = 0;
    this.removals[c] = 0;
    this.checkout[c] = 0;
    this.ids[c] = id;
    this.count++;
    return c;
  }

  release(c: number): void {
    this.ids[c] = '';
    this.free.push(c);
    this.count--;
  }

  private grow(): void {
    const n = this.opened.length * 2;
    this.opened = grown(this.opened, n);
    this.last = grown(this.last, n);
    this.items = grown(this.items, n);
    this.value = grown(this.value, n);
    this.events = grown(this.events, n);
    this.removals = grown(this.removals, n);
    this.checkout = grown(this.checkout, n);
  }
}

/** The cart state of one partition's users: a 32-byte record each, plus the open carts. */
export class CartTable extends UserTable {
  readonly format = CART_STATE_FORMAT;
  protected readonly recordBytes = RECORD_BYTES;

  constructor(store?: StateStore) {
    super(store, RECORD_BYTES);
  }
  readonly carts = new OpenCarts();

  protected init(p: Page, b: number): void {
    p.f64[(b >> 3) + F_LAST_PURCHASE] = -1;
    const i = b >> 2;
    p.u32[i + U_PURCHASED] = 0;
    p.u32[i + U_ABANDONED] = 0;
    p.u32[i + U_PURCHASES] = 0;
    p.i32[i + I_OPEN] = NO_CART;
    p.u32[i + U_CLOSED_A] = 0;
    p.u32[i + U_CLOSED_B] = 0;
  }

  /** The open cart's index, or a negative number. */
  open(slot: number): number {
    return this.page(slot).i32[(this.base(slot) >> 2) + I_OPEN];
  }

  protected override tailBytes(slot: number): number {
    const c = this.open(slot);
    return c < 0 ? 0 : OPEN_FIXED + utf8Length(this.carts.ids[c]);
  }

  protected override writeTail(slot: number, out: Uint8Array, at: number): void {
    const c = this.open(slot);
    const k = this.carts;
    const v = new DataView(out.buffer, out.byteOffset + at);
    v.setFloat64(0, k.opened[c], true);
    v.setFloat64(8, k.last[c], true);
    v.setFloat64(16, k.items[c], true);
    v.setFloat64(24, k.value[c], true);
    v.setUint32(32, k.events[c], true);
    v.setUint32(36, k.removals[c], true);
    v.setUint8(40, k.checkout[c]);
    const n = encoder.encodeInto(k.ids[c], out.subarray(at + OPEN_FIXED)).written;
    v.setUint16(41, n, true);
  }

  protected override readTail(slot: number, src: Uint8Array, at: number, len: number): void {
    const p = this.page(slot);
    const i = (this.base(slot) >> 2) + I_OPEN;
    if (len === 0) {
      if (p.i32[i] >= 0) p.i32[i] = NO_CART;
      return;
    }
    const v = new DataView(src.buffer, src.byteOffset + at, len);
    const n = v.getUint16(41, true);
    if (len !== OPEN_FIXED + n) throw new Error(`cart record tail of ${len} bytes, expected ${OPEN_FIXED + n}`);
    const k = this.carts;
    const c = k.alloc(decoder.decode(src.subarray(at + OPEN_FIXED, at + OPEN_FIXED + n)), v.getFloat64(0, true));
    k.last[c] = v.getFloat64(8, true);
    k.items[c] = v.getFloat64(16, true);
    k.value[c] = v.getFloat64(24, true);
    k.events[c] = v.getUint32(32, true);
    k.removals[c] = v.getUint32(36, true);
    k.checkout[c] = v.getUint8(40);
    p.i32[i] = c;
  }

  protected override release(slot: number): void {
    const c = this.open(slot);
    if (c >= 0) this.carts.release(c);
  }

  protected override extraBytes(): number {
    const k = this.carts;
    return k.opened.length * 41 + k.count * 48;
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Folds one event into a user's state, O(1). Only cart events matter (add_to_cart,
 * remove_from_cart, checkout_start, purchase): browsing between the last cart
 * event and the abandonment timer must not change the features the timer
 * scores. A purchase closes the open cart as bought.
 */
export function updateCart(t: CartTable, slot: number, e: UserEvent): void {
  switch (e.eventType) {
    case 'add_to_cart':
      return add(t, slot, e);
    case 'remove_from_cart':
      return remove(t, slot, e);
    case 'checkout_start': {
      const c = t.open(slot);
      if (c >= 0) {
        t.touch(slot);
        t.carts.checkout[c] = 1;
        touchCart(t, c, e.eventTime);
      }
      return;
    }
    case 'purchase':
      return purchase(t, slot, e);
    default:
      return;
  }
}

function add(t: CartTable, slot: number, e: UserEvent): void {
  t.touch(slot);
  let c = t.open(slot);
  if (c < 0) c = openNew(t, slot, e);
  const k = t.carts;
  const q = e.quantity ?? 1;
  k.items[c] += q;
  k.value[c] += (e.price ?? 0) * q;
  touchCart(t, c, e.eventTime);
}

function remove(t: CartTable, slot: number, e: UserEvent): void {
  const c = t.open(slot);
  if (c < 0) return;
  t.touch(slot);
  const k = t.carts;
  const q = Math.min(e.quantity ?? 1, k.items[c]);
  const unit = e.price ?? (k.items[c] > 0 ? k.value[c] / k.items[c] : 0);
  k.items[c] -= q;
  k.value[c] = k.items[c] > 0 ? Math.max(0, k.value[c] - unit * q) : 0;
  k.removals[c] += 1;
  touchCart(t, c, e.eventTime);
}

function purchase(t: CartTable, slot: number, e: UserEvent): void {
  t.touch(slot);
  const p = t.page(slot);
  const b = t.base(slot);
  const i = b >> 2;
  p.u32[i + U_PURCHASES] += 1;
  if (e.eventTime > p.f64[(b >> 3) + F_LAST_PURCHASE]) p.f64[(b >> 3) + F_LAST_PURCHASE] = e.eventTime;
  if (p.i32[i + I_OPEN] >= 0) {
    close(t, slot);
    p.u32[i + U_PURCHASED] += 1;
  }
}

/** Closes the open cart: its id becomes the last closed one. */
function close(t: CartTable, slot: number): string {
  const p = t.page(slot);
  const i = t.base(slot) >> 2;
  const c = p.i32[i + I_OPEN];
  const id = t.carts.ids[c];
  const [a, b] = fingerprint(id);
  p.u32[i + U_CLOSED_A] = a;
  p.u32[i + U_CLOSED_B] = b;
  p.i32[i + I_OPEN] = CLOSED;
  t.carts.release(c);
  return id;
}

function openNew(t: CartTable, slot: number, e: UserEvent): number {
  // The id is a pure function of the events, so a replay after a crash names
  // the cart the same way and an alert is never sent twice for one cart.
  const p = t.page(slot);
  const i = t.base(slot) >> 2;
  let reused = false;
  if (e.cartId !== undefined && p.i32[i + I_OPEN] === CLOSED) {
    const [a, b] = fingerprint(e.cartId);
    reused = p.u32[i + U_CLOSED_A] === a && p.u32[i + U_CLOSED_B] === b;
  }
  const id = e.cartId !== undefined && !reused ? e.cartId : `${e.cartId ?? e.userId}@${e.eventTime}`;
  const c = t.carts.alloc(id, e.eventTime);
  p.i32[i + I_OPEN] = c;
  return c;
}

function touchCart(t: CartTable, c: number, time: number): void {
  t.carts.events[c] += 1;
  if (time > t.carts.last[c]) t.carts.last[c] = time;
}

export function openCart(t: CartTable, slot: number): { cartId: string; lastActivity: number; items: number; value: number } | undefined {
  const c = t.open(slot);
  if (c < 0) return undefined;
  const k = t.carts;
  return { cartId: k.ids[c], lastActivity: k.last[c], items: k.items[c], value: k.value[c] };
}

/** Last activity of the user's open cart, or -1 (no object built: the timers ask this on every event). */
export function openCartLast(t: CartTable, slot: number): number {
  const c = t.open(slot);
  return c < 0 ? -1 : t.carts.last[c];
}

/**
 * Closes the open cart as abandoned and returns its id; the next add_to_cart
 * opens a new cart with a new id. Throws if no cart is open: the caller's
 * timer should only fire for an open cart.
 */
export function abandonCart(t: CartTable, slot: number): string {
  if (t.open(slot) < 0) throw new Error('abandonCart: the user has no open cart');
  t.touch(slot);
  const id = close(t, slot);
  t.page(slot).u32[(t.base(slot) >> 2) + U_ABANDONED] += 1;
  return id;
}

/** The users of a checkpoint of format version 1 (JSON: users by id, each {open, lastClosedId, purchased, abandoned, purchases, lastPurchase}). */
export function legacyCartUsers(snapshot: unknown): CartTable {
  const t = new CartTable();
  for (const [id, u] of legacyUsers(snapshot, 'cart')) {
    const s = u as {
      open: { id: string; opened: number; last: number; items: number; value: number; events: number; removals: number; checkout: boolean } | null;
      lastClosedId: string | null;
      purchased: number;
      abandoned: number;
      purchases: number;
      lastPurchase: number;
    };
    const slot = t.slot(id);
    const p = t.page(slot);
    const b = t.base(slot);
    const i = b >> 2;
    p.f64[(b >> 3) + F_LAST_PURCHASE] = s.lastPurchase;
    p.u32[i + U_PURCHASED] = s.purchased;
    p.u32[i + U_ABANDONED] = s.abandoned;
    p.u32[i + U_PURCHASES] = s.purchases;
    if (s.lastClosedId !== null && s.lastClosedId !== undefined) {
      const [fa, fb] = fingerprint(s.lastClosedId);
      p.u32[i + U_CLOSED_A] = fa;
      p.u32[i + U_CLOSED_B] = fb;
      p.i32[i + I_OPEN] = CLOSED;
    }
    if (s.open) {
      const k = t.carts;
      const c = k.alloc(s.open.id, s.open.opened);
      k.last[c] = s.open.last;
      k.items[c] = s.open.items;
      k.value[c] = s.open.value;
      k.events[c] = s.open.events;
      k.removals[c] = s.open.removals;
      k.checkout[c] = s.open.checkout ? 1 : 0;
      p.i32[i + I_OPEN] = c;
    }
  }
  t.settle();
  return t;
}

/**
 * Writes CART_FEATURES.length values into out[offset...] for the open cart as
 * of `asOf` (the worker uses lastActivity + window). With no open cart the
 * cart part is zero and only the history remains.
 */
export function cartFeatures(t: CartTable, slot: number, asOf: number, out: Float32Array, offset: number): void {
  const p = t.page(slot);
  const b = t.base(slot);
  const i = b >> 2;
  const c = p.i32[i + I_OPEN];
  const k = t.carts;
  const purchased = p.u32[i + U_PURCHASED];
  const abandoned = p.u32[i + U_ABANDONED];
  const closed = purchased + abandoned;
  const open = c >= 0;
  const items = open ? k.items[c] : 0;
  const value = open ? k.value[c] : 0;
  out[offset] = items;
  out[offset + 1] = open ? Math.log1p(value) : 0;
  out[offset + 2] = open && items > 0 ? Math.log1p(value / items) : 0;
  out[offset + 3] = open ? (k.last[c] - k.opened[c]) / MINUTE_MS : 0;
  out[offset + 4] = open ? k.events[c] : 0;
  out[offset + 5] = open ? k.removals[c] : 0;
  out[offset + 6] = open && k.checkout[c] ? 1 : 0;
  out[offset + 7] = closed;
  // Smoothed, so a newcomer's rate is 0.5 rather than 0/0.
  out[offset + 8] = (purchased + 1) / (closed + 2);
  out[offset + 9] = abandoned;
  out[offset + 10] = p.u32[i + U_PURCHASES];
  const lastPurchase = p.f64[(b >> 3) + F_LAST_PURCHASE];
  out[offset + 11] = lastPurchase < 0 ? CAP_DAYS : Math.min(CAP_DAYS, Math.max(0, (asOf - lastPurchase) / DAY_MS));
}
