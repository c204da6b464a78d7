import { Random } from './random.js';
import type { UserEvent } from './types.js';

export interface GeneratorOptions {
  seed: number;
  users: number;
  /** Event time of the first day, epoch ms (default 2026-01-01T00:00Z). */
  start?: number;
  /** Length of the simulated period in days (default 30). */
  days?: number;
}

export const DEFAULT_START = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/**
 * A user who comes back to a cart later than this starts a new one, the same
 * rule the cart worker applies with its default ABANDON_WINDOW_MIN.
 */
const CART_IDLE_LIMIT = 60 * MINUTE;

/** Hidden traits of one simulated shopper; features only see their effects. */
interface Shopper {
  id: string;
  /** Sessions per day while fully engaged. */
  rate: number;
  joinAt: number;
  /** When the shopper leaves for good (Infinity: never, in this period). */
  churnAt: number;
  /** How long engagement fades before churnAt. */
  driftMs: number;
  /** Propensity to buy, 0..1. */
  buyer: number;
  /** Median unit price of what the shopper puts in a cart. */
  priceLevel: number;
  /** Propensity to remove items and leave carts, 0..1. */
  hesitancy: number;
  /** Chance of a support contact in a session while engaged. */
  support: number;
  sessions: number;
  carts: number;
  cart: { id: string; items: number; value: number; last: number; checkout: boolean } | undefined;
  /** A planned return to buy the cart left behind (epoch ms), or 0. */
  returnAt: number;
  queue: UserEvent[];
  pos: number;
}

/**
 * A behaviour simulator of an online shop's users: sessions of browsing,
 * searching and carts, purchases, support contacts. Some shoppers drift away
 * (fewer sessions, fewer purchases, more support contacts) and then stop: that
 * is what the churn model learns. Some carts are left behind; whether the
 * shopper comes back to buy depends on the cart (value, checkout started,
 * removals) and on the shopper's habits, which the cart features can see.
 *
 * Iterating yields events in event-time order and is deterministic per seed:
 * two iterations of the same options yield the same events.
 */
export class EventGenerator implements Iterable<UserEvent> {
  readonly start: number;
  readonly end: number;

  constructor(private readonly o: GeneratorOptions) {
    if (!Number.isInteger(o.users) || o.users < 1) throw new Error(`generator: users must be a positive integer, got ${o.users}`);
    const days = o.days ?? 30;
    if (!(days > 0)) throw new Error(`generator: days must be > 0, got ${days}`);
    this.start = o.start ?? DEFAULT_START;
    this.end = this.start + days * DAY;
  }

  [Symbol.iterator](): Iterator<UserEvent> {
    return this.run();
  }

  private *run(): Generator<UserEvent> {
    const rnd = new Random(this.o.seed);
    const n = this.o.users;
    const shoppers: Shopper[] = new Array(n);
    const due = new Float64Array(n);
    const heap = new MinHeap(due, n);
    for (let i = 0; i < n; i++) {
      const s = newShopper(rnd, i, this.start, this.end);
      shoppers[i] = s;
      const first = Math.max(s.joinAt, this.start) + Math.round(rnd.exponential(DAY / s.rate));
      if (first < this.end && first < s.churnAt && planSession(rnd, s, first)) {
        due[i] = s.queue[0].eventTime;
        heap.push(i);
      }
    }
    while (heap.size > 0) {
      const i = heap.pop();
      const s = shoppers[i];
      const e = s.queue[s.pos++];
      if (e.eventTime >= this.end) continue;
      yield e;
      if (s.pos < s.queue.length) {
        due[i] = s.queue[s.pos].eventTime;
        heap.push(i);
      } else if (this.scheduleNext(rnd, s, e.eventTime)) {
        due[i] = s.queue[0].eventTime;
        heap.push(i);
      }
    }
  }

  private scheduleNext(rnd: Random, s: Shopper, now: number): boolean {
    const engaged = engagement(s, now);
    let at = now + Math.max(10 * MINUTE, Math.round(rnd.exponential(DAY / (s.rate * engaged))));
    let back = false;
    if (s.returnAt > 0 && s.returnAt <= at) {
      at = s.returnAt;
      back = true;
    }
    s.returnAt = 0;
    if (at >= this.end || (!back && at >= s.churnAt)) return false;
    return back ? planReturn(rnd, s, at) : planSession(rnd, s, at);
  }
}

function newShopper(rnd: Random, i: number, start: number, end: number): Shopper {
  const days = (end - start) / DAY;
  const joinAt = rnd.chance(0.3) ? start + Math.round(rnd.uniform(0, 0.6) * days * DAY) : start;
  const churns = rnd.chance(0.5);
  const churnAt = churns ? joinAt + Math.round(rnd.uniform(4, 1.6 * days) * DAY) : Infinity;
  return {
    id: `u${i}`,
    rate: Math.min(4, rnd.logNormal(0.45, 0.8)),
    joinAt,
    churnAt,
    driftMs: Math.round(rnd.uniform(4, 18) * DAY),
    buyer: Math.min(1, Math.max(0, 0.45 + 0.22 * rnd.normal())),
    priceLevel: Math.round(rnd.logNormal(25, 0.6) * 100) / 100,
    hesitancy: rnd.next() ** 1.5,
    support: 0.02 + 0.05 * rnd.next(),
    sessions: 0,
    carts: 0,
    cart: undefined,
    returnAt: 0,
    queue: [],
    pos: 0,
  };
}

/** 1 while engaged, falling to 0.15 over the drift before the shopper leaves. */
function engagement(s: Shopper, t: number): number {
  if (s.churnAt === Infinity) return 1;
  const drift = (t - (s.churnAt - s.driftMs)) / s.driftMs;
  return drift <= 0 ? 1 : Math.max(0.15, 1 - 0.85 * Math.min(1, drift));
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Builds one session's events into the shopper's queue; false if it is empty. */
function planSession(rnd: Random, s: Shopper, at: number): boolean {
  const m = engagement(s, at);
  const decline = 1 - m;
  const sessionId = `${s.id}-s${s.sessions++}`;
  const q: UserEvent[] = [];
  let t = at;
  const emit = (eventType: UserEvent['eventType'], extra?: Partial<UserEvent>): UserEvent => {
    const e: UserEvent = { userId: s.id, eventType, eventTime: t, sessionId, ...extra };
    q.push(e);
    t += 2000 + Math.round(rnd.exponential(30_000));
    return e;
  };
  emit('session_start');
  if (s.cart && at - s.cart.last > CART_IDLE_LIMIT) s.cart = undefined;
  const views = 1 + Math.floor(rnd.exponential(1.5 + 5 * m));
  const addChance = (0.08 + 0.3 * s.buyer) * (0.4 + 0.6 * m);
  for (let v = 0; v < views; v++) {
    const r = rnd.next();
    if (r < 0.3) emit('page_view');
    else if (r < 0.45) emit('search');
    else {
      const productId = `p${rnd.int(1, 5000)}`;
      emit('product_view', { productId });
      if (rnd.chance(addChance)) addToCart(rnd, s, productId, t, emit);
      else if (s.cart && s.cart.items > 1 && rnd.chance(0.2 * s.hesitancy)) removeFromCart(rnd, s, t, emit);
    }
  }
  if (rnd.chance(s.support * (1 + 6 * decline))) emit('support_contact');
  if (s.cart) checkoutOrLeave(rnd, s, decline, t, emit);
  emit('session_end');
  s.queue = q;
  s.pos = 0;
  return true;
}

type Emit = (eventType: UserEvent['eventType'], extra?: Partial<UserEvent>) => UserEvent;

function addToCart(rnd: Random, s: Shopper, productId: string, t: number, emit: Emit): void {
  if (!s.cart) s.cart = { id: `${s.id}-c${s.carts++}`, items: 0, value: 0, last: t, checkout: false };
  const quantity = rnd.chance(0.2) ? rnd.int(2, 3) : 1;
  const price = Math.round(rnd.logNormal(s.priceLevel, 0.5) * 100) / 100;
  emit('add_to_cart', { productId, cartId: s.cart.id, price, quantity });
  s.cart.items += quantity;
  s.cart.value += price * quantity;
  s.cart.last = t;
}

function removeFromCart(rnd: Random, s: Shopper, t: number, emit: Emit): void {
  const cart = s.cart!;
  const price = Math.round((cart.value / cart.items) * 100) / 100;
  emit('remove_from_cart', { productId: `p${rnd.int(1, 5000)}`, cartId: cart.id, price, quantity: 1 });
  cart.items -= 1;
  cart.value = Math.max(0, cart.value - price);
  cart.last = t;
}

/**
 * The end of a session with a cart: check out and buy now, or leave the cart;
 * a left cart may be bought on a later return, with odds the features can see.
 */
function checkoutOrLeave(rnd: Random, s: Shopper, decline: number, t: number, emit: Emit): void {
  const cart = s.cart!;
  if (cart.items <= 0) return;
  const valueTerm = Math.log(cart.value / 60);
  if (rnd.chance(0.2 + 0.5 * s.buyer - 0.3 * decline)) {
    emit('checkout_start', { cartId: cart.id });
    cart.checkout = true;
    cart.last = t;
    if (rnd.chance(sigmoid(0.2 + 3 * (s.buyer - 0.45) - 0.5 * valueTerm - 2 * decline - s.hesitancy))) {
      buy(s, emit);
      return;
    }
  }
  const comeBack = -1.3 + 1.6 * (cart.checkout ? 1 : 0) + 5 * (s.buyer - 0.45) - 0.7 * valueTerm - 1.2 * s.hesitancy - 2.5 * decline;
  if (rnd.chance(sigmoid(comeBack))) {
    const soon = rnd.chance(0.15);
    s.returnAt = t + Math.round(soon ? rnd.uniform(5, 40) * MINUTE : rnd.uniform(1.2, 20) * HOUR);
  }
}

function buy(s: Shopper, emit: Emit): void {
  const cart = s.cart!;
  emit('purchase', { cartId: cart.id, price: Math.round(cart.value * 100) / 100, quantity: 1 });
  s.cart = undefined;
}

/** A short visit to buy the cart left behind. */
function planReturn(rnd: Random, s: Shopper, at: number): boolean {
  if (!s.cart || s.cart.items <= 0) return planSession(rnd, s, at);
  const sessionId = `${s.id}-s${s.sessions++}`;
  const q: UserEvent[] = [];
  let t = at;
  const emit: Emit = (eventType, extra) => {
    const e: UserEvent = { userId: s.id, eventType, eventTime: t, sessionId, ...extra };
    q.push(e);
    t += 2000 + Math.round(rnd.exponential(20_000));
    return e;
  };
  emit('session_start');
  emit('page_view');
  emit('checkout_start', { cartId: s.cart.id });
  buy(s, emit);
  emit('session_end');
  s.queue = q;
  s.pos = 0;
  return true;
}

/** A binary min-heap of user indices keyed by due time (ties: lower index). */
class MinHeap {
  private readonly items: Int32Array;
  size = 0;

  constructor(private readonly key: Float64Array, capacity: number) {
    this.items = new Int32Array(capacity);
  }

  private less(a: number, b: number): boolean {
    const ka = this.key[a];
    const kb = this.key[b];
    return ka < kb || (ka === kb && a < b);
  }

  push(i: number): void {
    const h = this.items;
    let k = this.size++;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!this.less(i, h[parent])) break;
      h[k] = h[parent];
      k = parent;
    }
    h[k] = i;
  }

  pop(): number {
    const h = this.items;
    const top = h[0];
    const last = h[--this.size];
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= this.size) break;
      if (c + 1 < this.size && this.less(h[c + 1], h[c])) c++;
      if (!this.less(h[c], last)) break;
      h[k] = h[c];
      k = c;
    }
    h[k] = last;
    return top;
  }
}
