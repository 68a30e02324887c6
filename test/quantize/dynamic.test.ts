// Dynamic int8 (no calibration): every quantized linear becomes one fused integer kernel in the
// graph ONNX Runtime runs, and the outputs stay close to float.
import { describe, expect, it } from 'vitest';
import { synthVitModel, gaussian, mulberry32 } from '../../src/vit/synth.js';
import { locateVit } from '../../src/vit/locate.js';
import { encodeModel } from '../../src/onnx/model.js';
import { optimizedGraph } from '../../src/runtime/optimized.js';
import { createSession } from '../../src/runtime/session.js';
import { linearTargets, selectTargets } from '../../src/quantize/targets.js';
import { quantizeLinearsDynamic } from '../../src/onnx/rewrite/quantizeDynamic.js';
import { softmax } from '../../src/analysis/stats.js';
import type { ModelProto } from '../../src/onnx/proto.js';

async function logits(m: ModelProto, input: string, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await createSession(encodeModel(m), { provider: 'cpu', threads: 1 });
  try {
    return Object.values(await s.run({ [input]: { data, dims } }))[0]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('dynamic int8', () => {
  for (const style of ['matmul', 'gemm'] as const) {
    it(`${style}: one fused kernel per linear, probabilities within 0.05 of float`, async () => {
      const model = synthVitModel({ linear: style, depth: 2, width: 32, ffn: 64, seed: 6 });
      const layout = locateVit(model);
      const chosen = selectTargets(linearTargets(layout));
      const r = quantizeLinearsDynamic(model, chosen.map((t) => t.linear));
      expect(r.skipped).toEqual([]);
      expect(r.layers.length).toBe(12);
      const opt = await optimizedGraph(encodeModel(r.model));
      expect(opt.fusedInt8).toBe(12);
      const g = gaussian(mulberry32(3));
      const x = Float32Array.from({ length: 8 * 784 }, () => g());
      const [a, b] = [await logits(model, layout.input, x, [8, 1, 28, 28]), await logits(r.model, layout.input, x, [8, 1, 28, 28])];
      const pa = softmax(a, 8, 10);
      const pb = softmax(b, 8, 10);
      let d = 0;
      for (let i = 0; i < pa.length; i++) d = Math.max(d, Math.abs(pa[i]! - pb[i]!));
      expect(d).toBeLessThan(0.05);
      for (const l of r.layers) expect(l.maxWeightStepError).toBeLessThanOrEqual(0.5 + 1e-4);
    });
  }
});
