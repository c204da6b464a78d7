import { EventGenerator, DEFAULT_START } from '../events/generator.js';
import { CART_FEATURES } from '../jobs/cart/features.js';
import { CHURN_FEATURES } from '../jobs/churn/features.js';
import { DAY_MS } from '../features/time.js';
import { cartRuleScore, churnRuleScore, scoreRows } from './baseline.js';
import { CartRowsBuilder, ChurnRowsBuilder, pickRows, type Rows } from './dataset.js';
import { logisticToOnnx } from './export.js';
import { fitLogistic, predictLogistic, type LogisticModel } from './logistic.js';
import { atThreshold, calibration, evaluate, type Metrics } from './metrics.js';

export interface TrainConfig {
  seed: number;
  users: number;
  days: number;
  churnHorizonDays: number;
  cartWindowMinutes: number;
  cartHorizonHours: number;
  /** One user in `heldOutEvery` (by a hash of the id) is held out for evaluation. */
  heldOutEvery: number;
  l2: number;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  seed: 42,
  users: 4000,
  days: 70,
  churnHorizonDays: 14,
  cartWindowMinutes: 60,
  cartHorizonHours: 24,
  heldOutEvery: 4,
  l2: 1,
};

export interface JobResult {
  job: 'churn' | 'cart';
  model: LogisticModel;
  onnx: Uint8Array;
  version: string;
  trainRows: number;
  heldOut: Rows;
  metrics: { model: Metrics; baseline: Metrics };
  /** Held-out P(positive) of the model, row by row. */
  heldOutScores: Float64Array;
}

/** FNV-1a: a stable user split that does not follow generation order. */
export function userHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function split(rows: Rows, heldOutEvery: number): { train: Rows; test: Rows } {
  const pick = (test: boolean): Rows => pickRows(rows, rows.users.map((_, i) => i).filter((i) => (userHash(rows.users[i]) % heldOutEvery === 0) === test));
  return { train: pick(false), test: pick(true) };
}

/** Weekly cut-offs from day 28 (a full window of history) to the last one whose horizon fits. */
export function churnCutoffs(c: TrainConfig, start = DEFAULT_START): number[] {
  const cutoffs: number[] = [];
  for (let day = 28; day + c.churnHorizonDays <= c.days; day += 7) cutoffs.push(start + day * DAY_MS);
  if (cutoffs.length === 0) throw new Error(`training: days (${c.days}) must be at least 28 + the churn horizon (${c.churnHorizonDays})`);
  return cutoffs;
}

/** Builds both data sets in one pass over generated events. */
export function buildRows(c: TrainConfig): { churn: Rows; cart: Rows; events: number } {
  const generator = new EventGenerator({ seed: c.seed, users: c.users, days: c.days, start: DEFAULT_START });
  const churn = new ChurnRowsBuilder({ cutoffs: churnCutoffs(c), horizonDays: c.churnHorizonDays });
  const cart = new CartRowsBuilder({ windowMinutes: c.cartWindowMinutes, horizonHours: c.cartHorizonHours });
  let events = 0;
  for (const e of generator) {
    churn.add(e);
    cart.add(e);
    events++;
  }
  return { churn: churn.finish(generator.end), cart: cart.finish(generator.end), events };
}

function trainJob(
  job: 'churn' | 'cart',
  rows: Rows,
  c: TrainConfig,
  rule: (x: Float32Array, o: number) => number,
  featureNames: readonly string[],
  positive: string,
): JobResult {
  const { train, test } = split(rows, c.heldOutEvery);
  const model = fitLogistic(train.x, train.y, rows.width, { l2: c.l2, maxIterations: 50 });
  const heldOutScores = predictLogistic(model, test.x, test.y.length);
  const metrics = {
    model: evaluate(heldOutScores, test.y),
    baseline: evaluate(scoreRows(rule, test.x, rows.width), test.y),
  };
  const { bytes, version } = logisticToOnnx(model, {
    name: job,
    featureNames,
    positive,
    metrics: { heldOut: { model: rounded(metrics.model), baseline: rounded(metrics.baseline) } },
    training: { ...c, trainRows: train.y.length },
  });
  return { job, model, onnx: bytes, version, trainRows: train.y.length, heldOut: test, metrics, heldOutScores };
}

function rounded(m: Metrics): Record<string, number> {
  return { rocAuc: round4(m.rocAuc), prAuc: round4(m.prAuc), brier: round4(m.brier), rows: m.rows, positives: m.positives };
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

export function trainAll(c: TrainConfig): { churn: JobResult; cart: JobResult; events: number } {
  const rows = buildRows(c);
  return {
    churn: trainJob('churn', rows.churn, c, churnRuleScore, CHURN_FEATURES, `no activity within ${c.churnHorizonDays} days`),
    cart: trainJob('cart', rows.cart, c, cartRuleScore, CART_FEATURES, `cart idle ${c.cartWindowMinutes} min is not bought within ${c.cartHorizonHours} h`),
    events: rows.events,
  };
}

export function formatTable(results: JobResult[]): string {
  const lines = ['job    scorer     rows    positives  ROC AUC  PR AUC  Brier'];
  for (const r of results) {
    for (const [name, m] of [['model', r.metrics.model], ['baseline', r.metrics.baseline]] as const) {
      lines.push(
        `${r.job.padEnd(6)} ${name.padEnd(9)} ${String(m.rows).padStart(6)} ${((100 * m.positives) / m.rows).toFixed(1).padStart(9)}%  ${m.rocAuc.toFixed(4)}   ${m.prAuc.toFixed(4)}  ${m.brier.toFixed(4)}`,
      );
    }
  }
  return lines.join('\n');
}

/** How the model's held-out probabilities compare with what happened, and what a threshold would flag. */
export function formatCalibration(r: JobResult, thresholds: number[]): string {
  const lines = [`${r.job}: predicted vs observed on held-out rows`, '  P(positive)   rows   mean predicted   observed'];
  for (const b of calibration(r.heldOutScores, r.heldOut.y)) {
    lines.push(`  ${b.from.toFixed(1)}-${b.to.toFixed(1)}   ${String(b.rows).padStart(7)}   ${b.predicted.toFixed(3).padStart(14)}   ${b.observed.toFixed(3).padStart(8)}`);
  }
  for (const t of thresholds) {
    const a = atThreshold(r.heldOutScores, r.heldOut.y, t);
    lines.push(`  at threshold ${t}: flags ${(100 * a.flagged).toFixed(1)}% of rows, precision ${a.precision.toFixed(3)}, recall ${a.recall.toFixed(3)}`);
  }
  return lines.join('\n');
}
