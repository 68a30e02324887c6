// Why no search beats ig-layer on most images of a model: is ig-layer's path already a local optimum of
// the remove effect? For each image, every single-neuron swap of its ig-layer path (each layer, every
// other neuron, the rest of the path kept) is removed in a forward-only sample; the path is 1-swap
// optimal when no swap lowers the target probability further. Reports the share of 1-swap-optimal images
// and, for the others, how much the best swap gains.
// Run: npm run build:tools && node dist-tools/bench/path-optimality.js [--model M] [--images I] [--limit 200] [--threads 2]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/onnx/model.js';
import { locateVit } from '../src/vit/locate.js';
import { discoverImages } from '../src/data/sources.js';
import { inferPreprocess } from '../src/data/preprocess.js';
import { loadBatch } from '../src/data/dataset.js';
import { OrtNeuronOracle } from '../src/engine/neuronOracle.js';
import { buildContexts } from '../src/services/traceCore.js';
import { igLayerPaths } from '../src/analysis/baselines.js';
import { defaultToken } from '../src/vit/tokens.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const modelPath = path.resolve(arg('--model', path.resolve(repo, '../shared/models/vit-mnist.onnx')));
const imagesPath = path.resolve(arg('--images', path.resolve(repo, '../shared/data/mnist/t10k-images-idx3-ubyte.gz')));
const limit = Number(arg('--limit', '200'));
const loaded = loadModel(modelPath);
const layout = locateVit(loaded.proto, { label: modelPath });
const layers = layout.blocks.map((_, i) => i);
const oracle = await OrtNeuronOracle.create(loaded, layout, { layers, token: defaultToken(layout), objective: 'prob', provider: 'cpu', threads: Number(arg('--threads', '2')) });
const items = discoverImages(imagesPath, {}).items.slice(0, limit);
const spec = inferPreprocess(layout.inputDims, {});
const F = oracle.ffn;
const L = layers.length;
let optimal = 0;
const gains: number[] = [];
for (let s = 0; s < items.length; s += 8) {
  const part = items.slice(s, s + 8);
  const input = await loadBatch(part, spec);
  const { ctxs } = await buildContexts(oracle, { input, ids: part.map((p) => p.id), labels: part.map((p) => p.label ?? null) }, 'auto', 'prob');
  const ig = await igLayerPaths(oracle, ctxs, 20);
  // Samples: per image, the path itself, then L x F swaps.
  const per = 1 + L * F;
  const S = ctxs.length * per;
  const x = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  const scale = layers.map(() => new Float32Array(S * F).fill(1));
  ctxs.forEach((c, i) => {
    for (let k = 0; k < per; k++) {
      const smp = i * per + k;
      x.set(c.input, smp * oracle.inputSize);
      target[smp] = c.target;
      const p = [...ig[i]!];
      if (k > 0) p[Math.floor((k - 1) / F)] = (k - 1) % F;
      p.forEach((j, l) => (scale[l]![smp * F + j] = 0));
    }
  });
  const r = await oracle.evaluate({ input: x, samples: S, scale, offset: layers.map(() => undefined), target, grads: false });
  ctxs.forEach((_, i) => {
    const base = r.F[i * per]!;
    let best = base;
    for (let k = 1; k < per; k++) best = Math.min(best, r.F[i * per + k]!);
    if (best >= base) optimal++;
    else gains.push(base - best);
  });
}
await oracle.release();
const result = { model: path.basename(modelPath), images: items.length, igLayerOneSwapOptimal: optimal / items.length, improvable: gains.length, meanBestSwapGain: gains.reduce((a, b) => a + b, 0) / Math.max(1, gains.length) };
console.log(JSON.stringify(result));
const file = arg('--results', '');
if (file) fs.writeFileSync(path.resolve(file), JSON.stringify(result, null, 2) + '\n');
