import type { UserEvent } from '../../events/types.js';
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

/**
 * The state of one user: plain JSON (it is checkpointed), fixed size. `ring`
 * holds COUNTERS counters for each of the last RING_DAYS days:
 * ring[(day % RING_DAYS) * COUNTERS + counter], valid for days
 * (day - RING_DAYS, day].
 */
export interface ChurnState {
  /** Newest day (days since the epoch) the ring holds; -1 before any event. */
  day: number;
  ring: number[];
  first: number;
  last: number;
  /** Time of the last purchase, or -1. */
  lastPurchase: number;
  purchases: number;
  revenue: number;
}

export function newChurnState(): ChurnState {
  return { day: -1, ring: new Array<number>(RING_DAYS * COUNTERS).fill(0), first: -1, last: -1, lastPurchase: -1, purchases: 0, revenue: 0 };
}

/** Folds one event into the state. O(1): at most RING_DAYS buckets are cleared. */
export function updateChurn(s: ChurnState, e: UserEvent): void {
  const t = e.eventTime;
  const d = dayOf(t);
  if (s.first < 0 || t < s.first) s.first = t;
  if (t > s.last) s.last = t;
  if (d > s.day) advance(s, d);
  if (e.eventType === 'purchase') {
    s.purchases += 1;
    s.revenue += (e.price ?? 0) * (e.quantity ?? 1);
    if (t > s.lastPurchase) s.lastPurchase = t;
  }
  // An event older than the ring still counts in totals and recency, not in windows.
  if (s.day - d >= RING_DAYS) return;
  const base = (d % RING_DAYS) * COUNTERS;
  s.ring[base + EVENTS] += 1;
  const c = counterOf(e.eventType);
  if (c >= 0) s.ring[base + c] += 1;
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

function advance(s: ChurnState, d: number): void {
  const from = s.day < 0 ? d - RING_DAYS + 1 : Math.max(s.day + 1, d - RING_DAYS + 1);
  for (let day = from; day <= d; day++) {
    const base = (day % RING_DAYS) * COUNTERS;
    for (let c = 0; c < COUNTERS; c++) s.ring[base + c] = 0;
  }
  s.day = d;
}

/**
 * Writes CHURN_FEATURES.length values for the user as of `asOf` (epoch ms, at
 * or after the last event folded in) into out[offset...]. Windows end with the
 * day of `asOf`: "7d" is that day and the six before it.
 */
export function churnFeatures(s: ChurnState, asOf: number, out: Float32Array, offset: number): void {
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
  const newest = Math.min(asOfDay, s.day);
  const oldest = Math.max(asOfDay, s.day) - RING_DAYS + 1;
  for (let day = s.day < 0 ? oldest : newest; day >= oldest; day--) {
    const base = (day % RING_DAYS) * COUNTERS;
    const events = s.ring[base + EVENTS];
    if (events === 0) continue;
    const age = asOfDay - day;
    active28++;
    events28 += events;
    sessions28 += s.ring[base + SESSIONS];
    views28 += s.ring[base + PRODUCT_VIEWS];
    adds28 += s.ring[base + CART_ADDS];
    purchases28 += s.ring[base + PURCHASES];
    support28 += s.ring[base + SUPPORT];
    if (age < 7) {
      active7++;
      events7 += events;
      sessions7 += s.ring[base + SESSIONS];
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
  out[i++] = daysSince(s.last, asOf);
  out[i++] = daysSince(s.lastPurchase, asOf);
  out[i++] = s.first < 0 ? 0 : Math.min(CAP_DAYS, Math.max(0, (asOf - s.first) / DAY_MS));
  out[i++] = s.purchases;
  out[i] = Math.log1p(s.revenue);
}


function daysSince(t: number, asOf: number): number {
  if (t < 0) return CAP_DAYS;
  return Math.min(CAP_DAYS, Math.max(0, (asOf - t) / DAY_MS));
}
