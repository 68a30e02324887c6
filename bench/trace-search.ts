// Compares trace-path's search strategies like with like: one trace-path run whose path is the chosen
// --search, with the paper's greedy path, ig-layer and any other baselines beside it, all scored by the
// same JAS (both forms), completeness gap, remove and enhance. Prints per-method means and the per-image
// win rates of the path against each method (strictly better remove ratio, strictly higher JAS(sum), both),
// and the search cost in samples and milliseconds.
// Run: npm run build:tools && node dist-tools/bench/trace-search.js --model M --images I [--limit 1000]
//        [--search effect] [--score effect] [--beam 4] [--candidates 16] [--prefilter taylor|ig]
//        [--baselines greedy,ig-layer] [--rule left] [--steps 20] [--threads 2] [--results file.json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tracePath, type TracePathOptions } from '../src/services/tracePath.js';
import { median } from '../src/analysis/stats.js';
import type { ImageResult } from '../src/services/traceCore.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const arg = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const model = path.resolve(arg('--model', path.resolve(repo, '../shared/models/vit-mnist.onnx'))!);
const images = path.resolve(arg('--images', path.resolve(repo, '../shared/data/mnist/t10k-images-idx3-ubyte.gz'))!);
const limit = Number(arg('--limit', '100'));
const threads = Number(arg('--threads', '2'));
const baselines = arg('--baselines', 'greedy,ig-layer')!.split(',').filter(Boolean) as TracePathOptions['baselines'];
const opt = <T>(name: string, f: (v: string) => T): T | undefined => (arg(name) === undefined ? undefined : f(arg(name)!));

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-search-'));
const t0 = performance.now();
const { report } = await tracePath({
  model,
  images,
  target: 'auto',
  objective: 'prob',
  steps: Number(arg('--steps', '20')),
  rule: opt('--rule', (v) => v as TracePathOptions['rule']),
  jas: 'product',
  search: opt('--search', (v) => v as TracePathOptions['search']),
  score: opt('--score', (v) => v as TracePathOptions['score']),
  beam: opt('--beam', Number),
  candidates: opt('--candidates', Number),
  prefilter: opt('--prefilter', (v) => v as TracePathOptions['prefilter']),
  baselines,
  topK: 5,
  batch: 16,
  seed: 0,
  limit,
  resume: false,
  out,
  force: true,
  provider: 'cpu',
  deviceId: 0,
  threads,
  preprocess: {},
});
const seconds = (performance.now() - t0) / 1000;
fs.rmSync(out, { recursive: true, force: true });

const res = report.results;
const of = (im: ImageResult, m: string) => im.methods.find((x) => x.method === m)!;
const ims = res.images as ImageResult[];
const n = ims.length;
const frac = (f: (im: ImageResult) => boolean) => ims.filter(f).length / n;
const rows = res.summary.map((s) => {
  const m = s.method;
  const cmp =
    m === 'path'
      ? null
      : {
          removeWins: frac((im) => of(im, 'path').removeRatio < of(im, m).removeRatio),
          removeTies: frac((im) => of(im, 'path').removeRatio === of(im, m).removeRatio),
          jasSumWins: frac((im) => of(im, 'path').jasSum > of(im, m).jasSum),
          bothWins: frac((im) => of(im, 'path').removeRatio < of(im, m).removeRatio && of(im, 'path').jasSum > of(im, m).jasSum),
          samePath: frac((im) => of(im, 'path').path.join() === of(im, m).path.join()),
        };
  return {
    method: m,
    meanJasProduct: s.meanJasProduct,
    meanJasSum: s.meanJasSum,
    meanCompletenessGap: s.meanCompletenessGap,
    meanRemoveRatio: s.meanRemoveRatio,
    medianRemoveRatio: s.medianRemoveRatio,
    meanEnhanceRatio: s.meanEnhanceRatio,
    medianEnhanceRatio: s.medianEnhanceRatio,
    medianJasSum: median(ims.map((im) => of(im, m).jasSum)),
    removeTop1Changed: s.removeTop1Changed,
    meanGradSamples: s.meanGradSamples,
    meanForwardSamples: s.meanForwardSamples,
    searchMs: (report.timings as Record<string, unknown>)?.['phases'] ?? null,
    pathVs: cmp,
  };
});
// Images where the path beats every compared method on both measures.
const others = res.summary.map((s) => s.method).filter((m) => m !== 'path' && (m === 'greedy' || m === 'ig-layer'));
const beatsAll = frac((im) => others.every((m) => of(im, 'path').removeRatio < of(im, m).removeRatio && of(im, 'path').jasSum > of(im, m).jasSum));
const result = {
  model: path.basename(model),
  sha256: report.model.sha256,
  images: n,
  accuracy: res.accuracy,
  settings: res.settings,
  seconds,
  imagesPerSecond: res.imagesPerSecond,
  threads,
  cpu: os.cpus()[0]?.model,
  loadavg: os.loadavg(),
  timings: report.timings,
  rows,
  beatsGreedyAndIgLayerOnBoth: beatsAll,
};
const f = (x: number) => (Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(2) : x.toFixed(4));
const pc = (x: number) => `${(x * 100).toFixed(1)}%`;
console.log(`${result.model}, ${n} images, search ${JSON.stringify(res.settings.search)}, rule ${res.settings.rule} m=${res.settings.steps}; ${seconds.toFixed(1)} s`);
console.log('method     JAS prod  JAS sum   gap      remove mean/med     enhance mean/med   grad/fwd samples  path wins remove (ties) / JAS sum / both / same path');
for (const r of rows) {
  const c = r.pathVs;
  console.log(
    `${r.method.padEnd(9)} ${f(r.meanJasProduct).padStart(8)} ${f(r.meanJasSum).padStart(8)} ${f(r.meanCompletenessGap).padStart(8)}  ${f(r.meanRemoveRatio)} / ${f(r.medianRemoveRatio)}   ${f(r.meanEnhanceRatio)} / ${f(r.medianEnhanceRatio)}   ${r.meanGradSamples.toFixed(0).padStart(5)} / ${r.meanForwardSamples.toFixed(0).padStart(4)}   ` +
      (c ? `${pc(c.removeWins)} (${pc(c.removeTies)}) / ${pc(c.jasSumWins)} / ${pc(c.bothWins)} / ${pc(c.samePath)}` : ''),
  );
}
console.log(`path beats greedy and ig-layer on remove AND JAS(sum): ${pc(beatsAll)} of images`);
console.log('phases (ms):', JSON.stringify((report.timings as { phases?: unknown }).phases ?? report.timings));
const file = arg('--results');
if (file) fs.writeFileSync(path.resolve(file), JSON.stringify(result, null, 2) + '\n');
