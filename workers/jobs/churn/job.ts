import { CHURN_FEATURES, churnFeatures, newChurnState, updateChurn, type ChurnState } from './features.js';
import type { UserEvent } from '../../events/types.js';
import { DAY_MS, dayOf } from '../../features/time.js';
import { formatScore, isoTime, usersFromSnapshot, type JobOutputs, type ScoreModel, type StreamJob, type UserWrite } from '../../runtime/job.js';

export interface ChurnPartitionState {
  users: Map<string, ChurnState>;
  watermark: number;
}

export type RiskLevel = 'low' | 'medium' | 'high';

export const DEFAULT_HIGH_RISK_THRESHOLD = 0.7;
const MEDIUM_RISK_AT = 0.4;

/**
 * Risk bands of the system Sluice replaces (medium from 0.4, high from 0.7);
 * the job's model threshold moves the high band, and medium never starts above it.
 */
export function riskLevel(score: number, highAt = DEFAULT_HIGH_RISK_THRESHOLD): RiskLevel {
  if (score >= highAt) return 'high';
  if (score >= Math.min(MEDIUM_RISK_AT, highAt)) return 'medium';
  return 'low';
}

/**
 * The churn job: every event updates its user's features; each user touched
 * by a batch is scored once, as of their latest event, and when the
 * partition's event time passes midnight every user of the partition is
 * rescored as of that midnight (the model is trained on daily cut-offs).
 * Scores depend only on the events and their order in the partition, not on
 * how the stream was cut into batches: a replay after a crash writes exactly
 * what an uninterrupted run wrote.
 */
export class ChurnJob implements StreamJob<ChurnPartitionState> {
  readonly type = 'churn' as const;
  private readonly width = CHURN_FEATURES.length;
  private buffer = new Float32Array(0);

  constructor(
    private readonly model: ScoreModel,
    private readonly highRiskAt = DEFAULT_HIGH_RISK_THRESHOLD,
  ) {}

  get modelVersion(): string {
    return this.model.version;
  }

  newState(): ChurnPartitionState {
    return { users: new Map(), watermark: -1 };
  }

  snapshot(state: ChurnPartitionState): unknown {
    return { watermark: state.watermark, users: Object.fromEntries(state.users) };
  }

  restore(snapshot: unknown): ChurnPartitionState {
    const users = usersFromSnapshot<ChurnState>(snapshot, 'churn');
    const watermark = Number((snapshot as { watermark?: unknown }).watermark ?? -1);
    return { users, watermark };
  }

  watermark(state: ChurnPartitionState): number {
    return state.watermark;
  }

  /**
   * No timers: the wall clock does not move churn's event time, so the
   * midnight rescoring stays a function of the events alone.
   */
  async advanceTo(): Promise<JobOutputs> {
    return { writes: [], alerts: [], scoredRows: 0, inferenceMs: 0 };
  }

  async process(state: ChurnPartitionState, events: readonly UserEvent[]): Promise<JobOutputs> {
    const rows: Array<{ userId: string; asOf: number }> = [];
    const touched = new Map<string, ChurnState>();
    for (const e of events) {
      const day = dayOf(e.eventTime);
      if (state.watermark >= 0 && day > dayOf(state.watermark)) {
        // Event time crossed midnight: rescore every user of the partition as of that
        // midnight (how the model was trained), so users who went quiet see their risk rise.
        this.flushTouched(touched, rows);
        this.snapshotAll(state, day * DAY_MS, rows);
      }
      if (e.eventTime > state.watermark) state.watermark = e.eventTime;
      let user = state.users.get(e.userId);
      if (!user) {
        user = newChurnState();
        state.users.set(e.userId, user);
      }
      updateChurn(user, e);
      touched.delete(e.userId);
      touched.set(e.userId, user);
    }
    this.flushTouched(touched, rows);
    return this.score(rows);
  }

  /** Users touched since the last snapshot are scored as of their latest event. */
  private flushTouched(touched: Map<string, ChurnState>, rows: Array<{ userId: string; asOf: number }>): void {
    for (const [userId, user] of touched) this.addRow(rows, userId, user, user.last);
    touched.clear();
  }

  private snapshotAll(state: ChurnPartitionState, asOf: number, rows: Array<{ userId: string; asOf: number }>): void {
    for (const [userId, user] of state.users) this.addRow(rows, userId, user, asOf);
  }

  private addRow(rows: Array<{ userId: string; asOf: number }>, userId: string, user: ChurnState, asOf: number): void {
    const row = rows.length;
    if (this.buffer.length < (row + 1) * this.width) {
      const bigger = new Float32Array(Math.max(256, (row + 1) * 2) * this.width);
      bigger.set(this.buffer);
      this.buffer = bigger;
    }
    churnFeatures(user, asOf, this.buffer, row * this.width);
    rows.push({ userId, asOf });
  }

  private async score(rows: Array<{ userId: string; asOf: number }>): Promise<JobOutputs> {
    if (rows.length === 0) return { writes: [], alerts: [], scoredRows: 0, inferenceMs: 0 };
    const started = performance.now();
    const scores = await this.model.score(this.buffer.subarray(0, rows.length * this.width), rows.length);
    const inferenceMs = performance.now() - started;
    // One write per user: the last row of a user is what an uninterrupted run ends with.
    const last = new Map<string, number>();
    rows.forEach((r, i) => {
      last.delete(r.userId);
      last.set(r.userId, i);
    });
    const writes: UserWrite[] = [];
    for (const [userId, i] of last) {
      const score = scores[i];
      writes.push({
        userId,
        fields: {
          churn_score: formatScore(score),
          risk_level: riskLevel(score, this.highRiskAt),
          model_version: this.model.version,
          updated_at: isoTime(rows[i].asOf),
        },
      });
    }
    return { writes, alerts: [], scoredRows: rows.length, inferenceMs };
  }
}
