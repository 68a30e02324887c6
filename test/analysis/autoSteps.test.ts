// --steps auto on a closed-form oracle: the error of each (rule, steps) is recomputed independently from
// the path's JAS(sum) and completeness gap; the choice is the first step count at which some rule
// reaches the target, the preferred rule among those, and never worse than the target.
import { describe, expect, it } from 'vitest';
import { chooseRule, completenessError, AUTO_LADDER } from '../../src/analysis/autoSteps.js';
import { activationPath } from '../../src/analysis/baselines.js';
import { scorePaths } from '../../src/analysis/pathSearch.js';
import { quadrature } from '../../src/analysis/quadrature.js';
import { fakeContexts, randomFake } from '../helpers/fakeOracle.js';

describe('--steps auto', () => {
  it('measures errors as Σ|JAS(sum) − gap| / Σ|gap| and picks the cheapest rule reaching the target', async () => {
    const o = randomFake(31, 3, 8, 4, 5);
    const ims = await fakeContexts(o, Float32Array.from({ length: 4 * o.inputSize }, (_, i) => Math.sin(i * 0.7) * 3), 4);
    const paths = ims.map(activationPath);
    const s = await scorePaths(o, ims, paths.map((p) => [p]), quadrature('midpoint', 6));
    const direct = s.reduce((a, r) => a + Math.abs(r[0]!.jasSum - r[0]!.completenessGap), 0) / s.reduce((a, r) => a + Math.abs(r[0]!.completenessGap), 0);
    expect(await completenessError(o, ims, paths, 'midpoint', 6)).toBeCloseTo(direct, 12);

    const c = await chooseRule(o, ims);
    expect(c.maxError).toBe(c.reference);
    expect(c.reference).toBeCloseTo(await completenessError(o, ims, paths, 'left', 20), 12);
    expect(c.reached).toBe(true);
    expect(c.error).toBeLessThanOrEqual(c.maxError);
    // Nothing cheaper reached the target.
    for (const t of c.tried) if (t.steps < c.steps) expect(t.error).toBeGreaterThan(c.maxError);
    // Second-order and Gauss rules beat left-20 with far fewer steps on a smooth model.
    expect(c.steps).toBeLessThan(20);
    expect(c.rule).not.toBe('left');
    // A tighter target costs at least as many steps.
    const tight = await chooseRule(o, ims, c.error / 100);
    expect(tight.steps).toBeGreaterThanOrEqual(c.steps);
    if (tight.reached) expect(tight.error).toBeLessThanOrEqual(c.error / 100);
    // An impossible target: the most accurate trial, flagged.
    const never = await chooseRule(o, ims, -1, [2, 3]);
    expect(never.reached).toBe(false);
    expect(never.error).toBe(Math.min(...never.tried.map((t) => t.error)));
    expect(AUTO_LADDER[0]).toBe(2);
  });
});
