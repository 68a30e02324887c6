// The training graph's loss and gradients (vitpath's own autodiff, run in ONNX Runtime) against an
// independent computation: the float64 plain-JS forward pass of the synthetic ViT
// (test/fixtures/reference-vit.ts) with softmax cross-entropy, differentiated by central finite
// differences, for sampled entries of EVERY weight of a tiny 2-block ViT.
import { describe, expect, it } from 'vitest';
import { buildSyntheticVit, mulberry32, type SynthVitConfig } from '../../src/vit/synth.js';
import { buildTrainingGraph, initialValues } from '../../src/train/trainingGraph.js';
import { logicalWeights } from '../../src/train/trainer.js';
import { createSession } from '../../src/runtime/session.js';
import { encodeModel } from '../../src/onnx/model.js';
import { referenceForward } from '../fixtures/reference-vit.js';

const TINY: Partial<SynthVitConfig> = { imageSize: 8, channels: 1, patch: 4, width: 8, depth: 2, heads: 2, ffn: 16, classes: 4, opset: 17, seed: 3, gelu: 'erf', norm: 'layernorm', linear: 'matmul', head: 'cls', batch: 'dynamic' };
const BATCH = 3;

/** Mean softmax cross-entropy of the reference logits (float64). */
function refLoss(cfg: Omit<SynthVitConfig, 'weights'>, W: Record<string, Float32Array>, x: Float32Array, labels: number[]): number {
  const logits = referenceForward(cfg, W, x, labels.length);
  const C = cfg.classes;
  let sum = 0;
  for (let b = 0; b < labels.length; b++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[b * C + c]!);
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(logits[b * C + c]! - m);
    sum += -(logits[b * C + labels[b]!]! - m - Math.log(z));
  }
  return sum / labels.length;
}

describe('training graph gradients', () => {
  it('loss and d loss / d weight match the float64 reference and finite differences for every weight', async () => {
    const vit = buildSyntheticVit(TINY);
    const tg = await buildTrainingGraph(vit, { threads: 1 });
    expect(tg.params.map((p) => p.logical).sort()).toEqual(Object.keys(vit.weights).sort());
    const r = mulberry32(11);
    const x = Float32Array.from({ length: BATCH * 64 }, () => r());
    const labels = [2, 0, 3];
    const onehot = new Float32Array(BATCH * 4);
    labels.forEach((l, b) => (onehot[b * 4 + l] = 1));
    const weights = initialValues(vit.model, tg.params);
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
      input: { data: x, dims: [BATCH, 1, 8, 8] },
      target: { data: onehot, dims: [BATCH, 4] },
    };
    for (const p of tg.params) feeds[p.name] = { data: weights[p.name]!, dims: p.dims };
    const s = await createSession(encodeModel(tg.model), { provider: 'cpu', threads: 1 });
    const out = await s.run(feeds);
    await s.release();

    const W = vit.weights; // logical layout, as the reference takes them
    const loss = (out.loss!.data as Float32Array)[0]!;
    const want = refLoss(vit.config, W, x, labels);
    expect(Math.abs(loss - want)).toBeLessThan(1e-5 * Math.max(1, want));

    const grads: Record<string, Float32Array> = {};
    for (const p of tg.params) grads[p.name] = out[tg.gradOutputs[p.name]!]!.data as Float32Array;
    const logicalGrads = logicalWeights(tg.params, grads);
    const pick = mulberry32(5);
    let worst = 0;
    let checked = 0;
    for (const p of tg.params) {
      const w = W[p.logical]!;
      const g = logicalGrads[p.logical]!;
      expect(g.length).toBe(w.length);
      expect(Array.from(g).every(Number.isFinite)).toBe(true);
      for (let k = 0; k < 3; k++) {
        const i = Math.floor(pick() * w.length);
        const orig = w[i]!;
        const eps = 1e-3 * Math.max(1, Math.abs(orig));
        // Float32 storage: difference by the actually representable perturbations.
        const up = Math.fround(orig + eps);
        const dn = Math.fround(orig - eps);
        w[i] = up;
        const lu = refLoss(vit.config, W, x, labels);
        w[i] = dn;
        const ld = refLoss(vit.config, W, x, labels);
        w[i] = orig;
        const fd = (lu - ld) / (up - dn);
        const err = Math.abs(g[i]! - fd) / Math.max(1e-2, Math.abs(fd));
        worst = Math.max(worst, err);
        checked++;
        expect(err, `${p.logical}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`).toBeLessThan(5e-4);
      }
    }
    expect(checked).toBe(3 * tg.params.length);
    // Measured worst relative error: 6e-5 (float32 graph vs float64 reference).
    expect(worst).toBeLessThan(5e-4);
  }, 60_000);
});
