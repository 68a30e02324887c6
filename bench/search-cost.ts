// What each search costs, measured: the same images traced with each strategy alone (no baselines), two
// interleaved rounds, recording the search phase's wall time (report timings trace.search) and the
// samples per image it evaluated (gradient graph and forward-only). Cost relative to the paper's greedy.
// Run: npm run build:tools && node dist-tools/bench/search-cost.js [--model M] [--images I] [--limit 200] [--threads 1] [--rounds 2] [--cases 0,2]
// Results: bench/search-cost-<model>.results.json
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tracePath, type TracePathOptions } from '../src/services/tracePath.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const model = path.resolve(arg('--model', path.resolve(repo, '../shared/models/vit-mnist.onnx')));
const images = path.resolve(arg('--images', path.resolve(repo, '../shared/data/mnist/t10k-images-idx3-ubyte.gz')));
const limit = Number(arg('--limit', '200'));
const threads = Number(arg('--threads', '1'));
const rounds = Number(arg('--rounds', '2'));
const ALL_CASES: [string, Partial<TracePathOptions>][] = [
  ['greedy (paper)', { search: 'greedy' }],
  ['effect C=16', { search: 'effect', candidates: 16 }],
  ['beam B=4 on effect, C=16', { search: 'beam', score: 'effect', beam: 4, candidates: 16 }],
  ['beam B=4 on JAS sum', { search: 'beam', beam: 4, score: 'sum' }],
];
const only = arg('--cases', '');
const CASES = only ? ALL_CASES.filter((_, i) => only.split(',').map(Number).includes(i)) : ALL_CASES;
const runs: Record<string, { ms: number[]; gradSamples: number; forwardSamples: number }> = {};
for (let round = 0; round < rounds; round++) {
  for (const [name, over] of CASES) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-cost-'));
    const { report } = await tracePath({
      model, images, target: 'auto', objective: 'prob', steps: 20, jas: 'product', baselines: [], topK: 5, batch: 16, seed: 0, limit,
      resume: false, out, force: true, provider: 'cpu', deviceId: 0, threads, preprocess: {}, ...over,
    });
    fs.rmSync(out, { recursive: true, force: true });
    const p = report.results.summary.find((s) => s.method === 'path')!;
    const ms = (report.timings as { phases: Record<string, number> }).phases['trace.search']!;
    runs[name] ??= { ms: [], gradSamples: p.meanGradSamples, forwardSamples: p.meanForwardSamples };
    runs[name]!.ms.push(ms);
    process.stderr.write(`round ${round} ${name}: search ${ms.toFixed(0)} ms for ${limit} images\n`);
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)]!;
const paper = runs['greedy (paper)']!;
// Per round, each case's time over the paper's in the same round (interleaved: same load), then the median.
const rows = Object.entries(runs).map(([name, r]) => ({ name, ...r, bestMs: Math.min(...r.ms), medianRatioToPaper: med(r.ms.map((ms, i) => ms / paper.ms[i]!)) }));
const result = { model: path.basename(model), images: limit, threads, cpu: os.cpus()[0]?.model, loadavg: os.loadavg(), rows };
console.log(JSON.stringify(result, null, 2));
fs.writeFileSync(path.join(repo, arg('--results', `bench/search-cost-${path.basename(model, '.onnx')}.results.json`)), JSON.stringify(result, null, 2) + '\n');
