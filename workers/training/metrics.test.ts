import { describe, expect, it } from 'vitest';
import { averagePrecision, evaluate, rocAuc } from './metrics.js';

describe('metrics', () => {
  it('ROC AUC is the share of positive-negative pairs ranked right, ties counting half', () => {
    expect(rocAuc([0.9, 0.8, 0.7, 0.1], [1, 1, 0, 0])).toBe(1);
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])).toBe(0);
    // pairs: (0.8 vs 0.7) right, (0.8 vs 0.9) wrong, (0.3 vs 0.7) wrong, (0.3 vs 0.9) wrong
    expect(rocAuc([0.8, 0.3, 0.7, 0.9], [1, 1, 0, 0])).toBe(0.25);
    expect(rocAuc([0.5, 0.5, 0.5], [1, 0, 0])).toBe(0.5);
    expect(rocAuc([0.5, 0.2], [1, 1])).toBeNaN();
  });

  it('PR AUC is average precision', () => {
    // ranks: 1 (P), 0 (N), 1 (P): precision at the positives 1 and 2/3
    expect(averagePrecision([0.9, 0.5, 0.1], [1, 0, 1])).toBeCloseTo((1 + 2 / 3) / 2, 12);
    expect(averagePrecision([0.9, 0.5, 0.1], [0, 0, 1])).toBeCloseTo(1 / 3, 12);
  });

  it('Brier is the mean squared error of the probability', () => {
    const m = evaluate([1, 0, 0.5, 0.5], [1, 0, 1, 0]);
    expect(m.brier).toBe(0.125);
    expect(m.positives).toBe(2);
    expect(m.rows).toBe(4);
  });
});

describe('threshold and calibration reports', () => {
  it('count the flagged rows and how many of them are positive', async () => {
    const { atThreshold } = await import('./metrics.js');
    expect(atThreshold([0.9, 0.8, 0.3, 0.76], [1, 0, 1, 1], 0.75)).toEqual({ flagged: 0.75, precision: 2 / 3, recall: 2 / 3 });
  });

  it('group rows by predicted probability', async () => {
    const { calibration } = await import('./metrics.js');
    expect(calibration([0.05, 0.15, 0.12, 0.95], [0, 1, 0, 1])).toEqual([
      { from: 0, to: 0.1, rows: 1, predicted: 0.05, observed: 0 },
      { from: 0.1, to: 0.2, rows: 2, predicted: 0.135, observed: 0.5 },
      { from: 0.9, to: 1, rows: 1, predicted: 0.95, observed: 1 },
    ]);
  });
});
