// Pure per-layer computations of probe-layers: token rows of a residual stream, chance levels,
// cross-validated probe summaries, and the running sums over image batches (Accumulator) that
// give each layer's results. No sessions here: the orchestration (probeLayers.ts) feeds them.
import { crossValidateProbe } from '../analysis/linearProbe.js';
import { blockInfluence } from '../analysis/stats.js';
import { gateColumn } from '../onnx/rewrite/ablate.js';
import type { ResolvedToken } from '../vit/tokens.js';
import type { ViTLayout } from '../vit/types.js';
import type { LayerResult, ProbeSummary } from './probeSchema.js';

/** Rows [b, D] of a residual stream [b, T, D]: one token row, or the mean of the given rows. */
export function tokenRows(x: Float32Array, b: number, T: number, D: number, tok: ResolvedToken): Float32Array {
  const out = new Float32Array(b * D);
  for (let i = 0; i < b; i++) {
    const o = i * D;
    if (tok.kind === 'row') {
      out.set(x.subarray((i * T + tok.row) * D, (i * T + tok.row + 1) * D), o);
    } else {
      const acc = new Float64Array(D);
      for (const r of tok.rows) {
        const base = (i * T + r) * D;
        for (let j = 0; j < D; j++) acc[j] += x[base + j]!;
      }
      for (let j = 0; j < D; j++) out[o + j] = acc[j]! / tok.rows.length;
    }
  }
  return out;
}

/** Accuracy of always predicting the most frequent label. */
export function majorityChance(labels: ArrayLike<number>, classes: number): number {
  const c = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) c[labels[i]!]!++;
  let m = 0;
  for (const v of c) if (v > m) m = v;
  return labels.length ? m / labels.length : NaN;
}

/** Cross-validated probe summary as reported. */
export function probeFeatures(X: Float32Array, y: Int32Array, n: number, d: number, classes: number, o: { folds: number; seed: number; l2: number }): ProbeSummary {
  const cv = crossValidateProbe(X, y, n, d, classes, { folds: o.folds, seed: o.seed, l2: o.l2 });
  return { accuracy: cv.mean, std: cv.std, folds: cv.foldAccuracies, converged: cv.converged.every(Boolean) };
}

/** Running sums over the image batches of one probe-layers run (n = images added so far). */
export class Accumulator {
  readonly L: number;
  readonly K: number;
  readonly D: number;
  readonly F: number;
  n = 0;
  modelCorrect = 0;
  modelProb = 0;
  readonly lens: { correct: number; prob: number; kl: number }[];
  readonly red: { attn: number; mlp: number; block: number; rows: number }[];
  /** Config 0 = all branches on; config 1 + c = gate column c off. */
  readonly abl: { correct: number; prob: number }[];
  readonly neuronSum: Float64Array;
  readonly neuronMaxAbs: Float64Array[];
  readonly ig: { abs: number; sum: number; gap: number }[];
  readonly features: Float32Array[];
  readonly neurons: Float32Array[];
  readonly labels: Int32Array;

  constructor(layout: ViTLayout, count: number) {
    this.L = layout.blocks.length;
    this.K = layout.facts.numClasses;
    this.D = layout.facts.width;
    this.F = layout.facts.ffnWidth;
    const L = this.L;
    this.lens = Array.from({ length: L }, () => ({ correct: 0, prob: 0, kl: 0 }));
    this.red = Array.from({ length: L }, () => ({ attn: 0, mlp: 0, block: 0, rows: 0 }));
    this.abl = Array.from({ length: 2 * L + 1 }, () => ({ correct: 0, prob: 0 }));
    this.neuronSum = new Float64Array(L);
    this.neuronMaxAbs = Array.from({ length: L }, () => new Float64Array(this.F));
    this.ig = Array.from({ length: L }, () => ({ abs: 0, sum: 0, gap: 0 }));
    this.features = Array.from({ length: L }, () => new Float32Array(count * this.D));
    this.neurons = Array.from({ length: L }, () => new Float32Array(count * this.F));
    this.labels = new Int32Array(count);
  }

  /** Block Influence sums of layer l over a batch of b images (residual streams [b, T, D]). */
  addRedundancy(l: number, xin: Float32Array, xmid: Float32Array, xout: Float32Array, b: number, T: number): void {
    const D = this.D;
    const r = this.red[l]!;
    r.attn += blockInfluence(xin, xmid, b, T, D) * b * T;
    r.mlp += blockInfluence(xmid, xout, b, T, D) * b * T;
    r.block += blockInfluence(xin, xout, b, T, D) * b * T;
    r.rows += b * T;
  }

  /** Layer l's neuron rows [b, F] of the images from n0 on: kept for the probe, summed, max |a| per neuron. */
  addNeuronRows(l: number, a: Float32Array, b: number, n0: number): void {
    const F = this.F;
    this.neurons[l]!.set(a, n0 * F);
    const mx = this.neuronMaxAbs[l]!;
    let sum = 0;
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < F; j++) {
        const v = a[i * F + j]!;
        sum += v;
        const av = Math.abs(v);
        if (av > mx[j]!) mx[j] = av;
      }
    }
    this.neuronSum[l] += sum;
  }

  /** Layer l's integrated gradients [b, F] with P(row = 0) and P(row) per image: sum |IG|, sum IG, completeness gap. */
  addIntegratedGradients(l: number, ig: Float64Array, p0: Float32Array, p1: Float32Array, b: number): void {
    const F = this.F;
    const e = this.ig[l]!;
    for (let i = 0; i < b; i++) {
      let absSum = 0;
      let sum = 0;
      for (let j = 0; j < F; j++) {
        const v = ig[i * F + j]!;
        absSum += Math.abs(v);
        sum += v;
      }
      e.abs += absSum;
      e.sum += sum;
      e.gap += Math.abs(sum - (p1[i]! - p0[i]!));
    }
  }

  /** The gated model with every branch on over the n images seen: the reference of the ablation drops. */
  ablationBaseline(): { accuracy: number; meanTrueProb: number } {
    const n = this.n;
    return { accuracy: this.abl[0]!.correct / n, meanTrueProb: this.abl[0]!.prob / n };
  }

  /** Layer l's results over the n images seen (fits its two linear probes); IG fields null unless attributed. */
  layerResult(l: number, o: { folds: number; seed: number; l2: number; deadThreshold: number }, attributed: boolean): LayerResult {
    const { n, K, D, F } = this;
    const labelsOf = this.labels.subarray(0, n);
    const base = this.ablationBaseline();
    const probe = probeFeatures(this.features[l]!.subarray(0, n * D), labelsOf, n, D, K, { folds: o.folds, seed: o.seed, l2: o.l2 });
    const neuronProbe = probeFeatures(this.neurons[l]!.subarray(0, n * F), labelsOf, n, F, K, { folds: o.folds, seed: o.seed, l2: o.l2 });
    const abl = (col: number) => {
      const a = this.abl[col + 1]!;
      const accuracy = a.correct / n;
      const meanTrueProb = a.prob / n;
      return { accuracy, meanTrueProb, accuracyDrop: base.accuracy - accuracy, trueProbDrop: base.meanTrueProb - meanTrueProb };
    };
    const red = this.red[l]!;
    let dead = 0;
    for (const v of this.neuronMaxAbs[l]!) if (v <= o.deadThreshold) dead++;
    const ig = this.ig[l]!;
    return {
      layer: l,
      logitLens: { accuracy: this.lens[l]!.correct / n, meanTrueProb: this.lens[l]!.prob / n, meanKl: this.lens[l]!.kl / n },
      probe,
      neuronProbe,
      redundancy: { attention: red.attn / red.rows, mlp: red.mlp / red.rows, block: red.block / red.rows },
      ablation: { attention: abl(gateColumn(l, 'attn')), mlp: abl(gateColumn(l, 'mlp')) },
      neurons: {
        meanActivation: this.neuronSum[l]! / (n * F),
        deadFraction: dead / F,
        igMass: attributed ? ig.abs / n : null,
        igSum: attributed ? ig.sum / n : null,
        completenessGap: attributed ? ig.gap / n : null,
      },
    };
  }
}
