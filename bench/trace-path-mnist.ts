// Reproduces the trace-path numbers recorded for the note: vit-mnist on the first N MNIST test
// images with default settings (m = 20, JAS product, all baselines, target = label): mean JAS per
// method, mean/median remove and enhance ratios, per-image win rates of the found path against
// each baseline, and the completeness of JAS(sum). Whether the path "beats the baselines" is judged
// as the paper claims it: higher JAS, larger drop when removed, larger gain when enhanced.
// Run: npm run build:tools && node dist-tools/bench/trace-path-mnist.js [--limit 100] [--threads 2] [--provider cpu] [--jas product|sum]
// Results recorded in bench/trace-path-mnist.results.json (and -sum.results.json for --jas sum).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tracePath } from '../src/services/tracePath.js';
import type { ProviderChoice } from '../src/runtime/session.js';
import { median } from '../src/analysis/stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const limit = Number(arg('--limit', '100'));
const threads = Number(arg('--threads', '2'));
const provider = arg('--provider', 'cpu') as ProviderChoice;
const jas = arg('--jas', 'product') as 'product' | 'sum';
const resultsFile = arg('--results', jas === 'product' ? 'bench/trace-path-mnist.results.json' : `bench/trace-path-mnist-${jas}.results.json`);
const model = path.resolve(repo, '../shared/models/vit-mnist.onnx');
const images = path.resolve(repo, '../shared/data/mnist/t10k-images-idx3-ubyte.gz');

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-trace-'));
const t0 = performance.now();
const { report } = await tracePath({
  model,
  images,
  target: 'auto',
  objective: 'prob',
  steps: 20,
  jas,
  baselines: ['activation', 'influence', 'ig-layer', 'random'],
  topK: 5,
  batch: 16,
  seed: 0,
  limit,
  resume: false,
  out,
  force: true,
  provider,
  deviceId: 0,
  threads,
  preprocess: {},
});
const seconds = (performance.now() - t0) / 1000;
fs.rmSync(out, { recursive: true, force: true });

const res = report.results;
const pathOf = (im: (typeof res.images)[number], m: string) => im.methods.find((x) => x.method === m)!;
const methods = res.summary.map((s) => s.method);
const rows = res.summary.map((s) => {
  const win = (f: (p: ReturnType<typeof pathOf>, b: ReturnType<typeof pathOf>) => boolean) =>
    s.method === 'path' ? null : res.images.filter((im) => f(pathOf(im, 'path'), pathOf(im, s.method))).length / res.images.length;
  return {
    method: s.method,
    meanJasProduct: s.meanJasProduct,
    meanJasSum: s.meanJasSum,
    medianJasProduct: median(res.images.map((im) => pathOf(im, s.method).jasProduct)),
    meanRemoveRatio: s.meanRemoveRatio,
    medianRemoveRatio: s.medianRemoveRatio,
    meanEnhanceRatio: s.meanEnhanceRatio,
    medianEnhanceRatio: s.medianEnhanceRatio,
    removeTop1Changed: s.removeTop1Changed,
    removeAccuracyDeviation: s.removeAccuracyDeviation,
    enhanceAccuracyDeviation: s.enhanceAccuracyDeviation,
    /** Fraction of images where the found path's JAS (product) exceeds this method's. */
    pathJasWins: win((p, b) => p.jasProduct > b.jasProduct),
    /** Fraction of images where removing the found path lowers p more than removing this method's path. */
    pathRemoveWins: win((p, b) => p.removeRatio < b.removeRatio),
    /** Fraction of images where enhancing the found path raises p more. */
    pathEnhanceWins: win((p, b) => p.enhanceRatio > b.enhanceRatio),
  };
});
const p = rows[0]!;
const beats = Object.fromEntries(
  rows.slice(1).map((r) => [
    r.method,
    { jas: p.meanJasProduct > r.meanJasProduct, remove: p.meanRemoveRatio < r.meanRemoveRatio, enhance: p.meanEnhanceRatio > r.meanEnhanceRatio },
  ]),
);
const gaps = res.images.map((im) => pathOf(im, 'path'));
const completeness = {
  meanAbsError: gaps.reduce((a, g) => a + Math.abs(g.jasSum - g.completenessGap), 0) / gaps.length,
  meanGap: gaps.reduce((a, g) => a + g.completenessGap, 0) / gaps.length,
  relativeError: gaps.reduce((a, g) => a + Math.abs(g.jasSum - g.completenessGap), 0) / gaps.reduce((a, g) => a + Math.abs(g.completenessGap), 0),
};
const result = {
  model: 'vit-mnist.onnx',
  sha256: report.model.sha256,
  images: res.images.length,
  accuracy: res.accuracy,
  meanPBase: res.images.reduce((a, im) => a + im.pBase, 0) / res.images.length,
  settings: res.settings,
  provider: report.runtime?.used,
  threads,
  seconds,
  cpu: os.cpus()[0]?.model,
  methods,
  summary: rows,
  pathBeatsBaselineOnMean: beats,
  completeness,
};
const fmt = (x: number | null) => (x === null ? '-' : Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(3) : x.toFixed(4));
console.log(`vit-mnist, first ${result.images} MNIST test images, m = 20, JAS ${jas}, all baselines; ${seconds.toFixed(1)} s on ${result.provider} (${threads} threads); accuracy ${res.accuracy}; mean p_base ${result.meanPBase.toFixed(4)}`);
console.log('method      JAS prod   JAS sum    remove mean/median   enhance mean/median  path wins JAS/remove/enhance');
for (const r of rows) {
  console.log(
    `${r.method.padEnd(11)} ${fmt(r.meanJasProduct).padStart(9)} ${fmt(r.meanJasSum).padStart(10)}  ${fmt(r.meanRemoveRatio)} / ${fmt(r.medianRemoveRatio)}     ${fmt(r.meanEnhanceRatio)} / ${fmt(r.medianEnhanceRatio)}    ${r.pathJasWins === null ? '' : [r.pathJasWins, r.pathRemoveWins, r.pathEnhanceWins].map((w) => `${(w! * 100).toFixed(0)}%`).join(' / ')}`,
  );
}
console.log(`completeness: mean |JAS(sum) - gap| = ${fmt(completeness.meanAbsError)}, mean gap ${fmt(completeness.meanGap)}, relative ${(completeness.relativeError * 100).toFixed(2)}%`);
fs.writeFileSync(path.join(repo, resultsFile), JSON.stringify(result, null, 2) + '\n');
