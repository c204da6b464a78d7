import type { UserEvent } from '../../events/types.js';
import { legacyUsers, UserTable, type Page, type StateFormat, type StateStore } from '../../state/table.js';
import { DAY_MS, dayOf } from '../../features/time.js';

/**
 * Per-user churn features. The model's input is a float vector in exactly
 * this order; the names go into the ONNX model's metadata and a model whose
 * names differ is refused (workers/models/scorer.ts).
 */
export const CHURN_FEATURES: readonly string[] = [
  'events_1d',
  'events_7d',
  'events_28d',
  'active_days_7d',
  'active_days_28d',
  'sessions_7d',
  'sessions_28d',
  'events_per_session_28d',
  'activity_trend_7d_vs_28d',
  'product_views_28d',
  'cart_adds_28d',
  'purchases_28d',
  'purchases_per_cart_add_28d',
  'support_contacts_28d',
  'days_since_last_event',
  'days_since_last_purchase',
  'tenure_days',
  'purchases_total',
  'revenue_total_log',
];

/** Counters kept per day in the sliding-window ring, in this order. */
const EVENTS = 0;
const SESSIONS = 1;
const PRODUCT_VIEWS = 2;
const CART_ADDS = 3;
const PURCHASES = 4;
const SUPPORT = 5;
const COUNTERS = 6;
/** Days in the ring: the longest window. */
export const RING_DAYS = 28;
/** Recency features saturate here, and it stands for "never". */
const CAP_DAYS = 90;
const RING = RING_DAYS * COUNTERS;

/*
 * One user's record, 208 bytes (little-endian):
 *   f64 first, f64 last, f64 lastPurchase (-1: never), f64 revenue,
 *   i32 day (newest day the ring holds, days since the epoch; -1 before any event),
 *   u32 purchases, u8 ring[RING_DAYS * COUNTERS].
 * ring[(day % RING_DAYS) * COUNTERS + counter] holds the day's counters for days
 * (day - RING_DAYS, day]. A user with a counter past 255 in one day has the
 * ring widened to 32 bits (kept beside the record, and in the record's tail
 * when encoded); the u8 ring is then unused.
 */
const F_FIRST = 0;
const F_LAST = 1;
const F_LAST_PURCHASE = 2;
const F_REVENUE = 3;
const I_DAY = 8;
const U_PURCHASES = 9;
const RING_AT = 40;
const RECORD_BYTES = RING_AT + RING;
const WIDE_BYTES = RING * 4;

export const CHURN_STATE_FORMAT: StateFormat = { name: 'churn', version: 1, features: CHURN_FEATURES };

/** The churn state of one partition's users: one 208-byte record each. */
export class ChurnTable extends UserTable {
  readonly format = CHURN_STATE_FORMAT;
  protected readonly recordBytes = RECORD_BYTES;

  constructor(store?: StateStore) {
    super(store, RECORD_BYTES);
  }
  /** Rings widened to 32-bit counters, by slot. */
  readonly wide = new Map<number, Uint32Array>();

  protected init(p: Page, b: number): void {
    const f = b >> 3;
    p.f64[f + F_FIRST] = -1;
    p.f64[f + F_LAST] = -1;
    p.f64[f + F_LAST_PURCHASE] = -1;
    p.f64[f + F_REVENUE] = 0;
    p.i32[(b >> 2) + I_DAY] = -1;
    p.u32[(b >> 2) + U_PURCHASES] = 0;
    p.u8.fill(0, b + RING_AT, b + RECORD_BYTES);
  }

  protected override tailBytes(slot: number): number {
    return this.wide.size !== 0 && this.wide.has(slot) ? WIDE_BYTES : 0;
  }

  protected override writeTail(slot: number, out: Uint8Array, at: number): void {
    const w = this.wide.get(slot)!;
    const view = new DataView(out.buffer, out.byteOffset + at, WIDE_BYTES);
    for (let i = 0; i < RING; i++) view.setUint32(i * 4, w[i], true);
  }

  protected override readTail(slot: number, src: Uint8Array, at: number, len: number): void {
    if (len === 0) return;
    if (len !== WIDE_BYTES) throw new Error(`churn record tail of ${len} bytes, expected ${WIDE_BYTES}`);
    const view = new DataView(src.buffer, src.byteOffset + at, WIDE_BYTES);
    const w = new Uint32Array(RING);
    for (let i = 0; i < RING; i++) w[i] = view.getUint32(i * 4, true);
    this.wide.set(slot, w);
  }

  protected override release(slot: number): void {
    if (this.wide.size !== 0) this.wide.delete(slot);
  }

  protected override extraBytes(): number {
    return this.wide.size * (WIDE_BYTES + 64);
  }

  /** Time of the user's latest event, or -1. */
  last(slot: number): number {
    return this.page(slot).f64[(this.base(slot) >> 3) + F_LAST];
  }
}

/** Folds one event into a user's state. O(1): at most RING_DAYS buckets are cleared. */
export function updateChurn(t: ChurnTable, slot: number, e: UserEvent): void {
  t.touch(slot);
  const p = t.page(slot);
  const b = t.base(slot);
  const f = b >> 3;
  const i = b >> 2;
  const time = e.eventTime;
  const d = dayOf(time);
  if (p.f64[f + F_FIRST] < 0 || time < p.f64[f + F_FIRST]) p.f64[f + F_FIRST] = time;
  if (time > p.f64[f + F_LAST]) p.f64[f + F_LAST] = time;
  if (d > p.i32[i + I_DAY]) advance(t, slot, p, b, d);
  if (e.eventType === 'purchase') {
    p.u32[i + U_PURCHASES] += 1;
    p.f64[f + F_REVENUE] += (e.price ?? 0) * (e.quantity ?? 1);
    if (time > p.f64[f + F_LAST_PURCHASE]) p.f64[f + F_LAST_PURCHASE] = time;
  }
  // An event older than the ring still counts in totals and recency, not in windows.
  if (p.i32[i + I_DAY] - d >= RING_DAYS) return;
  const at = (d % RING_DAYS) * COUNTERS;
  increment(t, slot, p, b, at + EVENTS);
  const c = counterOf(e.eventType);
  if (c >= 0) increment(t, slot, p, b, at + c);
}

function increment(t: ChurnTable, slot: number, p: Page, b: number, k: number): void {
  const w = t.wide.size !== 0 ? t.wide.get(slot) : undefined;
  if (w) {
    w[k] += 1;
    return;
  }
  const at = b + RING_AT + k;
  if (p.u8[at] < 255) {
    p.u8[at] += 1;
    return;
  }
  const wide = new Uint32Array(RING);
  for (let j = 0; j < RING; j++) wide[j] = p.u8[b + RING_AT + j];
  wide[k] += 1;
  t.wide.set(slot, wide);
}

function counterOf(type: UserEvent['eventType']): number {
  switch (type) {
    case 'session_start':
      return SESSIONS;
    case 'product_view':
      return PRODUCT_VIEWS;
    case 'add_to_cart':
      return CART_ADDS;
    case 'purchase':
      return PURCHASES;
    case 'support_contact':
      return SUPPORT;
    default:
      return -1;
  }
}

function advance(t: ChurnTable, slot: number, p: Page, b: number, d: number): void {
  const i = b >> 2;
  const held = p.i32[i + I_DAY];
  const from = held < 0 ? d - RING_DAYS + 1 : Math.max(held + 1, d - RING_DAYS + 1);
  const w = t.wide.size !== 0 ? t.wide.get(slot) : undefined;
  for (let day = from; day <= d; day++) {
    const at = (day % RING_DAYS) * COUNTERS;
    if (w) w.fill(0, at, at + COUNTERS);
    else p.u8.fill(0, b + RING_AT + at, b + RING_AT + at + COUNTERS);
  }
  p.i32[i + I_DAY] = d;
}

/**
 * Writes CHURN_FEATURES.length values for the user as of `asOf` (epoch ms, at
 * or after the last event folded in) into out[offset...]. Windows end with the
 * day of `asOf`: "7d" is that day and the six before it.
 */
export function churnFeatures(t: ChurnTable, slot: number, asOf: number, out: Float32Array, offset: number): void {
  const p = t.page(slot);
  const b = t.base(slot);
  const f = b >> 3;
  const held = p.i32[(b >> 2) + I_DAY];
  const w = t.wide.size !== 0 ? t.wide.get(slot) : undefined;
  const ring = w ?? p.u8;
  const r0 = w ? 0 : b + RING_AT;
  let events28 = 0;
  let sessions28 = 0;
  let views28 = 0;
  let adds28 = 0;
  let purchases28 = 0;
  let support28 = 0;
  let events1 = 0;
  let events7 = 0;
  let sessions7 = 0;
  let active7 = 0;
  let active28 = 0;
  const asOfDay = dayOf(asOf);
  // Days both in the window ending at asOf and still held by the ring.
  const newest = Math.min(asOfDay, held);
  const oldest = Math.max(asOfDay, held) - RING_DAYS + 1;
  for (let day = held < 0 ? oldest : newest; day >= oldest; day--) {
    const base = r0 + (day % RING_DAYS) * COUNTERS;
    const events = ring[base + EVENTS];
    if (events === 0) continue;
    const age = asOfDay - day;
    active28++;
    events28 += events;
    sessions28 += ring[base + SESSIONS];
    views28 += ring[base + PRODUCT_VIEWS];
    adds28 += ring[base + CART_ADDS];
    purchases28 += ring[base + PURCHASES];
    support28 += ring[base + SUPPORT];
    if (age < 7) {
      active7++;
      events7 += events;
      sessions7 += ring[base + SESSIONS];
      if (age === 0) events1 = events;
    }
  }
  const earlierWeekly = (events28 - events7) / 3;
  // Written one by one, in CHURN_FEATURES order: this runs once per scored row.
  let i = offset;
  out[i++] = events1;
  out[i++] = events7;
  out[i++] = events28;
  out[i++] = active7;
  out[i++] = active28;
  out[i++] = sessions7;
  out[i++] = sessions28;
  out[i++] = events28 / Math.max(1, sessions28);
  out[i++] = (events7 + 1) / (earlierWeekly + 1);
  out[i++] = views28;
  out[i++] = adds28;
  out[i++] = purchases28;
  out[i++] = purchases28 / Math.max(1, adds28);
  out[i++] = support28;
  const first = p.f64[f + F_FIRST];
  out[i++] = daysSince(p.f64[f + F_LAST], asOf);
  out[i++] = daysSince(p.f64[f + F_LAST_PURCHASE], asOf);
  out[i++] = first < 0 ? 0 : Math.min(CAP_DAYS, Math.max(0, (asOf - first) / DAY_MS));
  out[i++] = p.u32[(b >> 2) + U_PURCHASES];
  out[i] = Math.log1p(p.f64[f + F_REVENUE]);
}


function daysSince(t: number, asOf: number): number {
  if (t < 0) return CAP_DAYS;
  return Math.min(CAP_DAYS, Math.max(0, (asOf - t) / DAY_MS));
}

/** The users of a checkpoint of format version 1 (JSON: users by id, each {day, ring[168], first, last, lastPurchase, purchases, revenue}). */
export function legacyChurnUsers(snapshot: unknown): ChurnTable {
  const t = new ChurnTable();
  for (const [id, u] of legacyUsers(snapshot, 'churn')) {
    const s = u as { day: number; ring: number[]; first: number; last: number; lastPurchase: number; purchases: number; revenue: number };
    if (!Array.isArray(s.ring) || s.ring.length !== RING) throw new Error(`churn checkpoint state: user ${id} has no ring of ${RING} counters`);
    const slot = t.slot(id);
    const p = t.page(slot);
    const b = t.base(slot);
    p.f64[(b >> 3) + F_FIRST] = s.first;
    p.f64[(b >> 3) + F_LAST] = s.last;
    p.f64[(b >> 3) + F_LAST_PURCHASE] = s.lastPurchase;
    p.f64[(b >> 3) + F_REVENUE] = s.revenue;
    p.i32[(b >> 2) + I_DAY] = s.day;
    p.u32[(b >> 2) + U_PURCHASES] = s.purchases;
    if (s.ring.some((v) => v > 255)) t.wide.set(slot, Uint32Array.from(s.ring));
    else p.u8.set(s.ring, b + RING_AT);
  }
  t.settle();
  return t;
}
