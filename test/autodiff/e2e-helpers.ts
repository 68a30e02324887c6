// Shared by the end-to-end gradient tests: central finite differences of F through ONNX Runtime on
// the intervened forward model (intervention + objective, no backward graph), batched so that every
// perturbed copy of a sample is one row of a single run.
import type { LoadedModel } from '../../src/onnx/model.js';
import { encodeModel } from '../../src/onnx/model.js';
import { interveneNeurons, type InterventionMode } from '../../src/onnx/rewrite/intervene.js';
import { batchDim, type TokenChoice } from '../../src/vit/tokens.js';
import { appendObjective, type ObjectiveKind } from '../../src/onnx/autodiff/objective.js';
import { createSession, type Feed, type ModelSession } from '../../src/runtime/session.js';
import type { ViTLayout } from '../../src/vit/types.js';

export interface ForwardOptions {
  layers: number[];
  token?: TokenChoice;
  mode?: InterventionMode;
  objective?: ObjectiveKind;
}

/** F per sample from the intervened forward model, run in chunks the model accepts. */
export class ForwardF {
  private constructor(
    private readonly s: ModelSession,
    private readonly layout: ViTLayout,
    private readonly inputs: Record<number, string>,
    private readonly scaleInputs: Record<number, string>,
    private readonly perSample: string,
    readonly layers: number[],
  ) {}

  static async create(loaded: LoadedModel, layout: ViTLayout, o: ForwardOptions): Promise<ForwardF> {
    const iv = interveneNeurons(loaded.proto, layout, { layers: o.layers, token: o.token, mode: o.mode });
    const obj = appendObjective(iv.model, { logits: layout.logits, kind: o.objective, batchDim: batchDim(layout) });
    const s = await createSession(encodeModel(obj.model), { provider: 'cpu', threads: 1 });
    return new ForwardF(s, layout, iv.inputs, iv.scaleInputs ?? {}, obj.perSample, iv.layers);
  }

  get imageSize(): number {
    const f = this.layout.facts;
    return f.channels * f.imageSize[0] * f.imageSize[1];
  }

  /** Affine mode: the scale inputs' values (rows of [batch, ffn], tiled over perturbed copies). */
  scales: Record<number, Float32Array> = {};

  async eval(images: Float32Array, batch: number, targets: number[], overrides: Record<number, Float32Array>, scales = this.scales): Promise<Float32Array> {
    const fixed = typeof this.layout.inputDims[0] === 'number' ? (this.layout.inputDims[0] as number) : batch;
    const F = this.layout.facts.ffnWidth;
    const size = this.imageSize;
    const f = this.layout.facts;
    const out = new Float32Array(batch);
    for (let s = 0; s < batch; s += fixed) {
      const n = Math.min(fixed, batch - s);
      const feeds: Record<string, Feed> = {
        [this.layout.input]: { data: images.slice(s * size, (s + n) * size), dims: [n, f.channels, f.imageSize[0], f.imageSize[1]] },
        target: { data: BigInt64Array.from(targets.slice(s, s + n).map(BigInt)), dims: [n] },
      };
      for (const l of this.layers) {
        feeds[this.inputs[l]!] = { data: overrides[l]!.slice(s * F, (s + n) * F), dims: [n, F] };
        if (this.scaleInputs[l]) feeds[this.scaleInputs[l]!] = { data: scales[l]!.slice(s * F, (s + n) * F), dims: [n, F] };
      }
      const r = await this.s.run(feeds, [this.perSample]);
      out.set(r[this.perSample]!.data as Float32Array, s);
    }
    return out;
  }

  /**
   * Central differences dF/d override_l[b, i] for each listed (l, i) and every sample b, all in
   * one batched evaluation. Returns [sample][probe] derivatives.
   */
  async centralDiff(
    images: Float32Array,
    batch: number,
    targets: number[],
    overrides: Record<number, Float32Array>,
    probes: { layer: number; index: number }[],
    eps: number,
  ): Promise<number[][]> {
    const F = this.layout.facts.ffnWidth;
    const size = this.imageSize;
    const rows = batch * probes.length * 2;
    const img = new Float32Array(rows * size);
    const tg: number[] = [];
    const ov: Record<number, Float32Array> = {};
    const sc: Record<number, Float32Array> = {};
    for (const l of this.layers) ov[l] = new Float32Array(rows * F);
    for (const l of Object.keys(this.scales).map(Number)) sc[l] = new Float32Array(rows * F);
    const steps: number[] = [];
    let r = 0;
    for (let b = 0; b < batch; b++) {
      for (const p of probes) {
        for (const sign of [1, -1]) {
          img.set(images.subarray(b * size, (b + 1) * size), r * size);
          tg.push(targets[b]!);
          for (const l of this.layers) ov[l]!.set(overrides[l]!.subarray(b * F, (b + 1) * F), r * F);
          for (const l of Object.keys(sc).map(Number)) sc[l]!.set(this.scales[l]!.subarray(b * F, (b + 1) * F), r * F);
          const x = overrides[p.layer]![b * F + p.index]!;
          ov[p.layer]![r * F + p.index] = x + sign * eps;
          if (sign === 1) steps.push(0);
          steps[steps.length - 1]! += sign * ov[p.layer]![r * F + p.index]!; // the step float32 actually took
          r++;
        }
      }
    }
    const f = await this.eval(img, rows, tg, ov, sc);
    const out: number[][] = [];
    let k = 0;
    for (let b = 0; b < batch; b++) {
      const row: number[] = [];
      for (let j = 0; j < probes.length; j++, k++) row.push((f[2 * k]! - f[2 * k + 1]!) / steps[k]!);
      out.push(row);
    }
    return out;
  }

  /**
   * Richardson-extrapolated central differences: (4 D(h/2) - D(h)) / 3 cancels the h^2 term of the
   * truncation error (leaving O(h^4)), so a large step h keeps float32 rounding noise small.
   */
  async richardson(
    images: Float32Array,
    batch: number,
    targets: number[],
    overrides: Record<number, Float32Array>,
    probes: { layer: number; index: number }[],
    h: number,
  ): Promise<number[][]> {
    const d1 = await this.centralDiff(images, batch, targets, overrides, probes, h);
    const d2 = await this.centralDiff(images, batch, targets, overrides, probes, h / 2);
    return d1.map((row, b) => row.map((x, k) => (4 * d2[b]![k]! - x) / 3));
  }

  async release(): Promise<void> {
    await this.s.release();
  }
}

/** Evenly spread neuron indices: `count` per layer. */
export function probeNeurons(layers: number[], ffn: number, count: number, offset = 0): { layer: number; index: number }[] {
  const out: { layer: number; index: number }[] = [];
  for (const l of layers) for (let k = 0; k < count; k++) out.push({ layer: l, index: (Math.floor((k * ffn) / count) + offset + 7 * l) % ffn });
  return out;
}

/**
 * Worst |analytic - numeric| / (|numeric| + floor), with floor = 0.1 * the largest |numeric| of the
 * set: relative error for the gradients that matter; for near-zero ones an absolute error, so that
 * `worstError < tol` means |a - n| <= tol * |n| + (tol / 10) * max|n|. The absolute part covers the
 * float32 noise of the differences (~1e-7 * F / eps, up to ~7e-4 of the largest gradient measured).
 */
export function worstError(analytic: number[], numeric: number[]): number {
  const scale = Math.max(...numeric.map(Math.abs), 1e-30);
  let worst = 0;
  for (let i = 0; i < analytic.length; i++) worst = Math.max(worst, Math.abs(analytic[i]! - numeric[i]!) / (Math.abs(numeric[i]!) + 0.1 * scale));
  return worst;
}
