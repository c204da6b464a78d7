import type { UserEvent } from '../events/types.js';
import { abandonCart, CART_FEATURES, cartFeatures, CartTable, openCart, updateCart } from '../jobs/cart/features.js';
import { CHURN_FEATURES, churnFeatures, ChurnTable, RING_DAYS, updateChurn } from '../jobs/churn/features.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../features/time.js';

/** Labelled rows: x is rows × width float32, as the workers compute them. */
export interface Rows {
  width: number;
  x: Float32Array;
  y: Uint8Array;
  users: string[];
  /** The time the features were computed at (cut-off or timer). */
  asOf: Float64Array;
}

/** The rows `idx` of `rows`, in that order. */
export function pickRows(rows: Rows, idx: readonly number[]): Rows {
  const x = new Float32Array(idx.length * rows.width);
  idx.forEach((i, r) => x.set(rows.x.subarray(i * rows.width, (i + 1) * rows.width), r * rows.width));
  return {
    width: rows.width,
    x,
    y: Uint8Array.from(idx.map((i) => rows.y[i])),
    users: idx.map((i) => rows.users[i]),
    asOf: Float64Array.from(idx.map((i) => rows.asOf[i])),
  };
}

export interface ChurnLabelling {
  /** Feature snapshots are taken at these times (epoch ms). */
  cutoffs: number[];
  /** Churned = no event in [cut-off, cut-off + horizon). */
  horizonDays: number;
}

export interface CartLabelling {
  /** The worker's ABANDON_WINDOW_MIN: idle time before the timer scores a cart. */
  windowMinutes: number;
  /** Abandoned = no purchase by the user within this long after the last cart activity. */
  horizonHours: number;
}

class RowBuffer {
  private x: number[] = [];
  private y: number[] = [];
  private asOf: number[] = [];
  readonly users: string[] = [];
  private readonly scratch: Float32Array;

  constructor(readonly width: number) {
    this.scratch = new Float32Array(width);
  }

  /** Adds a row from the features written into `scratch()`; returns its index. */
  add(user: string, asOf: number, label: number): number {
    for (let j = 0; j < this.width; j++) this.x.push(this.scratch[j]);
    this.y.push(label);
    this.asOf.push(asOf);
    this.users.push(user);
    return this.y.length - 1;
  }

  row(): Float32Array {
    return this.scratch;
  }

  label(i: number): number {
    return this.y[i];
  }

  setLabel(i: number, label: number): void {
    this.y[i] = label;
  }

  finish(keep: (i: number) => boolean = () => true): Rows {
    const all: Rows = { width: this.width, x: Float32Array.from(this.x), y: Uint8Array.from(this.y), users: this.users, asOf: Float64Array.from(this.asOf) };
    return pickRows(all, this.y.map((_, i) => i).filter(keep));
  }
}

/**
 * Churn rows, streaming over events in event-time order with the workers'
 * own updateChurn/churnFeatures. At each cut-off, every user active in the
 * last RING_DAYS days gets a row; the label turns 0 when the user is seen
 * again within the horizon.
 */
export class ChurnRowsBuilder {
  /** The same compact state the worker keeps, so rows and live scores cannot drift apart. */
  readonly states = new ChurnTable();
  private readonly rows = new RowBuffer(CHURN_FEATURES.length);
  private readonly pending = new Map<string, { row: number; until: number }[]>();
  private next = 0;
  private readonly horizon: number;

  constructor(private readonly o: ChurnLabelling) {
    this.horizon = o.horizonDays * DAY_MS;
  }

  add(e: UserEvent): void {
    while (this.next < this.o.cutoffs.length && e.eventTime >= this.o.cutoffs[this.next]) this.snapshot(this.o.cutoffs[this.next++]);
    const waiting = this.pending.get(e.userId);
    if (waiting) {
      for (const p of waiting) if (e.eventTime < p.until) this.rows.setLabel(p.row, 0);
      this.pending.delete(e.userId);
    }
    updateChurn(this.states, this.states.slot(e.userId), e);
  }

  private snapshot(cutoff: number): void {
    const t = this.states;
    for (let slot = 0; slot < t.size; slot++) {
      if (t.last(slot) < cutoff - RING_DAYS * DAY_MS) continue;
      churnFeatures(t, slot, cutoff, this.rows.row(), 0);
      const user = t.id(slot);
      const row = this.rows.add(user, cutoff, 1);
      const list = this.pending.get(user);
      if (list) list.push({ row, until: cutoff + this.horizon });
      else this.pending.set(user, [{ row, until: cutoff + this.horizon }]);
    }
  }

  /** `end`: the end of the event data; cut-offs whose horizon passes it are an error. */
  finish(end: number): Rows {
    const late = this.o.cutoffs.find((c) => c + this.horizon > end);
    if (late !== undefined) throw new Error(`churn cut-off ${new Date(late).toISOString()} + ${this.o.horizonDays} d horizon runs past the end of the data`);
    return this.rows.finish();
  }
}

/**
 * Cart rows, streaming over events with the cart worker's own rules: a cart
 * idle for the window is scored at lastActivity + window and then abandoned
 * (abandonCart); its label is 1 unless the user buys within the horizon after
 * the last cart activity.
 */
export class CartRowsBuilder {
  readonly states = new CartTable();
  private readonly rows = new RowBuffer(CART_FEATURES.length);
  private readonly pending = new Map<string, { row: number; until: number }[]>();
  private readonly horizonEnd: number[] = [];
  private readonly window: number;
  private readonly horizon: number;

  constructor(o: CartLabelling) {
    this.window = o.windowMinutes * MINUTE_MS;
    this.horizon = o.horizonHours * HOUR_MS;
  }

  add(e: UserEvent): void {
    const s = this.states.slot(e.userId);
    // The worker's timer fires when event time passes lastActivity + window;
    // a user's cart features only change with that user's cart events, so
    // firing it at the user's next event gives the same row.
    this.fireIfIdle(e.userId, s, e.eventTime);
    if (e.eventType === 'purchase') {
      const waiting = this.pending.get(e.userId);
      if (waiting) {
        for (const p of waiting) if (e.eventTime <= p.until) this.rows.setLabel(p.row, 0);
        this.pending.delete(e.userId);
      }
    }
    updateCart(this.states, s, e);
  }

  private fireIfIdle(user: string, s: number, now: number): void {
    const cart = openCart(this.states, s);
    if (!cart || cart.lastActivity + this.window > now) return;
    const due = cart.lastActivity + this.window;
    cartFeatures(this.states, s, due, this.rows.row(), 0);
    const row = this.rows.add(user, due, 1);
    const until = cart.lastActivity + this.horizon;
    this.horizonEnd[row] = until;
    const list = this.pending.get(user);
    if (list) list.push({ row, until });
    else this.pending.set(user, [{ row, until }]);
    abandonCart(this.states, s);
  }

  /** Fires the timers due by `end` and drops rows whose horizon runs past it unbought (their label is unknown). */
  finish(end: number): Rows {
    for (let s = 0; s < this.states.size; s++) this.fireIfIdle(this.states.id(s), s, end);
    return this.rows.finish((i) => this.horizonEnd[i] <= end || this.rows.label(i) === 0);
  }
}
