// Limited-memory BFGS (Nocedal & Wright, algorithm 7.4 with the two-loop recursion 7.5) and a backtracking line
// search with the Armijo condition. The objectives here are smooth and convex, for which backtracking is enough;
// curvature pairs with s·y ≤ 0 are skipped, which keeps the inverse-Hessian estimate positive definite.
// Deterministic: no randomness, a fixed order of floating-point operations.

/** Writes ∇f(x) into `grad` and returns f(x). */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Number of curvature pairs kept. */
  memory?: number;
  maxIterations?: number;
  /** Stop when ‖∇f‖∞ falls below this. */
  gradientTolerance?: number;
  /** Stop when the relative decrease of f in one iteration falls below this. */
  functionTolerance?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  gradientNorm: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function normInf(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function minimizeLbfgs(objective: Objective, x0: Float64Array, opts: LbfgsOptions = {}): LbfgsResult {
  const memory = opts.memory ?? 10;
  const maxIterations = opts.maxIterations ?? 500;
  const gtol = opts.gradientTolerance ?? 1e-6;
  const ftol = opts.functionTolerance ?? 1e-12;
  const n = x0.length;

  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = objective(x, g);
  let evaluations = 1;
  const sList: Float64Array[] = [];
  const yList: Float64Array[] = [];
  const rhoList: number[] = [];
  const alpha = new Float64Array(memory);
  const d = new Float64Array(n);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);

  let iterations = 0;
  let converged = normInf(g) <= gtol;
  while (!converged && iterations < maxIterations) {
    // Two-loop recursion: d = -H·g.
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    const m = sList.length;
    for (let k = m - 1; k >= 0; k--) {
      const a = rhoList[k]! * dot(sList[k]!, d);
      alpha[k] = a;
      const y = yList[k]!;
      for (let i = 0; i < n; i++) d[i] = d[i]! - a * y[i]!;
    }
    // Initial Hessian scaling γ = s·y / y·y (N&W 7.20); before any pair, a unit-length first step.
    const gamma = m > 0 ? 1 / (rhoList[m - 1]! * dot(yList[m - 1]!, yList[m - 1]!)) : 1 / Math.sqrt(dot(g, g));
    for (let i = 0; i < n; i++) d[i] = d[i]! * gamma;
    for (let k = 0; k < m; k++) {
      const b = rhoList[k]! * dot(yList[k]!, d);
      const s = sList[k]!;
      const c = alpha[k]! - b;
      for (let i = 0; i < n; i++) d[i] = d[i]! + c * s[i]!;
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): forget the history and take a steepest-descent step.
      sList.length = yList.length = rhoList.length = 0;
      const scale = 1 / Math.sqrt(dot(g, g));
      for (let i = 0; i < n; i++) d[i] = -g[i]! * scale;
      slope = dot(g, d);
    }

    // Backtracking line search on the Armijo condition f(x + t·d) ≤ f(x) + c₁·t·∇f·d.
    let t = 1;
    let fNew = Infinity;
    let accepted = false;
    for (let tries = 0; tries < 50; tries++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i]! + t * d[i]!;
      fNew = objective(xNew, gNew);
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= f + 1e-4 * t * slope) {
        accepted = true;
        break;
      }
      t *= 0.5;
    }
    iterations++;
    if (!accepted) break; // no decrease possible at machine precision: x is as good as it gets

    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i]! - x[i]!;
      y[i] = gNew[i]! - g[i]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-10 * dot(y, y)) {
      if (sList.length === memory) {
        sList.shift();
        yList.shift();
        rhoList.shift();
      }
      sList.push(s);
      yList.push(y);
      rhoList.push(1 / sy);
    }

    const fOld = f;
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = fNew;
    if (normInf(g) <= gtol) converged = true;
    else if (fOld - f <= ftol * Math.max(Math.abs(fOld), Math.abs(f), 1)) converged = true;
  }
  return { x, f, gradientNorm: normInf(g), iterations, evaluations, converged };
}
