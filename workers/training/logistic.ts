/**
 * Logistic regression over each feature and its log1p, fitted by Newton's
 * method (IRLS) with an L2 penalty on standardised inputs, then folded back to
 * raw inputs: the exported graph needs no scaler, only
 * sigmoid(b + w · [x, log1p(max(x, 0))]).
 */
export interface LogisticModel {
  /** Number of raw features F; `weights` has 2F entries. */
  features: number;
  weights: Float32Array;
  bias: number;
}

export interface FitOptions {
  l2: number;
  maxIterations: number;
}

/** The model's inputs for one row: x followed by log1p(max(x, 0)), in float64. */
function expand(x: Float32Array, offset: number, f: number, out: Float64Array): void {
  for (let j = 0; j < f; j++) {
    const v = x[offset + j];
    out[j] = v;
    // Math.fround: the ONNX graph computes log(x + 1) in float32.
    out[f + j] = Math.log(Math.fround(Math.max(v, 0) + 1));
  }
}

export function fitLogistic(x: Float32Array, y: ArrayLike<number>, f: number, o: FitOptions): LogisticModel {
  const d = 2 * f;
  const { z, mean, sd } = standardised(x, y.length, f);
  // Parameters: w[0..d) on standardised inputs, w[d] the intercept.
  const w = new Float64Array(d + 1);
  for (let iter = 0; iter < o.maxIterations; iter++) {
    const step = newtonStep(z, y, w, o.l2);
    let largest = 0;
    for (let j = 0; j <= d; j++) {
      w[j] -= step[j];
      largest = Math.max(largest, Math.abs(step[j]));
    }
    if (largest < 1e-9) break;
  }
  const weights = new Float32Array(d);
  let bias = w[d];
  for (let j = 0; j < d; j++) {
    weights[j] = w[j] / sd[j];
    bias -= (w[j] * mean[j]) / sd[j];
  }
  return { features: f, weights, bias: Math.fround(bias) };
}

/** The expanded inputs of all rows, standardised column by column. */
function standardised(x: Float32Array, n: number, f: number): { z: Float64Array; mean: Float64Array; sd: Float64Array } {
  const d = 2 * f;
  const z = new Float64Array(n * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    expand(x, i * f, f, row);
    z.set(row, i * d);
  }
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += z[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sd[j] += (z[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) sd[j] = sd[j] > 1e-12 ? Math.sqrt(sd[j]) : 1;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = (z[i * d + j] - mean[j]) / sd[j];
  return { z, mean, sd };
}

/** The Newton step H⁻¹g of the L2-penalised log loss at w (the intercept is not penalised). */
function newtonStep(z: Float64Array, y: ArrayLike<number>, w: Float64Array, l2: number): Float64Array {
  const p = w.length;
  const d = p - 1;
  const grad = new Float64Array(p);
  const hess = new Float64Array(p * p);
  for (let i = 0; i < y.length; i++) {
    const base = i * d;
    let s = w[d];
    for (let j = 0; j < d; j++) s += w[j] * z[base + j];
    const pr = 1 / (1 + Math.exp(-s));
    const r = pr - y[i];
    const q = pr * (1 - pr);
    for (let j = 0; j < d; j++) {
      const zj = z[base + j];
      grad[j] += r * zj;
      const qz = q * zj;
      const hj = j * p;
      for (let k = 0; k <= j; k++) hess[hj + k] += qz * z[base + k];
      hess[hj + d] += qz;
    }
    grad[d] += r;
    hess[d * p + d] += q;
  }
  for (let j = 0; j < d; j++) {
    grad[j] += l2 * w[j];
    hess[j * p + j] += l2;
    hess[d * p + j] = hess[j * p + d];
    for (let k = 0; k < j; k++) hess[k * p + j] = hess[j * p + k];
  }
  return solveSpd(hess, grad, p);
}

/** P(positive) for each row, as the exported ONNX graph computes it. */
export function predictLogistic(m: LogisticModel, x: Float32Array, rows: number): Float64Array {
  const f = m.features;
  const row = new Float64Array(2 * f);
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    expand(x, i * f, f, row);
    let s = m.bias;
    for (let j = 0; j < 2 * f; j++) s += m.weights[j] * row[j];
    out[i] = 1 / (1 + Math.exp(-s));
  }
  return out;
}

/** Solves A x = b for a symmetric positive-definite A (Cholesky). */
function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (s <= 0) throw new Error('logistic regression: the Hessian is not positive definite; raise the L2 penalty');
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
    x[i] = s / l[i * n + i];
  }
  return x;
}
