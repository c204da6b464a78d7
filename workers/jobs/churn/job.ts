import { CHURN_FEATURES, CHURN_STATE_FORMAT, ChurnTable, churnFeatures, legacyChurnUsers, updateChurn } from './features.js';
import type { StateStore, UserTable } from '../../state/table.js';
import type { UserEvent } from '../../events/types.js';
import { DAY_MS, dayOf } from '../../features/time.js';
import { emptyOutputs, formatScore, isoTime, ownTable, recordedWatermark, watermarkMeta, type JobOutputs, type ScoreModel, type StateMeta, type StreamJob, type UserWrite } from '../../runtime/job.js';

export interface ChurnPartitionState {
  readonly table: ChurnTable;
  watermark: number;
}

interface Row {
  slot: number;
  asOf: number;
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
  readonly stateFormat = CHURN_STATE_FORMAT;
  private readonly width = CHURN_FEATURES.length;
  private buffer = new Float32Array(0);

  constructor(
    private readonly model: ScoreModel,
    private readonly highRiskAt = DEFAULT_HIGH_RISK_THRESHOLD,
    /** Where the users' records live (default in memory). */
    private readonly store: StateStore = { backend: 'memory' },
  ) {}

  get modelVersion(): string {
    return this.model.version;
  }

  newState(): ChurnPartitionState {
    return { table: this.newTable(), watermark: -1 };
  }

  newTable(): ChurnTable {
    return new ChurnTable(this.store);
  }

  meta(state: ChurnPartitionState): StateMeta {
    return watermarkMeta(state);
  }

  restored(table: UserTable, meta: StateMeta): ChurnPartitionState {
    return { table: ownTable(this.type, table, ChurnTable), watermark: recordedWatermark(meta) };
  }

  fromLegacy(snapshot: unknown): ChurnPartitionState {
    return { table: legacyChurnUsers(snapshot), watermark: recordedWatermark(snapshot as { watermark?: unknown }) };
  }

  watermark(state: ChurnPartitionState): number {
    return state.watermark;
  }

  /**
   * No timers: the wall clock does not move churn's event time, so the
   * midnight rescoring stays a function of the events alone.
   */
  async advanceTo(): Promise<JobOutputs> {
    return emptyOutputs();
  }

  async process(state: ChurnPartitionState, events: readonly UserEvent[]): Promise<JobOutputs> {
    const rows: Row[] = [];
    const touched = new Set<number>();
    const table = state.table;
    for (const e of events) {
      const day = dayOf(e.eventTime);
      if (state.watermark >= 0 && day > dayOf(state.watermark)) {
        // Event time crossed midnight: rescore every user of the partition as of that
        // midnight (how the model was trained), so users who went quiet see their risk rise.
        this.flushTouched(table, touched, rows);
        this.snapshotAll(state, day * DAY_MS, rows);
      }
      if (e.eventTime > state.watermark) state.watermark = e.eventTime;
      const slot = table.slot(e.userId);
      updateChurn(table, slot, e);
      touched.delete(slot);
      touched.add(slot);
    }
    this.flushTouched(table, touched, rows);
    return this.score(table, rows);
  }

  /** Users touched since the last snapshot are scored as of their latest event. */
  private flushTouched(table: ChurnTable, touched: Set<number>, rows: Row[]): void {
    for (const slot of touched) this.addRow(table, rows, slot, table.last(slot));
    touched.clear();
  }

  private snapshotAll(state: ChurnPartitionState, asOf: number, rows: Row[]): void {
    for (let slot = 0; slot < state.table.size; slot++) this.addRow(state.table, rows, slot, asOf);
  }

  private addRow(table: ChurnTable, rows: Row[], slot: number, asOf: number): void {
    const row = rows.length;
    if (this.buffer.length < (row + 1) * this.width) {
      const bigger = new Float32Array(Math.max(256, (row + 1) * 2) * this.width);
      bigger.set(this.buffer);
      this.buffer = bigger;
    }
    churnFeatures(table, slot, asOf, this.buffer, row * this.width);
    rows.push({ slot, asOf });
  }

  private async score(table: ChurnTable, rows: Row[]): Promise<JobOutputs> {
    if (rows.length === 0) return emptyOutputs();
    const started = performance.now();
    const scores = await this.model.score(this.buffer.subarray(0, rows.length * this.width), rows.length);
    const inferenceMs = performance.now() - started;
    // One write per user: the last row of a user is what an uninterrupted run ends with.
    const last = new Map<number, number>();
    rows.forEach((r, i) => {
      last.delete(r.slot);
      last.set(r.slot, i);
    });
    const writes: UserWrite[] = [];
    for (const [slot, i] of last) {
      const score = scores[i];
      writes.push({
        userId: table.id(slot),
        fields: {
          churn_score: formatScore(score),
          risk_level: riskLevel(score, this.highRiskAt),
          model_version: this.model.version,
          updated_at: isoTime(rows[i].asOf),
        },
      });
    }
    return { writes, emits: [], scoredRows: rows.length, inferenceMs };
  }
}
