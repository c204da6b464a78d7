import { CART_FEATURES, CART_STATE_FORMAT, CartTable, abandonCart, cartFeatures, legacyCartUsers, openCart, openCartLast, updateCart } from './features.js';
import type { StateStore, UserTable } from '../../state/table.js';
import type { UserEvent } from '../../events/types.js';
import { MINUTE_MS } from '../../features/time.js';
import { emptyOutputs, formatScore, isoTime, ownTable, recordedWatermark, watermarkMeta, type JobOutputs, type ScoreModel, type StateMeta, type StreamJob, type UserWrite } from '../../runtime/job.js';
import type { CartAlert } from './alerts.js';
import type { CartSettings } from './config.js';
import { TimerHeap } from './timer-heap.js';

export interface CartPartitionState {
  readonly table: CartTable;
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
export class CartJob implements StreamJob<CartPartitionState, CartAlert> {
  readonly type = 'cart' as const;
  readonly stateFormat = CART_STATE_FORMAT;
  private readonly width = CART_FEATURES.length;
  private readonly windowMs: number;
  private buffer = new Float32Array(0);

  constructor(
    private readonly model: ScoreModel,
    private readonly settings: CartSettings,
    /** Where the users' records live (default in memory). */
    private readonly store: StateStore = { backend: 'memory' },
  ) {
    this.windowMs = settings.abandonWindowMinutes * MINUTE_MS;
  }

  get modelVersion(): string {
    return this.model.version;
  }

  newState(): CartPartitionState {
    return { table: this.newTable(), watermark: -1, timers: new TimerHeap() };
  }

  newTable(): CartTable {
    return new CartTable(this.store);
  }

  meta(state: CartPartitionState): StateMeta {
    return watermarkMeta(state);
  }

  restored(table: UserTable, meta: StateMeta): CartPartitionState {
    const state: CartPartitionState = { table: ownTable(this.type, table, CartTable), watermark: recordedWatermark(meta), timers: new TimerHeap() };
    for (let slot = 0; slot < state.table.size; slot++) {
      const last = openCartLast(state.table, slot);
      if (last >= 0) state.timers.push(last + this.windowMs, slot);
    }
    return state;
  }

  fromLegacy(snapshot: unknown): CartPartitionState {
    return this.restored(legacyCartUsers(snapshot), { watermark: recordedWatermark(snapshot as { watermark?: unknown }) });
  }

  watermark(state: CartPartitionState): number {
    return state.watermark;
  }

  /** Every open cart's timer has fired once event time is one window past the last event. */
  settledAt(state: CartPartitionState): number | undefined {
    return state.watermark < 0 ? undefined : state.watermark + this.windowMs;
  }

  async process(state: CartPartitionState, events: readonly UserEvent[]): Promise<JobOutputs<CartAlert>> {
    const due: DueCart[] = [];
    const table = state.table;
    for (const e of events) {
      if (e.eventTime > state.watermark) {
        state.watermark = e.eventTime;
        this.fireDue(state, due);
      }
      const slot = table.slot(e.userId);
      const cartBefore = table.open(slot);
      const lastBefore = openCartLast(table, slot);
      updateCart(table, slot, e);
      const lastAfter = openCartLast(table, slot);
      // The open cart's index changes only when a cart closes and another opens (a new cart, a new timer).
      if (lastAfter >= 0 && (lastBefore < 0 || cartBefore !== table.open(slot) || lastBefore !== lastAfter)) {
        state.timers.push(lastAfter + this.windowMs, slot);
      }
    }
    // A late event can leave a cart already past due: fire it now rather than wait for the next event.
    this.fireDue(state, due);
    return this.score(due);
  }

  async advanceTo(state: CartPartitionState, watermark: number): Promise<JobOutputs<CartAlert>> {
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
      const slot = next.key;
      const last = openCartLast(state.table, slot);
      // Timers are pushed on every cart activity; only the one matching the latest activity is live.
      if (last < 0 || last + this.windowMs !== next.due) continue;
      const open = openCart(state.table, slot)!;
      const row = due.length;
      this.ensureCapacity(row + 1);
      const abandonedAt = open.lastActivity + this.windowMs;
      cartFeatures(state.table, slot, abandonedAt, this.buffer, row * this.width);
      abandonCart(state.table, slot);
      due.push({ userId: state.table.id(slot), cartId: open.cartId, items: open.items, value: open.value, lastActivity: open.lastActivity, abandonedAt });
    }
  }

  private ensureCapacity(rows: number): void {
    if (this.buffer.length >= rows * this.width) return;
    const bigger = new Float32Array(Math.max(rows * 2, 64) * this.width);
    bigger.set(this.buffer);
    this.buffer = bigger;
  }

  private async score(due: DueCart[]): Promise<JobOutputs<CartAlert>> {
    if (due.length === 0) return emptyOutputs();
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
    return { writes, emits: alerts, scoredRows: due.length, inferenceMs };
  }
}
