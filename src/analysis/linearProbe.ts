// Linear probe: multinomial logistic regression (softmax, L2 on weights, standardized
// features) trained by deterministic L-BFGS, plus seeded stratified k-fold cross-validation.
// Used by probe-layers on class-token representations and FFN activations of each block.
//
// Objective (mean form, bias unpenalized), on standardized features x' = (x - mean) / scale:
//   L(W, b) = (1/n) sum_i [ logsumexp_c (W_c . x'_i + b_c) - (W_{y_i} . x'_i + b_{y_i}) ] + (l2/2) ||W||^2
// With l2 = 1/n this matches scikit-learn's LogisticRegression(C=1) up to the factor n.

import { badInput, usageError } from '../errors.js';
import { mean as meanOf, mulberry32, shuffleInPlace, std as stdOf, type NumArray } from './stats.js';

export interface SoftmaxRegressionOptions {
  /** L2 strength on the weights (not the biases) in the mean-loss objective above. Default 1e-3. */
  l2?: number;
  /** L-BFGS iteration cap. Default 500. */
  maxIter?: number;
  /** Stop when the largest absolute gradient component is <= tol. Default 1e-5. */
  tol?: number;
  /** Accepted for API symmetry; training itself uses no randomness (weights start at 0). */
  seed?: number;
  /** L-BFGS history length. Default 10. */
  memory?: number;
}

export interface SoftmaxModel {
  d: number;
  classes: number;
  /** Standardizer fitted on the training rows: x' = (x - featureMean) / featureScale. */
  featureMean: Float64Array;
  featureScale: Float64Array;
  /** Weights [classes, d] row-major, in standardized feature space. */
  weights: Float64Array;
  /** Biases [classes]. */
  bias: Float64Array;
  /** Final objective value, gradient max-norm, L-BFGS iterations, and whether tol was met. */
  loss: number;
  gradNorm: number;
  iterations: number;
  converged: boolean;
}

export interface Standardizer {
  mean: Float64Array;
  scale: Float64Array;
}

const DEFAULTS = { l2: 1e-3, maxIter: 500, tol: 1e-5, memory: 10 };

// ---------------------------------------------------------------------------------------------
// Validation

function checkInputs(X: NumArray, y: ArrayLike<number>, n: number, d: number, classes: number, where: string): void {
  if (!Number.isInteger(n) || n < 1) throw usageError(`${where}: need at least one sample, got n=${n}`);
  if (!Number.isInteger(d) || d < 1) throw usageError(`${where}: feature dimension must be >= 1, got d=${d}`);
  if (!Number.isInteger(classes) || classes < 2) throw usageError(`${where}: need at least 2 classes, got ${classes}`);
  if (X.length !== n * d) throw usageError(`${where}: features have ${X.length} values, expected n*d = ${n}*${d} = ${n * d}`);
  if (y.length !== n) throw usageError(`${where}: ${y.length} labels for ${n} samples; pass one label per sample`);
  for (let i = 0; i < n; i++) {
    const c = y[i];
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw badInput(`${where}: label ${c} at sample ${i} is not an integer class in [0, ${classes}); fix the labels or --classes`);
    }
  }
  for (let i = 0; i < X.length; i++) {
    if (!Number.isFinite(X[i])) {
      throw badInput(`${where}: feature value ${X[i]} at sample ${Math.floor(i / d)}, feature ${i % d} is not finite; check the model outputs`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Standardization

/** Per-feature mean and population std over the given rows; constant features get scale 1. */
export function fitStandardizer(X: NumArray, rows: ArrayLike<number>, d: number): Standardizer {
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  const m = rows.length;
  for (let r = 0; r < m; r++) {
    const o = rows[r] * d;
    for (let j = 0; j < d; j++) mean[j] += X[o + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= Math.max(1, m);
  for (let r = 0; r < m; r++) {
    const o = rows[r] * d;
    for (let j = 0; j < d; j++) {
      const v = X[o + j] - mean[j];
      scale[j] += v * v;
    }
  }
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt(scale[j] / Math.max(1, m));
    // A (numerically) constant feature carries no information; scale 1 keeps it at ~0.
    scale[j] = s > 1e-12 * Math.max(1, Math.abs(mean[j])) ? s : 1;
  }
  return { mean, scale };
}

/** Standardized copy of the given rows, [rows.length, d] float64. */
export function applyStandardizer(X: NumArray, rows: ArrayLike<number>, d: number, s: Standardizer): Float64Array {
  const out = new Float64Array(rows.length * d);
  for (let r = 0; r < rows.length; r++) {
    const o = rows[r] * d;
    const p = r * d;
    for (let j = 0; j < d; j++) out[p + j] = (X[o + j] - s.mean[j]) / s.scale[j];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Objective

/**
 * Objective and gradient of the L2-regularized softmax regression at `params`
 * = [W (classes*d, row-major) | b (classes)], on already-standardized features Xs [n, d].
 * Writes the gradient into `grad` (same length as params) and returns the loss.
 */
export function softmaxRegressionLossAndGrad(
  params: Float64Array,
  Xs: Float64Array,
  y: ArrayLike<number>,
  n: number,
  d: number,
  classes: number,
  l2: number,
  grad: Float64Array,
): number {
  const k = classes;
  const bOff = k * d;
  grad.fill(0);
  const z = new Float64Array(k);
  const e = new Float64Array(k);
  let loss = 0;
  const invN = 1 / n;
  const d4 = d - (d % 4);
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    let m = -Infinity;
    for (let c = 0; c < k; c++) {
      // Dot product unrolled by four (independent accumulators) - this loop is the hot spot.
      const wo = c * d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let j = 0;
      for (; j < d4; j += 4) {
        s0 += params[wo + j] * Xs[xo + j];
        s1 += params[wo + j + 1] * Xs[xo + j + 1];
        s2 += params[wo + j + 2] * Xs[xo + j + 2];
        s3 += params[wo + j + 3] * Xs[xo + j + 3];
      }
      for (; j < d; j++) s0 += params[wo + j] * Xs[xo + j];
      const s = params[bOff + c] + ((s0 + s1) + (s2 + s3));
      z[c] = s;
      if (s > m) m = s;
    }
    let se = 0;
    for (let c = 0; c < k; c++) {
      const ec = Math.exp(z[c] - m);
      e[c] = ec;
      se += ec;
    }
    const yi = y[i];
    loss += m + Math.log(se) - z[yi]; // logsumexp(z) - z_y, max-shifted
    const invSe = 1 / se;
    for (let c = 0; c < k; c++) {
      const r = (e[c] * invSe - (c === yi ? 1 : 0)) * invN;
      grad[bOff + c] += r;
      const wo = c * d;
      let j = 0;
      for (; j < d4; j += 4) {
        grad[wo + j] += r * Xs[xo + j];
        grad[wo + j + 1] += r * Xs[xo + j + 1];
        grad[wo + j + 2] += r * Xs[xo + j + 2];
        grad[wo + j + 3] += r * Xs[xo + j + 3];
      }
      for (; j < d; j++) grad[wo + j] += r * Xs[xo + j];
    }
  }
  loss *= invN;
  let w2 = 0;
  for (let q = 0; q < bOff; q++) {
    const w = params[q];
    w2 += w * w;
    grad[q] += l2 * w;
  }
  return loss + 0.5 * l2 * w2;
}

// ---------------------------------------------------------------------------------------------
// L-BFGS (deterministic; Armijo backtracking line search)

interface LbfgsResult {
  x: Float64Array;
  f: number;
  gradNorm: number;
  iterations: number;
  converged: boolean;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}

/** Minimize f by L-BFGS from x0. `fg(x, g)` returns f(x) and writes the gradient into g. */
export function lbfgsMinimize(
  fg: (x: Float64Array, g: Float64Array) => number,
  x0: Float64Array,
  opts: { maxIter: number; tol: number; memory: number },
): LbfgsResult {
  const p = x0.length;
  const m = opts.memory;
  const x = Float64Array.from(x0);
  const g = new Float64Array(p);
  let f = fg(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  const dir = new Float64Array(p);
  const xNew = new Float64Array(p);
  const gNew = new Float64Array(p);
  let gn = maxAbs(g);
  let it = 0;
  let stalls = 0;
  while (gn > opts.tol && it < opts.maxIter) {
    it++;
    // Two-loop recursion: dir = -H g.
    for (let i = 0; i < p; i++) dir[i] = -g[i];
    const h = S.length;
    for (let q = h - 1; q >= 0; q--) {
      const a = rho[q] * dot(S[q], dir);
      alpha[q] = a;
      const yq = Y[q];
      for (let i = 0; i < p; i++) dir[i] -= a * yq[i];
    }
    if (h > 0) {
      const gamma = dot(S[h - 1], Y[h - 1]) / dot(Y[h - 1], Y[h - 1]);
      for (let i = 0; i < p; i++) dir[i] *= gamma;
    }
    for (let q = 0; q < h; q++) {
      const bq = rho[q] * dot(Y[q], dir);
      const sq = S[q];
      const c = alpha[q] - bq;
      for (let i = 0; i < p; i++) dir[i] += c * sq[i];
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (should not happen for a convex objective): restart from -g.
      S.length = 0; Y.length = 0; rho.length = 0;
      for (let i = 0; i < p; i++) dir[i] = -g[i];
      slope = dot(g, dir);
    }
    // First step without curvature history: scale so the step has unit max-norm at most.
    let t = S.length === 0 ? Math.min(1, 1 / Math.max(maxAbs(dir), 1e-300)) : 1;
    let fNew = Infinity;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < p; i++) xNew[i] = x[i] + t * dir[i];
      fNew = fg(xNew, gNew);
      if (Number.isFinite(fNew) && fNew <= f + 1e-4 * t * slope) {
        accepted = true;
        break;
      }
      t *= 0.5;
    }
    if (!accepted) break; // no decrease possible at machine precision: we are at the optimum
    // Curvature pair.
    const s = new Float64Array(p);
    const yv = new Float64Array(p);
    for (let i = 0; i < p; i++) {
      s[i] = xNew[i] - x[i];
      yv[i] = gNew[i] - g[i];
    }
    const sy = dot(s, yv);
    if (sy > 1e-12 * dot(yv, yv)) {
      if (S.length === m) {
        S.shift(); Y.shift(); rho.shift();
      }
      S.push(s); Y.push(yv); rho.push(1 / sy);
    }
    const df = f - fNew;
    x.set(xNew);
    g.set(gNew);
    f = fNew;
    gn = maxAbs(g);
    // Objective no longer moving at double precision for several steps: stop.
    stalls = df <= 1e-15 * Math.max(1, Math.abs(f)) ? stalls + 1 : 0;
    if (stalls >= 5) break;
  }
  return { x, f, gradNorm: gn, iterations: it, converged: gn <= opts.tol };
}

// ---------------------------------------------------------------------------------------------
// Training and prediction

function allRows(n: number): Int32Array {
  const r = new Int32Array(n);
  for (let i = 0; i < n; i++) r[i] = i;
  return r;
}

function trainOnRows(
  X: NumArray,
  y: ArrayLike<number>,
  rows: ArrayLike<number>,
  d: number,
  classes: number,
  opts: SoftmaxRegressionOptions,
): SoftmaxModel {
  const l2 = opts.l2 ?? DEFAULTS.l2;
  const maxIter = opts.maxIter ?? DEFAULTS.maxIter;
  const tol = opts.tol ?? DEFAULTS.tol;
  const memory = opts.memory ?? DEFAULTS.memory;
  if (!(l2 >= 0) || !Number.isFinite(l2)) throw usageError(`linear probe: l2 must be a finite number >= 0, got ${l2}`);
  if (!Number.isInteger(maxIter) || maxIter < 0) throw usageError(`linear probe: maxIter must be an integer >= 0, got ${maxIter}`);
  if (!(tol >= 0)) throw usageError(`linear probe: tol must be >= 0, got ${tol}`);
  const st = fitStandardizer(X, rows, d);
  const Xs = applyStandardizer(X, rows, d, st);
  const m = rows.length;
  const ys = new Int32Array(m);
  for (let r = 0; r < m; r++) ys[r] = y[rows[r]];
  const res = lbfgsMinimize(
    (params, grad) => softmaxRegressionLossAndGrad(params, Xs, ys, m, d, classes, l2, grad),
    new Float64Array(classes * d + classes),
    { maxIter, tol, memory },
  );
  return {
    d,
    classes,
    featureMean: st.mean,
    featureScale: st.scale,
    weights: res.x.slice(0, classes * d),
    bias: res.x.slice(classes * d),
    loss: res.f,
    gradNorm: res.gradNorm,
    iterations: res.iterations,
    converged: res.converged,
  };
}

/**
 * Fit multinomial logistic regression on all n rows of X [n, d] with labels y in [0, classes).
 * The standardizer is fitted on these rows. Deterministic: weights start at zero.
 */
export function trainSoftmaxRegression(
  X: NumArray,
  y: ArrayLike<number>,
  n: number,
  d: number,
  classes: number,
  opts: SoftmaxRegressionOptions = {},
): SoftmaxModel {
  checkInputs(X, y, n, d, classes, 'trainSoftmaxRegression');
  return trainOnRows(X, y, allRows(n), d, classes, opts);
}

/** Class logits [n, classes] of a fitted model for raw (unstandardized) features X [n, d]. */
export function decisionFunction(model: SoftmaxModel, X: NumArray, n: number): Float64Array {
  const { d, classes: k, weights, bias, featureMean, featureScale } = model;
  if (X.length !== n * d) throw usageError(`predict: features have ${X.length} values, expected ${n}*${d}`);
  const out = new Float64Array(n * k);
  const xs = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) xs[j] = (X[i * d + j] - featureMean[j]) / featureScale[j];
    for (let c = 0; c < k; c++) {
      let s = bias[c];
      const wo = c * d;
      for (let j = 0; j < d; j++) s += weights[wo + j] * xs[j];
      out[i * k + c] = s;
    }
  }
  return out;
}

/** Predicted class per row (argmax of the logits, ties to the lowest class). */
export function predict(model: SoftmaxModel, X: NumArray, n: number): Int32Array {
  const z = decisionFunction(model, X, n);
  const k = model.classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (z[i * k + c] > z[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cross-validation

export interface CrossValidateOptions extends SoftmaxRegressionOptions {
  /** Number of folds (>= 2). Default 5. */
  folds?: number;
  /** Seed of the fold assignment. Default 0. */
  seed?: number;
}

export interface CrossValidationResult {
  /** Held-out accuracy of each fold, in fold order. */
  foldAccuracies: number[];
  /** Mean of foldAccuracies. */
  mean: number;
  /** Population std (ddof = 0, as numpy's np.std) of foldAccuracies. */
  std: number;
  /** Fold index of each sample. */
  foldOf: Int32Array;
  /** Held-out prediction of each sample (from the fold that left it out). */
  heldOutPredictions: Int32Array;
  /** L-BFGS iterations and convergence flag per fold. */
  iterations: number[];
  converged: boolean[];
}

/**
 * Stratified, seeded fold assignment: each class's samples are shuffled (mulberry32(seed))
 * and dealt round-robin to the folds, continuing where the previous class stopped, so every
 * fold's size and every class's count per fold differ by at most one.
 */
export function stratifiedFolds(y: ArrayLike<number>, classes: number, folds: number, seed: number): Int32Array {
  const n = y.length;
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < n; i++) byClass[y[i]].push(i);
  const rng = mulberry32(seed);
  const foldOf = new Int32Array(n);
  let next = 0;
  for (let c = 0; c < classes; c++) {
    const idx = shuffleInPlace(byClass[c], rng);
    for (const i of idx) {
      foldOf[i] = next;
      next = (next + 1) % folds;
    }
  }
  return foldOf;
}

/**
 * k-fold cross-validated linear probe: stratified seeded folds, a fresh standardizer and
 * softmax regression per training split, accuracy on the held-out fold.
 */
export function crossValidateProbe(
  X: NumArray,
  y: ArrayLike<number>,
  n: number,
  d: number,
  classes: number,
  opts: CrossValidateOptions = {},
): CrossValidationResult {
  const folds = opts.folds ?? 5;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(folds) || folds < 2) throw usageError(`crossValidateProbe: folds must be an integer >= 2, got ${folds}`);
  checkInputs(X, y, n, d, classes, 'crossValidateProbe');
  if (n < folds) throw badInput(`crossValidateProbe: ${n} samples cannot fill ${folds} folds; use more images or fewer --folds`);
  const foldOf = stratifiedFolds(y, classes, folds, seed);
  const heldOut = new Int32Array(n).fill(-1);
  const foldAccuracies: number[] = [];
  const iterations: number[] = [];
  const converged: boolean[] = [];
  for (let f = 0; f < folds; f++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < n; i++) (foldOf[i] === f ? test : train).push(i);
    const model = trainOnRows(X, y, train, d, classes, opts);
    const Xt = new Float64Array(test.length * d);
    for (let r = 0; r < test.length; r++) {
      for (let j = 0; j < d; j++) Xt[r * d + j] = X[test[r] * d + j];
    }
    const pred = predict(model, Xt, test.length);
    let ok = 0;
    for (let r = 0; r < test.length; r++) {
      heldOut[test[r]] = pred[r];
      if (pred[r] === y[test[r]]) ok++;
    }
    foldAccuracies.push(ok / test.length);
    iterations.push(model.iterations);
    converged.push(model.converged);
  }
  return {
    foldAccuracies,
    mean: meanOf(foldAccuracies),
    std: stdOf(foldAccuracies, 0),
    foldOf,
    heldOutPredictions: heldOut,
    iterations,
    converged,
  };
}
