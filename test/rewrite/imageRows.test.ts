// shareImageRows: the per-image part of trace-path's gradient graph runs once per distinct image.
// A batch of m samples per image (different edits each) gives the same F, logits, rows and
// gradients as each sample run alone, on every fixture export style and on vit-mnist; the rewrite
// refuses graphs where a batch-dependent shape would cross from the image part to the samples.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { NeuronGradientEngine, distinctRows } from '../../src/engine/gradientEngine.js';
import { shareImageRows } from '../../src/onnx/rewrite/imageRows.js';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession } from '../../src/runtime/session.js';
import { encodeModel } from '../../src/onnx/model.js';
import { FIXTURE_DIR, VIT_MNIST, fixtureManifest } from './layouts.js';
import { randomImages, rng } from './data.js';

describe('distinctRows', () => {
  it('collapses consecutive repeats bitwise and indexes each row', () => {
    const a = Float32Array.from([1, 2, 1, 2, 3, 4, 1, 2, 0, 0, -0, 0]);
    const d = distinctRows(a, 2, 0, 6);
    expect(d.count).toBe(5);
    expect(Array.from(d.rows)).toEqual([1, 2, 3, 4, 1, 2, 0, 0, -0, 0]);
    expect(Array.from(d.index, Number)).toEqual([0, 0, 1, 2, 3, 4]);
    const part = distinctRows(a, 2, 1, 2);
    expect(part.count).toBe(2);
    expect(Array.from(part.index, Number)).toEqual([0, 1]);
  });
});

describe('shareImageRows refuses what a gather cannot carry', () => {
  it('returns null when a shape computed from the image batch feeds a per-sample node', async () => {
    const b = new GraphBuilder(17, 't', new Set(['x', 'u', 'y']));
    const r = b.op('Relu', ['x']);
    const shape = b.op('Shape', [r]);
    const sum = b.op('Add', [r, 'u']);
    b.op('Reshape', [sum, shape], {}, 'y');
    const model = makeModel({ opset: 17, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['b', 4]), tensorValueInfo('u', DataType.FLOAT, ['b', 4])], [tensorValueInfo('y', DataType.FLOAT, ['b', 4])], b.initializers) });
    const axes = new Map<string, number>();
    await probeFacts(model, { provider: 'cpu', threads: 1, batchAxes: axes });
    expect(axes.get(r)).toBe(0);
    expect(axes.has(shape)).toBe(false);
    expect(shareImageRows(model, { image: 'x', perSample: ['u'], batchAxis: (t) => axes.get(t) })).toBeNull();
    // Without the shape edge the same graph is rewritten, and gathers the image rows per sample.
    const b2 = new GraphBuilder(17, 't', new Set(['x', 'u', 'y']));
    const r2 = b2.op('Relu', ['x']);
    b2.op('Add', [r2, 'u'], {}, 'y');
    const m2 = makeModel({ opset: 17, graph: makeGraph('g', b2.nodes, [tensorValueInfo('x', DataType.FLOAT, ['b', 4]), tensorValueInfo('u', DataType.FLOAT, ['b', 4])], [tensorValueInfo('y', DataType.FLOAT, ['b', 4])], b2.initializers) });
    const axes2 = new Map<string, number>();
    await probeFacts(m2, { provider: 'cpu', threads: 1, batchAxes: axes2 });
    const s = shareImageRows(m2, { image: 'x', perSample: ['u'], batchAxis: (t) => axes2.get(t) })!;
    expect(s.shared).toEqual([r2]);
    const sess = await createSession(encodeModel(s.model), { provider: 'cpu', threads: 1 });
    const out = await sess.run({
      x: { data: Float32Array.from([1, -2, 3, -4, -1, 2, -3, 4]), dims: [2, 4] },
      u: { data: Float32Array.from({ length: 12 }, (_, i) => i / 10), dims: [3, 4] },
      [s.index]: { data: BigInt64Array.from([1n, 0n, 1n]), dims: [3] },
    });
    const relu = [[1, 0, 3, 0], [0, 2, 0, 4]];
    const want = [1, 0, 1].flatMap((img, k) => relu[img]!.map((v, j) => v + (k * 4 + j) / 10));
    Array.from(out['y']!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    await sess.release();
  });
});

const models = [
  ...Object.keys(fixtureManifest()).map((f) => path.join(FIXTURE_DIR, f)),
  ...(fs.existsSync(VIT_MNIST) ? [VIT_MNIST] : []),
];

describe.each(models.map((file) => ({ file, name: path.basename(file) })))('per-image sharing on $name', ({ file }) => {
  it('m samples per image in one batch = each sample alone (F, logits, rows, gradients)', async () => {
    const loaded = loadModel(file);
    const layout = locateVit(loaded.proto);
    const engine = await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu', mode: 'affine' });
    try {
      const fixed = typeof layout.inputDims[0] === 'number' && layout.inputDims[0] > 0;
      expect(engine.sharesImageRows).toBe(!fixed);
      const size = engine.imageSize;
      const F = engine.ffn;
      const n = 3;
      const m = 4;
      const S = n * m;
      const imgs = randomImages(n, size, 7);
      const clean = await engine.clean(imgs, n);
      const input = new Float32Array(S * size);
      for (let s = 0; s < S; s++) input.set(imgs.subarray(Math.floor(s / m) * size, (Math.floor(s / m) + 1) * size), s * size);
      const rand = rng(3);
      const offsets: Record<number, Float32Array> = {};
      const scales: Record<number, Float32Array> = {};
      for (const l of engine.layers) {
        offsets[l] = new Float32Array(S * F);
        scales[l] = new Float32Array(S * F);
        for (let s = 0; s < S; s++) {
          const i = Math.floor(s / m);
          for (let j = 0; j < F; j++) {
            scales[l]![s * F + j] = rand() < 0.5 ? 0 : rand();
            offsets[l]![s * F + j] = (rand() - 0.5) * clean.activations[l]![i * F + j]!;
          }
        }
      }
      const targets = Array.from({ length: S }, (_, s) => s % engine.numClasses);
      const all = await engine.run(input, S, targets, offsets, scales);
      const close = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
        const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
        for (let i = 0; i < want.length; i++) if (Math.abs(got[i]! - want[i]!) > 1e-5 * scale) throw new Error(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
      };
      for (const s of [0, 1, m + 2, S - 1]) {
        const one = await engine.run(
          input.slice(s * size, (s + 1) * size),
          1,
          [targets[s]!],
          Object.fromEntries(engine.layers.map((l) => [l, offsets[l]!.slice(s * F, (s + 1) * F)])),
          Object.fromEntries(engine.layers.map((l) => [l, scales[l]!.slice(s * F, (s + 1) * F)])),
        );
        close([all.F[s]!], one.F, `sample ${s} F`);
        close(all.logits.subarray(s * engine.numClasses, (s + 1) * engine.numClasses), one.logits, `sample ${s} logits`);
        for (const l of engine.layers) {
          close(all.activations[l]!.subarray(s * F, (s + 1) * F), one.activations[l]!, `sample ${s} block ${l} row`);
          close(all.grads[l]!.subarray(s * F, (s + 1) * F), one.grads[l]!, `sample ${s} block ${l} gradient`);
        }
      }
    } finally {
      await engine.release();
    }
  }, 60_000);
});
