// Multinomial logistic regression on sparse rows, fitted with L-BFGS.
//
// Objective (mean cross-entropy plus L2 on the weights, not on the biases):
//   L(W, b) = (1/N) Σᵢ −log softmax(W·xᵢ + b)[yᵢ] + (λ/2)‖W‖²
// Gradient:
//   ∂L/∂W[j,k] = (1/N) Σᵢ (pᵢₖ − [yᵢ = k]) · xᵢⱼ + λ·W[j,k],   ∂L/∂b[k] = (1/N) Σᵢ (pᵢₖ − [yᵢ = k])
// (sklearn's LogisticRegression(C) minimises N times this with λ = 1/(C·N).)
//
// Parameter layout, shared with the saved model: feature-major weights θ[j·K + k] for j < D, then the K biases.
// Feature-major keeps a sparse row's dot products with all K classes on contiguous memory.

import { minimizeLbfgs, type LbfgsOptions, type LbfgsResult } from './lbfgs.js';

/** Compressed sparse rows: row i owns entries indptr[i] .. indptr[i+1]-1. */
export interface SparseMatrix {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  values: Float64Array;
}

export function toSparseMatrix(rows: ReadonlyArray<{ indices: Int32Array; values: Float64Array }>, cols: number): SparseMatrix {
  const nnz = rows.reduce((s, r) => s + r.indices.length, 0);
  const indptr = new Int32Array(rows.length + 1);
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let p = 0;
  rows.forEach((r, i) => {
    indices.set(r.indices, p);
    values.set(r.values, p);
    p += r.indices.length;
    indptr[i + 1] = p;
  });
  return { rows: rows.length, cols, indptr, indices, values };
}

/**
 * Class scores W·x + b for one sparse row, written into `out` (length K). `theta` uses the layout above.
 */
export function scoreRow(
  theta: Float64Array,
  k: number,
  d: number,
  indices: Int32Array,
  values: Float64Array,
  from: number,
  to: number,
  out: Float64Array,
): void {
  const biasAt = d * k;
  for (let c = 0; c < k; c++) out[c] = theta[biasAt + c]!;
  for (let p = from; p < to; p++) {
    const base = indices[p]! * k;
    const v = values[p]!;
    for (let c = 0; c < k; c++) out[c] = out[c]! + v * theta[base + c]!;
  }
}

/** In place: scores → probabilities, with the max subtracted first so exp never overflows. Returns log Σ exp. */
export function softmaxInPlace(z: Float64Array): number {
  let max = -Infinity;
  for (let c = 0; c < z.length; c++) max = Math.max(max, z[c]!);
  let sum = 0;
  for (let c = 0; c < z.length; c++) {
    const e = Math.exp(z[c]! - max);
    z[c] = e;
    sum += e;
  }
  for (let c = 0; c < z.length; c++) z[c] = z[c]! / sum;
  return max + Math.log(sum);
}

/** Loss L(θ) as defined at the top of this file; writes ∂L/∂θ into `grad`. */
export function softmaxLossAndGradient(
  x: SparseMatrix,
  y: Int32Array,
  k: number,
  l2: number,
  theta: Float64Array,
  grad: Float64Array,
): number {
  const d = x.cols;
  const n = x.rows;
  grad.fill(0);
  const z = new Float64Array(k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const from = x.indptr[i]!;
    const to = x.indptr[i + 1]!;
    scoreRow(theta, k, d, x.indices, x.values, from, to, z);
    const label = y[i]!;
    const target = z[label]!;
    const logSumExp = softmaxInPlace(z);
    loss += logSumExp - target;
    z[label] = z[label]! - 1; // z is now pᵢ − onehot(yᵢ)
    for (let p = from; p < to; p++) {
      const base = x.indices[p]! * k;
      const v = x.values[p]!;
      for (let c = 0; c < k; c++) grad[base + c] = grad[base + c]! + v * z[c]!;
    }
    const biasAt = d * k;
    for (let c = 0; c < k; c++) grad[biasAt + c] = grad[biasAt + c]! + z[c]!;
  }
  const inv = 1 / n;
  let reg = 0;
  const nWeights = d * k;
  for (let j = 0; j < nWeights; j++) {
    const w = theta[j]!;
    reg += w * w;
    grad[j] = grad[j]! * inv + l2 * w;
  }
  for (let j = nWeights; j < grad.length; j++) grad[j] = grad[j]! * inv;
  return loss * inv + 0.5 * l2 * reg;
}

export interface SoftmaxFit extends LbfgsResult {
  /** θ in the layout above: D·K weights, then K biases. */
  theta: Float64Array;
}

/** Fits θ from zero (the objective is strictly convex in W, so the start only affects time, not the answer). */
export function fitSoftmaxRegression(
  x: SparseMatrix,
  y: Int32Array,
  k: number,
  l2: number,
  lbfgs: LbfgsOptions = {},
): SoftmaxFit {
  const theta0 = new Float64Array((x.cols + 1) * k);
  const result = minimizeLbfgs((t, g) => softmaxLossAndGradient(x, y, k, l2, t, g), theta0, lbfgs);
  return { ...result, theta: result.x };
}
