// --steps auto: the cheapest integration rule and step count whose completeness error on a few images is
// at most a target. The error of a rule is measured, not assumed: JAS(sum) of a path against the exact
// F(clean) − F(path zeroed) (which it approaches as the steps grow), summed over the calibration images,
// relative to the summed gap. The calibration path is each image's activation path (no search needed).
import type { NeuronOracle } from './oracle.js';
import { scorePaths, type ImageContext } from './pathSearch.js';
import { activationPath } from './baselines.js';
import { minSteps, quadrature, type QuadratureRule } from './quadrature.js';

export interface RuleTrial {
  rule: QuadratureRule;
  steps: number;
  /** Σ_i |JAS_sum − gap| / Σ_i |gap| over the calibration images. */
  error: number;
}

export interface RuleChoice {
  rule: QuadratureRule;
  steps: number;
  error: number;
  /** The target the choice had to reach. */
  maxError: number;
  /** The paper's setting (left, 20 steps) on the same images: the default target. */
  reference: number;
  /** Whether some trial reached the target (else the most accurate trial is chosen). */
  reached: boolean;
  images: number;
  tried: RuleTrial[];
}

/** Step counts tried, cheapest first; at each count every rule is tried, most accurate first. */
export const AUTO_LADDER = [2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 100, 200];
/** Preference among rules reaching the target at the same cost. */
const PREFERENCE: QuadratureRule[] = ['gauss', 'midpoint', 'trapezoid', 'left', 'right'];

/** Relative completeness error of `rule` with `steps` on the images' given paths. */
export async function completenessError(oracle: NeuronOracle, images: ImageContext[], paths: number[][], rule: QuadratureRule, steps: number): Promise<number> {
  const s = await scorePaths(oracle, images, paths.map((p) => [p]), quadrature(rule, steps));
  let err = 0;
  let gap = 0;
  for (const r of s) {
    err += Math.abs(r[0]!.jasSum - r[0]!.completenessGap);
    gap += Math.abs(r[0]!.completenessGap);
  }
  return gap > 0 ? err / gap : err;
}

/**
 * Walk the ladder from the cheapest step count; return the first (rule, steps) whose error is at most
 * `maxError` (default: the error of left with 20 steps, measured first). Stops at the first count that
 * reaches the target, so a calibration costs about 5 × Σ(steps up to the answer) gradient samples per image.
 */
export async function chooseRule(oracle: NeuronOracle, images: ImageContext[], maxError?: number, ladder = AUTO_LADDER): Promise<RuleChoice> {
  const paths = images.map(activationPath);
  const reference = await completenessError(oracle, images, paths, 'left', 20);
  const target = maxError ?? reference;
  const tried: RuleTrial[] = [];
  for (const m of ladder) {
    const here: RuleTrial[] = [];
    for (const rule of PREFERENCE) {
      if (m < minSteps(rule)) continue;
      const error = rule === 'left' && m === 20 ? reference : await completenessError(oracle, images, paths, rule, m);
      here.push({ rule, steps: m, error });
    }
    tried.push(...here);
    const ok = here.filter((t) => t.error <= target);
    if (ok.length) {
      const best = ok[0]!; // PREFERENCE order among equal cost
      return { rule: best.rule, steps: best.steps, error: best.error, maxError: target, reference, reached: true, images: images.length, tried };
    }
  }
  const best = [...tried].sort((a, b) => a.error - b.error || a.steps - b.steps)[0]!;
  return { rule: best.rule, steps: best.steps, error: best.error, maxError: target, reference, reached: false, images: images.length, tried };
}

