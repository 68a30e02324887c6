// Independent check of the located layout: run each model in ONNX Runtime with the located tensors
// exposed, then verify their runtime shapes against the reported facts and their values against
// the roles claimed (residual sums, activation of fc1, layer norm of the residual stream).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import { clone, ModelProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { namedValueInfo } from '../../src/onnx/builder.js';
import { tensorToHost, toNumbers } from '../../src/onnx/tensor.js';
import { createSession, type Output } from '../../src/runtime/session.js';
import { locateVit } from '../../src/vit/locate.js';
import type { ActivationKind, ViTLayout } from '../../src/vit/types.js';

const FIXTURES = path.resolve(__dirname, '../../fixtures/models');
const VIT_MNIST = path.resolve(__dirname, '../../../shared/models/vit-mnist.onnx');
const files = Object.keys(JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'))).map((f) => path.join(FIXTURES, f));
if (fs.existsSync(VIT_MNIST)) files.push(VIT_MNIST);

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}
const ACTS: Record<ActivationKind, (x: number) => number> = {
  'gelu-erf': (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  'gelu-op': (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  'gelu-tanh': (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  relu: (x) => Math.max(0, x),
};

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  expect(worst).toBeLessThan(tol);
}

function constant(model: ModelProto, name: string): number[] {
  return toNumbers(tensorToHost(model.graph!.initializer.find((t) => t.name === name)!));
}

async function runExposed(model: ModelProto, layout: ViTLayout, names: string[], batch: number): Promise<Record<string, Output>> {
  const m = clone(ModelProtoSchema, model);
  const outs = new Set(m.graph!.output.map((o) => o.name));
  for (const n of names) if (!outs.has(n)) {
    m.graph!.output.push(namedValueInfo(n));
    outs.add(n);
  }
  const s = await createSession(encodeModel(m), { provider: 'cpu', threads: 1 });
  const [c, h, w] = [layout.facts.channels, ...layout.facts.imageSize];
  const data = Float32Array.from({ length: batch * c * h * w }, (_, i) => (Math.sin(i * 0.37) + 1) / 2);
  const res = await s.run({ [layout.input]: { data, dims: [batch, ...layout.inputDims.slice(1).map(Number)] } }, [...outs]);
  await s.release();
  return res;
}

describe('located tensors have the shapes and values their roles imply', () => {
  for (const file of files) {
    it(path.basename(file), async () => {
      const { proto } = loadModel(file);
      const l = locateVit(proto);
      const f = l.facts;
      const B = f.batch === 'dynamic' ? 2 : f.batch;
      const names = [l.patchEmbed.output, l.pooled, l.logits, ...(l.finalNorm ? [l.finalNorm.output] : [])];
      for (const b of l.blocks) names.push(b.input, b.attnBranch, b.attnResidual, b.mlpBranch, b.output, b.attnSoftmax, b.fc1.output, b.neuron, b.mlpNorm!.output);
      const r = await runExposed(proto, l, names, B);
      const [T, D, F] = [f.tokens, f.width, f.ffnWidth];
      expect(r[l.patchEmbed.output]!.dims).toEqual([B, D, f.imageSize[0] / f.patchSize!, f.imageSize[1] / f.patchSize!]);
      expect(f.numPatches).toBe((f.imageSize[0] / f.patchSize!) * (f.imageSize[1] / f.patchSize!));
      expect(r[l.pooled]!.dims).toEqual([B, D]);
      expect(r[l.logits]!.dims).toEqual([B, f.numClasses]);
      for (const b of l.blocks) {
        for (const t of [b.input, b.attnBranch, b.attnResidual, b.mlpBranch, b.output]) expect(r[t]!.dims).toEqual([B, T, D]);
        const neuronDims = b.neuronLayout === 'flat' ? [B * T, F] : [B, T, F];
        expect(r[b.neuron]!.dims).toEqual(neuronDims);
        expect(r[b.fc1.output]!.dims).toEqual(neuronDims);
        const sm = r[b.attnSoftmax]!;
        expect(sm.dims.slice(-2)).toEqual([T, T]);
        expect(sm.dims.reduce((a, c) => a * c, 1)).toBe(B * f.heads! * T * T);
        // Residual stream: x + attn, then + mlp.
        const add = (a: Output, c: Output) => Array.from(a.data as Float32Array, (v, i) => v + (c.data as Float32Array)[i]!);
        expectClose(r[b.attnResidual]!.data as Float32Array, add(r[b.input]!, r[b.attnBranch]!), 1e-5);
        expectClose(r[b.output]!.data as Float32Array, add(r[b.attnResidual]!, r[b.mlpBranch]!), 1e-5);
        // The neuron tensor is the activation of fc1's output.
        expectClose(r[b.neuron]!.data as Float32Array, Array.from(r[b.fc1.output]!.data as Float32Array, ACTS[b.activation.kind]), 1e-5);
        // The MLP norm normalises the residual stream with the reported gamma/beta (LayerNorm kinds).
        if (b.mlpNorm!.kind !== 'batchnorm') {
          const x = r[b.attnResidual]!.data as Float32Array;
          const gamma = constant(proto, b.mlpNorm!.scale!);
          const beta = constant(proto, b.mlpNorm!.bias!);
          const want = new Float32Array(x.length);
          for (let row = 0; row < x.length / D; row++) {
            const v = x.subarray(row * D, row * D + D);
            const mean = v.reduce((a, c) => a + c, 0) / D;
            const variance = v.reduce((a, c) => a + (c - mean) ** 2, 0) / D;
            for (let j = 0; j < D; j++) want[row * D + j] = ((v[j]! - mean) / Math.sqrt(variance + 1e-5)) * gamma[j]! + beta[j]!;
          }
          expectClose(r[b.mlpNorm!.output]!.data as Float32Array, want, 1e-4);
        }
      }
      for (let i = 1; i < l.blocks.length; i++) expect(l.blocks[i]!.input).toBe(l.blocks[i - 1]!.output);
    });
  }
});
