// float16 conversion with float32 islands: runs in ONNX Runtime with float32 inputs and outputs on
// LayerNormalization and decomposed-LayerNorm exports (MatMul and Gemm), keeps norms / Softmax /
// residual Adds / head in float32, stays close to float32, and counts weights clamped to ±65504.
import { describe, expect, it } from 'vitest';
import { synthVitModel, synthWeights } from '../../src/vit/synth.js';
import { locateVit } from '../../src/vit/locate.js';
import { encodeModel } from '../../src/onnx/model.js';
import { Graph } from '../../src/onnx/graph.js';
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/session.js';
import { convertToFloat16 } from '../../src/onnx/rewrite/float16.js';
import { float32Islands } from '../../src/quantize/islands.js';
import { modelFacts } from '../../src/onnx/facts.js';

const X = Float32Array.from({ length: 4 * 784 }, (_, i) => (Math.sin(i * 0.7) + 1) / 2);

async function run(m: ModelProto, input: string): Promise<{ data: Float32Array; type: string }> {
  const s = await createSession(encodeModel(m), { provider: 'cpu', threads: 1 });
  try {
    const o = Object.values(await s.run({ [input]: { data: X, dims: [4, 1, 28, 28] } }))[0]!;
    return { data: o.data as Float32Array, type: o.type };
  } finally {
    await s.release();
  }
}

describe('convertToFloat16', () => {
  for (const norm of ['layernorm', 'decomposed'] as const) {
    for (const linear of ['matmul', 'gemm'] as const) {
      it(`${norm} + ${linear}: float32 in and out, float16 weights, logits within 0.01 of float32`, async () => {
        const model = synthVitModel({ norm, linear, depth: 2, seed: 3 });
        const layout = locateVit(model);
        const g = new Graph(model);
        const keep = float32Islands(g, layout);
        // Every norm node, the Softmaxes, the residual Adds and the head stay float32.
        expect([...keep].filter((n) => n.opType === 'Softmax').length).toBe(2);
        expect(keep.has(g.producerOf(layout.blocks[1]!.output)!)).toBe(true);
        const r = convertToFloat16(model, (n) => keep.has(n));
        expect(r.clampedWeights).toBe(0);
        expect(modelFacts(r.model).precision).toBe('float16');
        const q = r.model.graph!;
        expect(q.input[0]!.type?.value.case === 'tensorType' && q.input[0]!.type.value.value.elemType).toBe(DataType.FLOAT);
        const [a, b] = [await run(model, layout.input), await run(r.model, layout.input)];
        expect(b.type).toBe('float32');
        let d = 0;
        let m = 0;
        for (let i = 0; i < a.data.length; i++) {
          d = Math.max(d, Math.abs(a.data[i]! - b.data[i]!));
          m = Math.max(m, Math.abs(a.data[i]!));
        }
        expect(d).toBeGreaterThan(0); // it did compute in float16
        expect(d).toBeLessThan(0.01 * Math.max(1, m));
      });
    }
  }

  it('clamps weights beyond the float16 range and counts them', () => {
    const w = synthWeights({ depth: 1, seed: 2 });
    const fc1 = w['block.0.fc1.weight']!.slice();
    fc1[5] = 1e6;
    fc1[9] = -7e4;
    const model = synthVitModel({ depth: 1, seed: 2, weights: { 'block.0.fc1.weight': fc1 } });
    const layout = locateVit(model);
    const keep = float32Islands(new Graph(model), layout);
    expect(convertToFloat16(model, (n) => keep.has(n)).clampedWeights).toBe(2);
  });
});
