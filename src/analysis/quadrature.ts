// Integration rules for integrated gradients on [0, 1]: ∫ f(α) dα ≈ Σ_k c_k f(α_k), with m nodes α_k
// and weights c_k summing to 1. One implementation for every IG in vitpath (trace-path's search,
// JAS, ig-layer and influence baselines; probe-layers' IG mass can take it too): the rule is a parameter.
//
//   left       α_k = k/m,           c_k = 1/m          error O(1/m)     (the paper's Riemann sum)
//   right      α_k = (k+1)/m,       c_k = 1/m          error O(1/m)
//   midpoint   α_k = (k+1/2)/m,     c_k = 1/m          error O(1/m²)
//   trapezoid  α_k = k/(m-1),       c_k = 1/(m-1), halved at both ends (m >= 2)   error O(1/m²)
//   gauss      Gauss-Legendre nodes and weights on [0, 1]; exact for polynomials of degree <= 2m-1
//
// Each node costs one evaluation (one sample of the gradient graph), so m is the cost of a rule.
import { usageError } from '../errors.js';

export const RULES = ['left', 'right', 'midpoint', 'trapezoid', 'gauss'] as const;
export type QuadratureRule = (typeof RULES)[number];

export interface Quadrature {
  rule: QuadratureRule;
  /** Number of nodes = evaluations. */
  steps: number;
  /** Nodes α_k in [0, 1], ascending. */
  alphas: Float64Array;
  /** Weights c_k (sum 1). */
  weights: Float64Array;
  /** Index of the node at α = 0, or -1 (then F at α = 0 needs its own evaluation). */
  zeroIndex: number;
  /** All weights equal (left, right, midpoint). */
  uniform: boolean;
}

/** Order of the error term for a smooth integrand (error ~ C / m^order); gauss's grows with m. */
export function ruleOrder(rule: QuadratureRule, m: number): number {
  return rule === 'left' || rule === 'right' ? 1 : rule === 'gauss' ? 2 * m : 2;
}

/** Smallest number of nodes a rule accepts. */
export function minSteps(rule: QuadratureRule): number {
  return rule === 'trapezoid' ? 2 : 1;
}

/** Nodes and weights of `rule` with m evaluations. */
export function quadrature(rule: QuadratureRule, m: number): Quadrature {
  if (!RULES.includes(rule)) throw usageError(`unknown integration rule "${rule}"; choose from ${RULES.join(', ')}`);
  if (!Number.isInteger(m) || m < minSteps(rule)) throw usageError(`the ${rule} rule needs at least ${minSteps(rule)} step${minSteps(rule) > 1 ? 's' : ''} (got ${m})`);
  const alphas = new Float64Array(m);
  const weights = new Float64Array(m);
  switch (rule) {
    case 'left':
    case 'right':
    case 'midpoint': {
      const shift = rule === 'left' ? 0 : rule === 'right' ? 1 : 0.5;
      for (let k = 0; k < m; k++) {
        alphas[k] = (k + shift) / m;
        weights[k] = 1 / m;
      }
      break;
    }
    case 'trapezoid':
      for (let k = 0; k < m; k++) {
        alphas[k] = k / (m - 1);
        weights[k] = (k === 0 || k === m - 1 ? 0.5 : 1) / (m - 1);
      }
      break;
    case 'gauss': {
      const { x, w } = gaussLegendre(m);
      for (let k = 0; k < m; k++) {
        alphas[k] = (x[k]! + 1) / 2;
        weights[k] = w[k]! / 2;
      }
      break;
    }
  }
  return { rule, steps: m, alphas, weights, zeroIndex: alphas[0] === 0 ? 0 : -1, uniform: rule === 'left' || rule === 'right' || rule === 'midpoint' };
}

/** Σ_k c_k f(α_k). */
export function integrate(q: Quadrature, f: (alpha: number) => number): number {
  let s = 0;
  for (let k = 0; k < q.steps; k++) s += q.weights[k]! * f(q.alphas[k]!);
  return s;
}

/**
 * Gauss-Legendre nodes (ascending) and weights on [-1, 1]: Newton's method on P_m from the
 * Chebyshev-like first guess cos(π(i + 3/4)/(m + 1/2)), P_m and P'_m by the three-term recurrence.
 */
export function gaussLegendre(m: number): { x: Float64Array; w: Float64Array } {
  const x = new Float64Array(m);
  const w = new Float64Array(m);
  for (let i = 0; i < Math.ceil(m / 2); i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (m + 0.5));
    let dp = 0;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = 0;
      for (let j = 1; j <= m; j++) {
        const p2 = p1;
        p1 = p0;
        p0 = ((2 * j - 1) * z * p1 - (j - 1) * p2) / j;
      }
      dp = (m * (z * p0 - p1)) / (z * z - 1);
      const dz = p0 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-16) break;
    }
    // Recompute the derivative at the converged node for the weight.
    let p0 = 1;
    let p1 = 0;
    for (let j = 1; j <= m; j++) {
      const p2 = p1;
      p1 = p0;
      p0 = ((2 * j - 1) * z * p1 - (j - 1) * p2) / j;
    }
    dp = (m * (z * p0 - p1)) / (z * z - 1);
    const wi = 2 / ((1 - z * z) * dp * dp);
    x[m - 1 - i] = z;
    x[i] = -z;
    w[i] = wi;
    w[m - 1 - i] = wi;
  }
  if (m % 2 === 1) x[(m - 1) / 2] = 0;
  return { x, w };
}
