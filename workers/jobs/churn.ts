import { CHURN_FEATURES, churnFeatures, newChurnState, updateChurn, type ChurnState } from '../features/churn.js';
import type { UserEvent } from '../events/types.js';
import { formatScore, isoTime, usersFromSnapshot, type JobOutputs, type ScoreModel, type StreamJob, type UserWrite } from './job.js';

export interface ChurnPartitionState {
  users: Map<string, ChurnState>;
  watermark: number;
}

export type RiskLevel = 'low' | 'medium' | 'high';

/** Risk bands of the system Sluice replaces. */
export function riskLevel(score: number): RiskLevel {
  if (score >= 0.7) return 'high';
  if (score >= 0.4) return 'medium';
  return 'low';
}

/**
 * The churn job: every event updates its user's features; each user touched
 * by a batch is scored once, as of their latest event, so the value written
 * does not depend on how the stream was cut into batches (a replay after a
 * crash writes exactly what an uninterrupted run wrote).
 */
export class ChurnJob implements StreamJob<ChurnPartitionState> {
  readonly type = 'churn' as const;
  private readonly width = CHURN_FEATURES.length;
  private buffer = new Float32Array(0);

  constructor(private readonly model: ScoreModel) {}

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

  async advanceTo(state: ChurnPartitionState, watermark: number): Promise<JobOutputs> {
    if (watermark > state.watermark) state.watermark = watermark;
    return { writes: [], alerts: [], scoredRows: 0, inferenceMs: 0 };
  }

  async process(state: ChurnPartitionState, events: readonly UserEvent[]): Promise<JobOutputs> {
    const touched = new Map<string, number>();
    for (const e of events) {
      let user = state.users.get(e.userId);
      if (!user) {
        user = newChurnState();
        state.users.set(e.userId, user);
      }
      updateChurn(user, e);
      if (e.eventTime > state.watermark) state.watermark = e.eventTime;
      touched.set(e.userId, user.last);
    }
    const rows = touched.size;
    if (rows === 0) return { writes: [], alerts: [], scoredRows: 0, inferenceMs: 0 };
    if (this.buffer.length < rows * this.width) this.buffer = new Float32Array(Math.max(rows, 256) * 2 * this.width);
    let row = 0;
    for (const [userId, asOf] of touched) {
      churnFeatures(state.users.get(userId)!, asOf, this.buffer, row * this.width);
      row += 1;
    }
    const started = performance.now();
    const scores = await this.model.score(this.buffer.subarray(0, rows * this.width), rows);
    const inferenceMs = performance.now() - started;
    const writes: UserWrite[] = [];
    row = 0;
    for (const [userId, asOf] of touched) {
      const score = scores[row++];
      writes.push({
        userId,
        fields: {
          churn_score: formatScore(score),
          risk_level: riskLevel(score),
          model_version: this.model.version,
          updated_at: isoTime(asOf),
        },
      });
    }
    return { writes, alerts: [], scoredRows: rows, inferenceMs };
  }
}
