// Every fixture export style (torch/timm/HF/DeiT exports, MatMul and Gemm, LayerNorm fused or
// decomposed, fixed batch 1, external data, float16 weights, mean pooling): int8 static and dynamic
// quantization fuse every quantized linear into an integer kernel, and float16 conversion loads and
// runs; an opset-9 export is refused (exit 3).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openVitModel } from '../../src/services/vitModel.js';
import { encodeModel } from '../../src/onnx/model.js';
import { Graph } from '../../src/onnx/graph.js';
import { optimizedGraph } from '../../src/runtime/optimized.js';
import { createSession } from '../../src/runtime/session.js';
import { quantizeStatic, scopeOf } from '../../src/services/quantizeCore.js';
import { quantizeLinearsDynamic } from '../../src/onnx/rewrite/quantizeDynamic.js';
import { convertToFloat16 } from '../../src/onnx/rewrite/float16.js';
import { float32Islands } from '../../src/quantize/islands.js';
import { gaussian, mulberry32 } from '../../src/vit/synth.js';

const ROOT = path.resolve(__dirname, '../..');
const FILES = [...fs.readdirSync(path.join(ROOT, 'fixtures/exports')).map((f) => `fixtures/exports/${f}`), ...fs.readdirSync(path.join(ROOT, 'fixtures/models')).map((f) => `fixtures/models/${f}`)].filter(
  (f) => f.endsWith('.onnx') && !f.includes('opset9'),
);

describe('quantize every fixture export style', () => {
  it('has the export styles to test', () => expect(FILES.length).toBeGreaterThanOrEqual(15));
  for (const file of FILES) {
    it(`${path.basename(file)}: int8 and dynamic fully fused, fp16 runs`, async () => {
      const { loaded, layout } = openVitModel(path.join(ROOT, file));
      const f = layout.facts;
      const b = typeof f.batch === 'number' ? f.batch : 2;
      const dims = [b, f.channels, f.imageSize[0], f.imageSize[1]];
      const g = gaussian(mulberry32(1));
      const batch = { data: Float32Array.from({ length: dims.reduce((x, y) => x * y, 1) }, () => g()), dims };
      const s = await quantizeStatic(loaded.proto, layout, [batch], { method: 'minmax', runtime: { provider: 'cpu', threads: 1 } });
      // Per block: fc1, fc2, the projection and qkv (fused) or q, k, v (separate).
      const perBlock = layout.blocks.map((bl) => (bl.attention?.form === 'separate' ? 6 : 4));
      expect(s.layers.length).toBe(perBlock.reduce((x, y) => x + y, 0));
      expect((await optimizedGraph(encodeModel(s.model))).fusedInt8).toBe(s.layers.length);
      const d = quantizeLinearsDynamic(loaded.proto, scopeOf(loaded.proto, layout).chosen.map((t) => t.linear));
      expect((await optimizedGraph(encodeModel(d.model))).fusedInt8).toBe(d.layers.length);
      const keep = float32Islands(new Graph(loaded.proto), layout);
      const h = convertToFloat16(loaded.proto, (n) => keep.has(n));
      const sess = await createSession(encodeModel(h.model), { provider: 'cpu', threads: 1 });
      try {
        const out = await sess.run({ [layout.input]: { data: batch.data, dims } }, [layout.logits]);
        expect(out[layout.logits]!.type).toBe('float32');
        expect([...(out[layout.logits]!.data as Float32Array)].every(Number.isFinite)).toBe(true);
      } finally {
        await sess.release();
      }
    }, 60_000);
  }
});
