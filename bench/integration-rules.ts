// Completeness error of integrated gradients against steps, per integration rule, on a real model:
// for each image the paper's path (greedy, JAS product, left rule, m = 20) is found once, then its
// JAS(sum) is computed with every rule and step count and compared with the exact F(clean) − F(path
// zeroed). Reports the relative error Σ|JAS(sum) − gap| / Σ|gap| (and the mean absolute error) per
// (rule, m), and the cheapest (rule, m) whose error is at most left-Riemann m = 20's.
// Run: npm run build:tools && node dist-tools/bench/integration-rules.js [--model M] [--images I] [--limit 100] [--threads 2]
// Results: bench/integration-rules.results.json
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/onnx/model.js';
import { locateVit } from '../src/vit/locate.js';
import { discoverImages } from '../src/data/sources.js';
import { inferPreprocess } from '../src/data/preprocess.js';
import { loadBatch } from '../src/data/dataset.js';
import { OrtNeuronOracle } from '../src/engine/neuronOracle.js';
import { buildContexts } from '../src/services/traceCore.js';
import { searchPaths, scorePaths, type ImageContext } from '../src/analysis/pathSearch.js';
import { quadrature, RULES, minSteps, type QuadratureRule } from '../src/analysis/quadrature.js';
import { defaultToken } from '../src/vit/tokens.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const modelPath = path.resolve(arg('--model', path.resolve(repo, '../shared/models/vit-mnist.onnx')));
const imagesPath = path.resolve(arg('--images', path.resolve(repo, '../shared/data/mnist/t10k-images-idx3-ubyte.gz')));
const limit = Number(arg('--limit', '100'));
const threads = Number(arg('--threads', '2'));
const STEPS = [4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 100, 200];

const t0 = performance.now();
const loaded = loadModel(modelPath);
const layout = locateVit(loaded.proto, { label: modelPath });
const layers = layout.blocks.map((_, i) => i);
const oracle = await OrtNeuronOracle.create(loaded, layout, { layers, token: defaultToken(layout), objective: 'prob', provider: 'cpu', threads });
const src = discoverImages(imagesPath, {});
const items = src.items.slice(0, limit);
const spec = inferPreprocess(layout.inputDims, {});
const ctxs: ImageContext[] = [];
const paths: number[][][] = [];
for (let s = 0; s < items.length; s += 16) {
  const part = items.slice(s, s + 16);
  const input = await loadBatch(part, spec);
  const { ctxs: c } = await buildContexts(oracle, { input, ids: part.map((p) => p.id), labels: part.map((p) => p.label ?? null) }, 'auto', 'prob');
  const found = await searchPaths(oracle, c, { steps: 20, jas: 'product', topK: 5 });
  c.forEach((x, i) => {
    ctxs.push(x);
    paths.push([found[i]!.map((ch) => ch.neuron)]);
  });
}
const rows: { rule: QuadratureRule; steps: number; relativeError: number; meanAbsError: number }[] = [];
for (const rule of RULES) {
  for (const m of STEPS) {
    if (m < minSteps(rule)) continue;
    let err = 0;
    let gap = 0;
    for (let s = 0; s < ctxs.length; s += 16) {
      const sc = await scorePaths(oracle, ctxs.slice(s, s + 16), paths.slice(s, s + 16), quadrature(rule, m));
      for (const r of sc) {
        err += Math.abs(r[0]!.jasSum - r[0]!.completenessGap);
        gap += Math.abs(r[0]!.completenessGap);
      }
    }
    rows.push({ rule, steps: m, relativeError: err / gap, meanAbsError: err / ctxs.length });
    process.stderr.write(`${rule} m=${m}: relative error ${(err / gap).toExponential(3)}\n`);
  }
}
await oracle.release();
const ref = rows.find((r) => r.rule === 'left' && r.steps === 20)!;
const matching = rows.filter((r) => r.relativeError <= ref.relativeError).sort((a, b) => a.steps - b.steps || a.relativeError - b.relativeError);
const result = {
  model: path.basename(modelPath),
  sha256: loaded.sha256,
  images: ctxs.length,
  path: 'the paper\'s path (greedy, JAS product, left rule, m = 20), one per image',
  error: 'relative: Σ|JAS(sum) − (F(clean) − F(path zeroed))| / Σ|gap|; meanAbs: per image',
  seconds: (performance.now() - t0) / 1000,
  cpu: os.cpus()[0]?.model,
  threads,
  rows,
  reference: ref,
  cheapestMatchingReference: matching[0] ?? null,
};
fs.writeFileSync(path.join(repo, arg('--results', 'bench/integration-rules.results.json')), JSON.stringify(result, null, 2) + '\n');
console.log(`| m | ${RULES.join(' | ')} |`);
console.log(`| --- | ${RULES.map(() => '---').join(' | ')} |`);
for (const m of STEPS) console.log(`| ${m} | ${RULES.map((r) => rows.find((x) => x.rule === r && x.steps === m)?.relativeError.toExponential(2) ?? '–').join(' | ')} |`);
console.log(`reference left m=20: ${ref.relativeError.toExponential(3)}; cheapest matching: ${JSON.stringify(result.cheapestMatchingReference)}`);
