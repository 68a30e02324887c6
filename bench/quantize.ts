// Benchmark: `vitpath quantize` through the quantize service itself. (1) vit-mnist (../shared):
// calibrate on 1,000 MNIST test images (seeded draw), evaluate on the other 9,000 against the float
// model, for int8 static (minmax, percentile 99.99, entropy), dynamic int8 and float16. (2) A
// generated ViT-S/16-sized model (random weights): int8 static (10 calibration photos) and dynamic,
// latency at batch 1 with 1 thread, float32 / int8 / dynamic runs interleaved round by round so that
// the machine's load hits them alike, and file sizes; `uptime` load averages recorded beside.
// Run: npm run build:tools && node dist-tools/bench/quantize.js [--rounds 6] [--runs 10] [--parts mnist,vits16] [--no-write]
// Results: bench/quantize.results.json and the "quantize" section of BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runQuantize, type QuantizeOptions } from '../src/services/quantize.js';
import { loadModel, saveModel } from '../src/onnx/model.js';
import { synthVitModel, vitSmall16Config } from '../src/vit/synth.js';
import { createSession } from '../src/runtime/session.js';
import { discoverImages } from '../src/data/sources.js';
import { loadBatch } from '../src/data/dataset.js';
import { inferPreprocess } from '../src/data/preprocess.js';
import { median } from '../src/analysis/stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const SHARED = path.resolve(root, '../shared');

function arg(args: string[], k: string, d: string): string {
  const i = args.indexOf(k);
  return i >= 0 && args[i + 1] ? args[i + 1]! : d;
}
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

async function mnistCases(tmp: string): Promise<unknown[]> {
  const model = path.join(SHARED, 'models/vit-mnist.onnx');
  if (!fs.existsSync(model)) {
    process.stderr.write(`skipping vit-mnist: ${model} not found\n`);
    return [];
  }
  const images = path.join(SHARED, 'data/mnist/t10k-images-idx3-ubyte.gz');
  const labels = path.join(SHARED, 'data/mnist/t10k-labels-idx1-ubyte.gz');
  const variants: Array<[string, Partial<QuantizeOptions>]> = [
    ['int8 minmax', { mode: 'int8', calibration: 'minmax' }],
    ['int8 percentile 99.99', { mode: 'int8', calibration: 'percentile' }],
    ['int8 entropy', { mode: 'int8', calibration: 'entropy' }],
    ['dynamic int8', { mode: 'dynamic' }],
    ['float16', { mode: 'fp16' }],
  ];
  const out: unknown[] = [];
  for (const [name, v] of variants) {
    const load0 = load();
    const t0 = performance.now();
    const { report } = await runQuantize(model, { images, labels, calibImages: 1000, seed: 0, batch: 64, latency: false, runtime: { provider: 'cpu', threads: 1, notice: () => {} }, out: path.join(tmp, name.replace(/\W+/g, '-')), ...v });
    const r = report.results;
    const e = r.evaluation!;
    const c = {
      model: 'vit-mnist',
      variant: name,
      calibrationImages: r.calibration?.images ?? 0,
      evaluationImages: e.images.count,
      floatTop1: e.reference!.accuracy!.top1,
      quantizedTop1: e.model.accuracy!.top1,
      quantizedTop1Interval: e.model.accuracy!.top1Interval,
      dropPoints: r4(-e.comparison!.accuracyDifference!.difference * 100),
      dropInterval: e.comparison!.accuracyDifference!.interval,
      agreement: e.comparison!.agreement,
      meanKl: e.comparison!.meanKl,
      maxAbsProbDiff: e.comparison!.maxAbsProbDiff,
      floatBytes: e.reference!.facts.bytes.total,
      quantizedBytes: r.output.bytes,
      fused: r.fused ? `${r.fused.int8Kernels}/${r.fused.quantizedLayers}` : null,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      loadAverage: [load0, load()],
    };
    process.stderr.write(`${JSON.stringify(c)}\n`);
    out.push(c);
  }
  return out;
}

async function vitS16(tmp: string, rounds: number, runs: number): Promise<unknown> {
  const float = path.join(tmp, 'vit-s16.onnx');
  saveModel(synthVitModel(vitSmall16Config), float);
  const photos = path.join(SHARED, 'data/imagenet-sample');
  const images = fs.existsSync(photos) ? photos : path.join(root, 'fixtures/images');
  const common: Partial<QuantizeOptions> = { images, calibImages: 10, seed: 0, batch: 4, evaluate: false, runtime: { provider: 'cpu', threads: 1, notice: () => {} } };
  const int8 = await runQuantize(float, { ...common, out: path.join(tmp, 'int8') } as QuantizeOptions);
  const dyn = await runQuantize(float, { ...common, mode: 'dynamic', out: path.join(tmp, 'dynamic') } as QuantizeOptions);
  const models: Array<[string, string]> = [
    ['float32', float],
    ['int8 static', int8.modelPath],
    ['dynamic int8', dyn.modelPath],
  ];
  const spec = inferPreprocess([1, 3, 224, 224]);
  const items = discoverImages(images).items.slice(0, runs);
  const data = await loadBatch(items, spec);
  const per = 3 * 224 * 224;
  const sessions = await Promise.all(models.map(([, f]) => createSession(fs.readFileSync(f), { provider: 'cpu', threads: 1, notice: () => {} })));
  const input = loadModel(float).proto.graph!.input[0]!.name;
  const times: number[][] = models.map(() => []);
  const loads: number[][] = [load()];
  try {
    // Warm-up: 2 runs each.
    for (const s of sessions) for (let i = 0; i < 2; i++) await s.run({ [input]: { data: data.subarray(0, per), dims: [1, 3, 224, 224] } });
    for (let r = 0; r < rounds; r++) {
      // Alternate the order every round so neither model always runs first.
      const order = r % 2 === 0 ? [0, 1, 2] : [2, 1, 0];
      for (const m of order) {
        for (let i = 0; i < items.length; i++) {
          const t = performance.now();
          await sessions[m]!.run({ [input]: { data: data.subarray(i * per, (i + 1) * per), dims: [1, 3, 224, 224] } });
          times[m]!.push(performance.now() - t);
        }
      }
      loads.push(load());
    }
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
  const stat = (ms: number[]) => ({ runs: ms.length, medianMs: Math.round(median(ms) * 10) / 10, minMs: Math.round(Math.min(...ms) * 10) / 10 });
  const res = models.map(([name, f], i) => ({ model: name, bytes: fs.statSync(f).size, ...stat(times[i]!) }));
  const fp = res[0]!;
  return {
    model: 'ViT-S/16 synthetic (vitSmall16Config, random weights)',
    parameters: 22050664,
    threads: 1,
    batch: 1,
    rounds,
    fused: { 'int8 static': `${int8.report.results.fused!.int8Kernels}/${int8.report.results.fused!.quantizedLayers}`, 'dynamic int8': `${dyn.report.results.fused!.int8Kernels}/${dyn.report.results.fused!.quantizedLayers}` },
    results: res.map((x) => ({ ...x, speedupMedian: Math.round((fp.medianMs / x.medianMs) * 100) / 100, speedupMin: Math.round((fp.minMs / x.minMs) * 100) / 100, sizeRatio: Math.round((x.bytes / fp.bytes) * 1000) / 1000 })),
    loadAverages: loads,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const parts = arg(args, '--parts', 'mnist,vits16').split(',');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-quantize-'));
  try {
    const mnist = parts.includes('mnist') ? await mnistCases(tmp) : [];
    const vits = parts.includes('vits16') ? await vitS16(tmp, Number(arg(args, '--rounds', '6')), Number(arg(args, '--runs', '10'))) : null;
    const out = {
      benchmark: 'quantize',
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.arch()}` },
      provider: 'cpu',
      mnist,
      vitS16: vits,
    };
    if (!args.includes('--no-write')) fs.writeFileSync(path.join(root, 'bench/quantize.results.json'), JSON.stringify(out, null, 2) + '\n');
    console.log(JSON.stringify(out, null, 2));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(String((e as Error)?.stack ?? e) + '\n');
  process.exitCode = 1;
});
