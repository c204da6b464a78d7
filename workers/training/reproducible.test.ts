import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bundledModelPath } from '../models/bundled.js';
import { DEFAULT_TRAIN_CONFIG, trainAll } from './pipeline.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('bundled models', () => {
  it('are exactly what `npm run train` produces from the default seed, and beat the rule-based baselines', () => {
    const result = trainAll(DEFAULT_TRAIN_CONFIG);
    expect(sha(result.churn.onnx)).toBe(sha(readFileSync(bundledModelPath('churn'))));
    expect(sha(result.cart.onnx)).toBe(sha(readFileSync(bundledModelPath('cart'))));
    for (const r of [result.churn, result.cart]) {
      expect(r.metrics.model.rocAuc).toBeGreaterThan(r.metrics.baseline.rocAuc);
      expect(r.metrics.model.prAuc).toBeGreaterThan(r.metrics.baseline.prAuc);
      expect(r.metrics.model.brier).toBeLessThan(r.metrics.baseline.brier);
    }
    // About 3 s alone; the unit tier runs files in parallel on two cores.
  }, 60_000);

  it('change with the seed', () => {
    const a = trainAll({ ...DEFAULT_TRAIN_CONFIG, users: 400, days: 45, seed: 1 });
    const b = trainAll({ ...DEFAULT_TRAIN_CONFIG, users: 400, days: 45, seed: 2 });
    expect(sha(a.churn.onnx)).not.toBe(sha(b.churn.onnx));
    expect(sha(a.cart.onnx)).not.toBe(sha(b.cart.onnx));
  });
});
