import { CART_FEATURES, abandonCart, cartFeatures, newCartState, openCart, updateCart, type CartState } from './features.js';
import type { UserEvent } from '../../events/types.js';
import { MINUTE_MS } from '../../features/time.js';
import { formatScore, isoTime, usersFromSnapshot, type CartAlert, type JobOutputs, type ScoreModel, type StreamJob, type UserWrite } from '../../runtime/job.js';
import { TimerHeap } from './timer-heap.js';

export interface CartJobSettings {
  abandonWindowMinutes: number;
  abandonThreshold: number;
}

export interface CartPartitionState {
  users: Map<string, CartState>;
  /** Event time of the partition: the highest event time seen, or where the idle clock moved it. */
  watermark: number;
  /** Abandonment timers by due time; rebuilt from the open carts on restore, never checkpointed. */
  timers: TimerHeap;
}

interface DueCart {
  userId: string;
  cartId: string;
  items: number;
  value: number;
  lastActivity: number;
  abandonedAt: number;
}

/**
 * The cart job: cart sessions per user and an abandonment timer per open cart
 * at last activity + window, in event time. Timers fire when the partition's
 * event time passes them, before the event that moved it is applied, so the
 * outcome depends only on the order of events in the partition. All carts that
 * fall due in one batch are scored in one model call.
 */
export class CartJob implements StreamJob<CartPartitionState> {
  readonly type = 'cart' as const;
  private readonly width = CART_FEATURES.length;
  private readonly windowMs: number;
  private buffer = new Float32Array(0);

  constructor(
    private readonly model: ScoreModel,
    private readonly settings: CartJobSettings,
  ) {
    this.windowMs = settings.abandonWindowMinutes * MINUTE_MS;
  }

  get modelVersion(): string {
    return this.model.version;
  }

  newState(): CartPartitionState {
    return { users: new Map(), watermark: -1, timers: new TimerHeap() };
  }

  snapshot(state: CartPartitionState): unknown {
    return { watermark: state.watermark, users: Object.fromEntries(state.users) };
  }

  restore(snapshot: unknown): CartPartitionState {
    const users = usersFromSnapshot<CartState>(snapshot, 'cart');
    const state: CartPartitionState = {
      users,
      watermark: Number((snapshot as { watermark?: unknown }).watermark ?? -1),
      timers: new TimerHeap(),
    };
    for (const [userId, user] of users) {
      const open = openCart(user);
      if (open) state.timers.push(open.lastActivity + this.windowMs, userId);
    }
    return state;
  }

  watermark(state: CartPartitionState): number {
    return state.watermark;
  }

  async process(state: CartPartitionState, events: readonly UserEvent[]): Promise<JobOutputs> {
    const due: DueCart[] = [];
    for (const e of events) {
      if (e.eventTime > state.watermark) {
        state.watermark = e.eventTime;
        this.fireDue(state, due);
      }
      let user = state.users.get(e.userId);
      if (!user) {
        user = newCartState();
        state.users.set(e.userId, user);
      }
      const before = openCart(user);
      updateCart(user, e);
      const after = openCart(user);
      if (after && (!before || before.cartId !== after.cartId || before.lastActivity !== after.lastActivity)) {
        state.timers.push(after.lastActivity + this.windowMs, e.userId);
      }
    }
    // A late event can leave a cart already past due: fire it now rather than wait for the next event.
    this.fireDue(state, due);
    return this.score(due);
  }

  async advanceTo(state: CartPartitionState, watermark: number): Promise<JobOutputs> {
    const due: DueCart[] = [];
    if (watermark > state.watermark) state.watermark = watermark;
    this.fireDue(state, due);
    return this.score(due);
  }

  /** Abandons every open cart whose timer is at or before the watermark; features are taken before the cart closes. */
  private fireDue(state: CartPartitionState, due: DueCart[]): void {
    for (;;) {
      const next = state.timers.peek();
      if (!next || next.due > state.watermark) return;
      state.timers.pop();
      const user = state.users.get(next.key);
      const open = user ? openCart(user) : undefined;
      // Timers are pushed on every cart activity; only the one matching the latest activity is live.
      if (!user || !open || open.lastActivity + this.windowMs !== next.due) continue;
      const row = due.length;
      this.ensureCapacity(row + 1);
      const abandonedAt = open.lastActivity + this.windowMs;
      cartFeatures(user, abandonedAt, this.buffer, row * this.width);
      abandonCart(user);
      due.push({ userId: next.key, cartId: open.cartId, items: open.items, value: open.value, lastActivity: open.lastActivity, abandonedAt });
    }
  }

  private ensureCapacity(rows: number): void {
    if (this.buffer.length >= rows * this.width) return;
    const bigger = new Float32Array(Math.max(rows * 2, 64) * this.width);
    bigger.set(this.buffer);
    this.buffer = bigger;
  }

  private async score(due: DueCart[]): Promise<JobOutputs> {
    if (due.length === 0) return { writes: [], alerts: [], scoredRows: 0, inferenceMs: 0 };
    const started = performance.now();
    const scores = await this.model.score(this.buffer.subarray(0, due.length * this.width), due.length);
    const inferenceMs = performance.now() - started;
    const writes: UserWrite[] = [];
    const alerts: CartAlert[] = [];
    due.forEach((cart, i) => {
      const score = Number(formatScore(scores[i]));
      writes.push({
        userId: cart.userId,
        fields: {
          cart_abandon_score: formatScore(score),
          cart_id: cart.cartId,
          cart_items: String(cart.items),
          cart_value: cart.value.toFixed(2),
          cart_abandoned_at: isoTime(cart.abandonedAt),
          cart_model_version: this.model.version,
        },
      });
      if (score >= this.settings.abandonThreshold) {
        alerts.push({ ...cart, score, modelVersion: this.model.version });
      }
    });
    return { writes, alerts, scoredRows: due.length, inferenceMs };
  }
}
