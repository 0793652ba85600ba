import { describe, expect, it } from 'vitest';
import { minimizeLbfgs } from './lbfgs.js';
import { fitSoftmaxRegression, softmaxLossAndGradient, toSparseMatrix, type SparseMatrix } from './softmax-regression.js';
import { mulberry32 } from './split.js';

/** A tiny sparse data set: 7 rows, 5 features, 3 classes, about half the entries zero. */
function tinyData(): { x: SparseMatrix; y: Int32Array; k: number } {
  const random = mulberry32(7);
  const rows = Array.from({ length: 7 }, () => {
    const indices: number[] = [];
    const values: number[] = [];
    for (let j = 0; j < 5; j++) {
      if (random() < 0.5) continue;
      indices.push(j);
      values.push(random() * 2 - 0.5);
    }
    return { indices: Int32Array.from(indices), values: Float64Array.from(values) };
  });
  return { x: toSparseMatrix(rows, 5), y: Int32Array.from([0, 1, 2, 0, 1, 2, 2]), k: 3 };
}

describe('softmax regression gradient', () => {
  it('matches central finite differences on a tiny data set', () => {
    const { x, y, k } = tinyData();
    const random = mulberry32(11);
    const theta = Float64Array.from({ length: (x.cols + 1) * k }, () => random() * 2 - 1);
    const l2 = 0.3;
    const grad = new Float64Array(theta.length);
    softmaxLossAndGradient(x, y, k, l2, theta, grad);
    const scratch = new Float64Array(theta.length);
    const h = 1e-6;
    let worst = 0;
    for (let i = 0; i < theta.length; i++) {
      const plus = Float64Array.from(theta);
      const minus = Float64Array.from(theta);
      plus[i]! += h;
      minus[i]! -= h;
      const numeric =
        (softmaxLossAndGradient(x, y, k, l2, plus, scratch) - softmaxLossAndGradient(x, y, k, l2, minus, scratch)) / (2 * h);
      worst = Math.max(worst, Math.abs(numeric - grad[i]!) / Math.max(1, Math.abs(numeric)));
    }
    expect(worst).toBeLessThan(1e-7);
  });

  it('computes the loss of all-zero weights as ln K', () => {
    const { x, y, k } = tinyData();
    const theta = new Float64Array((x.cols + 1) * k);
    expect(softmaxLossAndGradient(x, y, k, 1, theta, new Float64Array(theta.length))).toBeCloseTo(Math.log(3), 12);
  });
});

describe('L-BFGS', () => {
  it('finds the minimum of the Rosenbrock function', () => {
    const rosenbrock = (v: Float64Array, g: Float64Array) => {
      const [a, b] = [v[0]!, v[1]!];
      g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
      g[1] = 200 * (b - a * a);
      return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
    };
    const result = minimizeLbfgs(rosenbrock, Float64Array.from([-1.2, 1]), { gradientTolerance: 1e-9, functionTolerance: 0 });
    expect(result.converged).toBe(true);
    expect(result.x[0]).toBeCloseTo(1, 6);
    expect(result.x[1]).toBeCloseTo(1, 6);
  });

  it('drives the softmax gradient to zero', () => {
    const { x, y, k } = tinyData();
    const fit = fitSoftmaxRegression(x, y, k, 0.05, { gradientTolerance: 1e-9, functionTolerance: 0 });
    const grad = new Float64Array(fit.theta.length);
    const loss = softmaxLossAndGradient(x, y, k, 0.05, fit.theta, grad);
    expect(fit.converged).toBe(true);
    expect(Math.max(...grad.map(Math.abs))).toBeLessThan(1e-9);
    expect(loss).toBeCloseTo(fit.f, 12);
    // A convex objective at its minimum: no nearby point is lower.
    const random = mulberry32(3);
    for (let trial = 0; trial < 20; trial++) {
      const nearby = fit.theta.map((t) => t + (random() - 0.5) * 1e-3);
      expect(softmaxLossAndGradient(x, y, k, 0.05, nearby, grad)).toBeGreaterThanOrEqual(loss);
    }
  });
});
