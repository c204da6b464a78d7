/** Held-out evaluation of a probabilistic classifier. */
export interface Metrics {
  rocAuc: number;
  prAuc: number;
  brier: number;
  rows: number;
  positives: number;
}

export function evaluate(scores: ArrayLike<number>, labels: ArrayLike<number>): Metrics {
  const n = labels.length;
  let positives = 0;
  let brier = 0;
  for (let i = 0; i < n; i++) {
    positives += labels[i];
    brier += (scores[i] - labels[i]) ** 2;
  }
  return { rocAuc: rocAuc(scores, labels), prAuc: averagePrecision(scores, labels), brier: n > 0 ? brier / n : NaN, rows: n, positives };
}

function order(scores: ArrayLike<number>): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  return idx.sort((a, b) => scores[b] - scores[a] || a - b);
}

/** ROC AUC as the Mann-Whitney statistic; tied scores count one half. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = order(scores);
  let pos = 0;
  let neg = 0;
  let concordant = 0;
  // Walk from the highest score down, one group of tied scores at a time.
  for (let i = 0; i < idx.length; ) {
    let j = i;
    let groupPos = 0;
    let groupNeg = 0;
    while (j < idx.length && scores[idx[j]] === scores[idx[i]]) {
      if (labels[idx[j]] === 1) groupPos++;
      else groupNeg++;
      j++;
    }
    concordant += groupNeg * pos + 0.5 * groupNeg * groupPos;
    pos += groupPos;
    neg += groupNeg;
    i = j;
  }
  return pos === 0 || neg === 0 ? NaN : concordant / (pos * neg);
}

/** PR AUC as average precision (sklearn's definition), ties taken as one threshold. */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = order(scores);
  let total = 0;
  for (let i = 0; i < labels.length; i++) total += labels[i];
  if (total === 0) return NaN;
  let tp = 0;
  let seen = 0;
  let ap = 0;
  let lastRecall = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j < idx.length && scores[idx[j]] === scores[idx[i]]) {
      tp += labels[idx[j]];
      seen++;
      j++;
    }
    const recall = tp / total;
    ap += (recall - lastRecall) * (tp / seen);
    lastRecall = recall;
    i = j;
  }
  return ap;
}

/** Share of rows at or above a threshold, and the share of positives among them. */
export function atThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): { flagged: number; precision: number; recall: number } {
  let flagged = 0;
  let hits = 0;
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    positives += labels[i];
    if (scores[i] >= threshold) {
      flagged++;
      hits += labels[i];
    }
  }
  return { flagged: flagged / labels.length, precision: flagged > 0 ? hits / flagged : NaN, recall: positives > 0 ? hits / positives : NaN };
}

/** Reliability table: rows grouped by predicted probability (tenths), mean prediction vs observed rate. */
export function calibration(scores: ArrayLike<number>, labels: ArrayLike<number>, bins = 10): { from: number; to: number; rows: number; predicted: number; observed: number }[] {
  const sum = new Float64Array(bins);
  const pos = new Float64Array(bins);
  const count = new Float64Array(bins);
  for (let i = 0; i < labels.length; i++) {
    const b = Math.min(bins - 1, Math.floor(scores[i] * bins));
    sum[b] += scores[i];
    pos[b] += labels[i];
    count[b]++;
  }
  const out = [];
  for (let b = 0; b < bins; b++) {
    if (count[b] > 0) out.push({ from: b / bins, to: (b + 1) / bins, rows: count[b], predicted: sum[b] / count[b], observed: pos[b] / count[b] });
  }
  return out;
}
