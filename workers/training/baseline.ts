import { CART_FEATURES } from '../jobs/cart/features.js';
import { CHURN_FEATURES } from '../jobs/churn/features.js';

/**
 * Rule-based scores to beat, in the spirit of the replaced system's "basic
 * churn processor": a few thresholds on recency and activity, no learning.
 */
export function churnRuleScore(x: Float32Array, offset: number): number {
  const f = (name: string): number => x[offset + CHURN_FEATURES.indexOf(name)];
  let score = 0.1;
  if (f('days_since_last_event') > 7) score += 0.4;
  else if (f('days_since_last_event') > 3) score += 0.2;
  if (f('sessions_7d') === 0) score += 0.2;
  if (f('purchases_28d') === 0) score += 0.1;
  if (f('support_contacts_28d') >= 2) score += 0.15;
  return Math.min(score, 0.95);
}

/** A cart left without starting checkout is likely lost; a big one more so. */
export function cartRuleScore(x: Float32Array, offset: number): number {
  const f = (name: string): number => x[offset + CART_FEATURES.indexOf(name)];
  let score = f('checkout_started') === 1 ? 0.45 : 0.8;
  if (f('cart_value_log') > Math.log1p(150)) score += 0.1;
  return Math.min(score, 0.95);
}

export function scoreRows(rule: (x: Float32Array, offset: number) => number, x: Float32Array, width: number): Float64Array {
  const rows = x.length / width;
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) out[i] = rule(x, i * width);
  return out;
}
