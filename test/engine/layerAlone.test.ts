// Layer-alone samples from clean states (the gradient graph's joins, joinStates): on every export-style
// fixture of the real torch.onnx.export and on synthetic ViTs of each op form, evaluateLayerAlone gives
// what the whole graph gives for the same edits (each group's layer edited, every other layer untouched):
// dF/dR at the group's layer and F, for random scales and offsets, groups of uneven sizes at every
// layer, runs small enough that most leave some layers without rows, with and without the bottom
// sample the engine adds where a model cannot run on empty tensors. Engines without joins (flattened
// neuron tensors, a fixed batch, opset 9, joined: false) offer no layer-alone evaluation; a failing layer-alone
// run falls back to the whole graph with a notice. The per-layer integrated gradients agree both ways.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { prepareLoaded } from '../../src/services/prepareModel.js';
import { prepareVitModel } from '../../src/services/vitModel.js';
import { OrtNeuronOracle } from '../../src/engine/neuronOracle.js';
import { NeuronGradientEngine } from '../../src/engine/gradientEngine.js';
import { layerIntegratedGradients } from '../../src/analysis/importance.js';
import type { ImageContext } from '../../src/analysis/pathSearch.js';
import { evaluateLayerAloneByEvaluate, type LayerAloneQuery, type NeuronOracle } from '../../src/analysis/oracle.js';
import { mulberry32, synthVitModel, type SynthVitConfig } from '../../src/vit/synth.js';
import { EXPORTS, readManifest } from '../exports/fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-alone-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function open(file: string, over: { joined?: boolean; maxSamples?: number; notice?: (l: string) => void; layers?: number[] } = {}) {
  const { loaded: prepped } = await prepareLoaded(loadModel(file), { label: file });
  const { loaded, layout } = prepareVitModel(prepped, {});
  const layers = over.layers ?? layout.blocks.map((_, i) => i);
  return OrtNeuronOracle.create(loaded, layout, { layers, token: layout.facts.pooling === 'cls' ? 'cls' : 'mean', objective: 'prob', provider: 'cpu', threads: 2, ...over });
}

type OpenOptions = Parameters<typeof open>[1];

/** An oracle with joins and one without (the whole graph) on the same model, released after `f`. */
async function withPair(file: string, joinedOpts: OpenOptions, wholeOpts: OpenOptions, f: (joined: OrtNeuronOracle, whole: OrtNeuronOracle) => Promise<void>): Promise<void> {
  const joined = await open(file, joinedOpts);
  const whole = await open(file, { ...wholeOpts, joined: false });
  try {
    await f(joined, whole);
  } finally {
    await joined.release();
    await whole.release();
  }
}

/** Random images, targets and one group per layer with uneven sizes, random scales (some 0) and offsets. */
function query(o: NeuronOracle, seed: number, images = 3): LayerAloneQuery {
  const rnd = mulberry32(seed);
  const input = Float32Array.from({ length: images * o.inputSize }, () => 2 * rnd() - 1);
  const target = Int32Array.from({ length: images }, () => Math.floor(rnd() * o.numClasses));
  const F = o.ffn;
  const groups = o.layers.map((_, l) => {
    const S = 1 + ((l * 3 + seed) % 4);
    return {
      layer: l,
      image: Int32Array.from({ length: S }, () => Math.floor(rnd() * images)),
      scale: Float32Array.from({ length: S * F }, (_, k) => (k % 7 === 0 ? 0 : 1.5 * rnd())),
      offset: Float32Array.from({ length: S * F }, () => rnd() - 0.5),
    };
  });
  return { input, images, target, groups };
}

/** The same samples through evaluate() (the whole graph). */
const byEvaluate = evaluateLayerAloneByEvaluate;

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, label: string, rel = 1e-5): void {
  expect(a.length, label).toBe(b.length);
  let scale = 1e-12;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  expect(err / scale, `${label}: max error ${err} against max ${scale}`).toBeLessThan(rel);
}

function expectSame(got: { grads: Float32Array[]; F: Float32Array[] }, want: { grads: Float32Array[]; F: Float32Array[] }, label: string): void {
  want.grads.forEach((g, i) => expectClose(got.grads[i]!, g, `${label} grads, group ${i}`));
  want.F.forEach((f, i) => expectClose(got.F[i]!, f, `${label} F, group ${i}`));
}

const SYNTH: [string, Partial<SynthVitConfig>][] = [
  ['erf GELU, LayerNormalization, cls', {}],
  ['tanh GELU, decomposed norm', { gelu: 'tanh', norm: 'decomposed', opset: 13 }],
  ['Gelu op (opset 20), mean pooling', { gelu: 'gelu-op', opset: 20, head: 'mean' }],
  ['ReLU, BatchNormalization', { gelu: 'relu', norm: 'batchnorm' }],
  ['extra attention output first', { extraOutputs: ['attention'] }],
];

const manifest = readManifest();
const cases: [string, () => string][] = [
  ...SYNTH.map(([name, cfg]): [string, () => string] => [
    `synthetic: ${name}`,
    () => {
      const file = path.join(tmp, `${name.replace(/[^a-z0-9]+/gi, '-')}.onnx`);
      if (!fs.existsSync(file)) saveModel(synthVitModel({ depth: 3, seed: 5, ...cfg }), file);
      return file;
    },
  ]),
  ...Object.entries(manifest).map(([name, e]): [string, () => string] => [`export: ${name}`, () => path.join(EXPORTS, e.file)]),
];

describe.each(cases)('%s', (_name, file) => {
  it('layer-alone samples equal the whole graph, including runs with empty layers and with a bottom sample', async () => {
    // About two samples' work per run: most runs leave layers empty.
    await withPair(file(), { maxSamples: 4 }, {}, async (joined, whole) => {
      expect(joined.evaluateLayerAlone).toBeDefined();
      expect(whole.evaluateLayerAlone).toBeUndefined();
      for (const seed of [1, 2]) {
        const q = query(joined, seed);
        const want = await byEvaluate(whole, q);
        expectSame(await joined.evaluateLayerAlone!(q), want, `seed ${seed}`);
        // The whole-graph evaluate() of the joined engine (its runs join nothing) gives the same too.
        expectSame(await byEvaluate(joined, q), want, `seed ${seed}, evaluate on the graph with joins`);
      }
      (joined as unknown as { engine: { aloneDummy: boolean } }).engine.aloneDummy = true;
      const q = query(joined, 3);
      expectSame(await joined.evaluateLayerAlone!(q), await byEvaluate(whole, q), 'with a bottom sample per run');
    });
  }, 60_000);
});

describe('layer-alone evaluations in use', () => {
  const file = () => {
    const f = path.join(tmp, 'use.onnx');
    if (!fs.existsSync(f)) saveModel(synthVitModel({ depth: 4, seed: 9 }), f);
    return f;
  };

  it('per-layer integrated gradients agree with the whole-graph evaluation, with and without the first layer', async () => {
    await withPair(file(), { maxSamples: 8 }, {}, async (joined, whole) => {
      const n = 3;
      const rnd = mulberry32(4);
      const input = Float32Array.from({ length: n * joined.inputSize }, () => 2 * rnd() - 1);
      const clean = await joined.clean(input, n);
      const ctxs: ImageContext[] = Array.from({ length: n }, (_, i) => ({
        input: input.subarray(i * joined.inputSize, (i + 1) * joined.inputSize),
        acts: clean.acts.map((a) => a.subarray(i * joined.ffn, (i + 1) * joined.ffn)),
        target: i % joined.numClasses,
        fClean: 0,
      }));
      const a = await layerIntegratedGradients(joined, ctxs, 20);
      const b = await layerIntegratedGradients(whole, ctxs, 20);
      a.forEach((layers, i) => layers.forEach((v, l) => expectClose(v, b[i]![l]!, `image ${i} layer ${l}`)));
      const first = b.map((layers, i) => Float64Array.from(layers[0]!, (v, j) => v / ctxs[i]!.acts[0]![j]!));
      const c = await layerIntegratedGradients(joined, ctxs, 20, first.map((g) => g.map((v) => (Number.isFinite(v) ? v : 0))));
      c.forEach((layers, i) => layers.slice(1).forEach((v, l) => expectClose(v, b[i]![l + 1]!, `from layer 1: image ${i} layer ${l + 1}`)));
    });
  }, 60_000);

  it('on a subset of the blocks (--layers 1,3): the first is fed at the bottom, the other joins above', async () => {
    await withPair(file(), { layers: [1, 3], maxSamples: 3 }, { layers: [1, 3] }, async (joined, whole) => {
      expect(joined.layers).toEqual([1, 3]);
      const q = query(joined, 5);
      expectSame(await joined.evaluateLayerAlone!(q), await byEvaluate(whole, q), 'layers 1,3');
    });
  }, 60_000);

  it('a failing layer-alone run falls back to the whole graph, once, with a notice', async () => {
    const notices: string[] = [];
    await withPair(file(), { notice: (l) => notices.push(l) }, {}, async (joined, whole) => {
      const spy = vi.spyOn(NeuronGradientEngine.prototype, 'runLayerAlone').mockRejectedValueOnce(new Error('empty tensors refused'));
      try {
        const q = query(joined, 6);
        const want = await byEvaluate(whole, q);
        expectSame(await joined.evaluateLayerAlone!(q), want, 'fallback');
        expectSame(await joined.evaluateLayerAlone!(q), want, 'after the fallback');
        expect(spy).toHaveBeenCalledTimes(1);
        expect(notices.filter((l) => /layer-alone gradient runs failed on this model \(empty tensors refused\)/.test(l))).toHaveLength(1);
      } finally {
        spy.mockRestore();
      }
    });
  }, 60_000);

  it('engines whose model does not allow joins offer no layer-alone evaluation', async () => {
    for (const [name, cfg] of [
      ['flattened neuron tensor (Gemm)', { linear: 'gemm' }],
      ['fixed batch', { batch: 2 }],
      ['opset 9 (no Slice with run-time bounds for the joins\' backward)', { opset: 9, gelu: 'relu', norm: 'batchnorm' }],
    ] as const) {
      const f = path.join(tmp, `nojoin-${name.replace(/[^a-z]+/gi, '-')}.onnx`);
      saveModel(synthVitModel({ depth: 2, seed: 3, ...cfg }), f);
      const o = await open(f);
      try {
        expect(o.evaluateLayerAlone, name).toBeUndefined();
      } finally {
        await o.release();
      }
    }
  }, 60_000);
});
