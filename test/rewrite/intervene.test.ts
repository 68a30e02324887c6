// The intervention rewrite: fed the clean rows it reproduces the model bit for bit; fed anything
// else it changes only the chosen row (or shifts the patch mean); scale and override forms; every
// fixture export style (btf and flat neuron tensors, opsets 9..21, fixed batch, mean pooling).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import { exposeNeuronRows, interveneNeurons } from '../../src/onnx/rewrite/intervene.js';
import { resolveToken, type TokenChoice } from '../../src/vit/tokens.js';
import { exposeOutputs, selectOutputs } from '../../src/onnx/rewrite/expose.js';
import { createSession, type Feed } from '../../src/runtime/session.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import type { ViTLayout } from '../../src/vit/types.js';
import { FIXTURE_DIR, VIT_MNIST, fixtureLayout, fixtureManifest, vitMnistLayout } from './layouts.js';
import { randomImages, rng } from './data.js';

async function runModel(model: ModelProto, feeds: Record<string, Feed>, outputs: string[]) {
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    return await s.run(feeds, outputs);
  } finally {
    await s.release();
  }
}

function batchOf(layout: ViTLayout): number {
  return typeof layout.inputDims[0] === 'number' ? layout.inputDims[0] : 3;
}

function imageFeed(layout: ViTLayout, batch: number, seed: number): Feed {
  const [, c, h, w] = layout.inputDims as number[];
  return { data: randomImages(batch, c! * h! * w!, seed), dims: [batch, c!, h!, w!] };
}

const cases: { name: string; file: string; layout: () => ViTLayout }[] = [
  ...Object.keys(fixtureManifest()).map((f) => ({ name: f, file: path.join(FIXTURE_DIR, f), layout: () => fixtureLayout(f) })),
  ...(fs.existsSync(VIT_MNIST) ? [{ name: 'vit-mnist.onnx', file: VIT_MNIST, layout: vitMnistLayout }] : []),
];

describe.each(cases)('intervention on $name', ({ file, layout: mkLayout }) => {
  const layout = mkLayout();
  const model = loadModel(file).proto;
  const batch = batchOf(layout);
  const F = layout.facts.ffnWidth;
  const T = layout.facts.tokens;
  const tokens: TokenChoice[] = [layout.classToken ? 'cls' : 'mean', T - 2];
  const all = layout.blocks.map((b) => b.index);

  it.each(tokens)('override = clean rows reproduces the logits exactly (token %s)', async (token) => {
    const images = imageFeed(layout, batch, 11);
    const clean = exposeNeuronRows(model, layout, { token });
    const cleanOut = await runModel(clean.model, { [layout.input]: images }, [layout.logits, ...Object.values(clean.activations)]);
    const iv = interveneNeurons(model, layout, { token, layers: all });
    const feeds: Record<string, Feed> = { [layout.input]: images };
    for (const l of all) feeds[iv.inputs[l]!] = { data: cleanOut[clean.activations[l]!]!.data, dims: [batch, F] };
    const out = await runModel(iv.model, feeds, [layout.logits]);
    expect(Array.from(out[layout.logits]!.data as Float32Array)).toEqual(Array.from(cleanOut[layout.logits]!.data as Float32Array));
    // And the scale form with factor 1 is the identity too.
    const sc = interveneNeurons(model, layout, { token, layers: all, mode: 'scale' });
    const sf: Record<string, Feed> = { [layout.input]: images };
    for (const l of all) sf[sc.inputs[l]!] = { data: new Float32Array(batch * F).fill(1), dims: [batch, F] };
    const so = await runModel(sc.model, sf, [layout.logits]);
    expect(Array.from(so[layout.logits]!.data as Float32Array)).toEqual(Array.from(cleanOut[layout.logits]!.data as Float32Array));
    // Affine (row * s + o): identity at s = 1, o = 0, and the override form at s = 0, o = clean row.
    const af = interveneNeurons(model, layout, { token, layers: all, mode: 'affine' });
    for (const [sv, useClean] of [[1, false], [0, true]] as const) {
      const ff: Record<string, Feed> = { [layout.input]: images };
      for (const l of all) {
        ff[af.scaleInputs[l]!] = { data: new Float32Array(batch * F).fill(sv), dims: [batch, F] };
        ff[af.inputs[l]!] = { data: useClean ? cleanOut[clean.activations[l]!]!.data : new Float32Array(batch * F), dims: [batch, F] };
      }
      const ao = await runModel(af.model, ff, [layout.logits]);
      expect(Array.from(ao[layout.logits]!.data as Float32Array)).toEqual(Array.from(cleanOut[layout.logits]!.data as Float32Array));
    }
  });

  it.each(tokens)('a new override changes only the chosen row (token %s)', async (token) => {
    const images = imageFeed(layout, batch, 12);
    const l = layout.blocks.length - 1;
    const iv = interveneNeurons(model, layout, { token, layers: [l], exposeActivations: true });
    const blk = layout.blocks[l]!;
    const r = rng(5);
    const u = Float32Array.from({ length: batch * F }, () => r() * 4 - 2);
    const outs = await runModel(exposeOutputs(iv.model, [blk.neuron, iv.intervened[l]!]), { [layout.input]: images, [iv.inputs[l]!]: { data: u, dims: [batch, F] } }, [
      blk.neuron,
      iv.intervened[l]!,
      iv.activations[l]!,
    ]);
    const before = outs[blk.neuron]!.data as Float32Array;
    const after = outs[iv.intervened[l]!]!.data as Float32Array;
    expect(outs[iv.intervened[l]!]!.dims).toEqual(outs[blk.neuron]!.dims);
    const tok = resolveToken(layout, token);
    const act = outs[iv.activations[l]!]!.data as Float32Array;
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < T; t++) {
        for (let f = 0; f < F; f++) {
          const i = (b * T + t) * F + f; // same index for [B,T,F] and [B*T,F]
          if (tok.kind === 'row') {
            expect(after[i]).toBe(t === tok.row ? u[b * F + f] : before[i]);
            if (t === tok.row) expect(act[b * F + f]).toBe(before[i]);
          } else if (!tok.rows.includes(t)) {
            expect(after[i]).toBe(before[i]);
          }
        }
      }
      if (tok.kind === 'mean') {
        // The patch mean becomes u; each row keeps its deviation from the old mean.
        for (let f = 0; f < F; f++) {
          let sa = 0;
          let sb = 0;
          for (const t of tok.rows) {
            sa += after[(b * T + t) * F + f]!;
            sb += before[(b * T + t) * F + f]!;
          }
          const P = tok.rows.length;
          expect(sa / P).toBeCloseTo(u[b * F + f]!, 4);
          expect(act[b * F + f]).toBeCloseTo(sb / P, 5);
          for (const t of tok.rows) expect(after[(b * T + t) * F + f]! - u[b * F + f]!).toBeCloseTo(before[(b * T + t) * F + f]! - sb / P, 4);
        }
      }
    }
  });

  it('the scale form multiplies only the chosen row', async () => {
    if (!layout.classToken) return;
    const images = imageFeed(layout, batch, 13);
    const l = 0;
    const iv = interveneNeurons(model, layout, { token: 'cls', layers: [l], mode: 'scale' });
    const r = rng(6);
    const s = Float32Array.from({ length: batch * F }, () => r() * 2);
    const blk = layout.blocks[l]!;
    const outs = await runModel(exposeOutputs(iv.model, [blk.neuron, iv.intervened[l]!]), { [layout.input]: images, [iv.inputs[l]!]: { data: s, dims: [batch, F] } }, [
      blk.neuron,
      iv.intervened[l]!,
    ]);
    const before = outs[blk.neuron]!.data as Float32Array;
    const after = outs[iv.intervened[l]!]!.data as Float32Array;
    const row = layout.classToken.row;
    for (let b = 0; b < batch; b++)
      for (let t = 0; t < T; t++)
        for (let f = 0; f < F; f++) {
          const i = (b * T + t) * F + f;
          expect(after[i]).toBe(t === row ? Math.fround(before[i]! * s[b * F + f]!) : before[i]);
        }
  });
});

describe('expose', () => {
  const file = path.join(FIXTURE_DIR, 'erf-ln-matmul.onnx');
  it('adds and selects outputs and rejects unknown tensors', () => {
    const layout = fixtureLayout('erf-ln-matmul.onnx');
    const m = loadModel(file).proto;
    const e = exposeOutputs(m, [layout.blocks[0]!.neuron, 'logits']);
    expect(e.graph!.output.map((o) => o.name)).toEqual(['logits', layout.blocks[0]!.neuron]);
    expect(selectOutputs(e, [layout.blocks[0]!.neuron]).graph!.output.map((o) => o.name)).toEqual([layout.blocks[0]!.neuron]);
    expect(() => exposeOutputs(m, ['no-such-tensor'])).toThrow(/no tensor named/);
  });
  it('refuses a class-token choice on a mean-pooled model, and bad layers', () => {
    const layout = fixtureLayout('mean-pool.onnx');
    const m = loadModel(path.join(FIXTURE_DIR, 'mean-pool.onnx')).proto;
    expect(() => interveneNeurons(m, layout, { token: 'cls' })).toThrow(/no class token/);
    expect(() => interveneNeurons(m, layout, { layers: [5] })).toThrow(/does not exist/);
    expect(() => interveneNeurons(m, layout, { token: 99 })).toThrow(/outside/);
  });
});
