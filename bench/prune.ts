// Benchmark: `vitpath prune` through its services. (1) A generated ViT-S/16-sized model (width 384,
// 12 blocks, FFN 1536, 224x224, 1000 classes, random weights): 50% of FFN neurons removed by
// magnitude, batch-1 latency and file size of the pruned model against the original (eval service
// on the ImageNet sample photos of ../shared, or the fixture images; CPU, --threads). (2) vit-mnist
// (../shared): the sweep of all six criteria over 10..90% on 1,000 scoring / 9,000 evaluation MNIST
// test images, and 50% (path) with a 300-step distillation fine-tune.
// Run: npm run build:tools && node dist-tools/bench/prune.js [--parts vits,sweep,finetune] [--threads 1] [--repeat 30] [--no-write]
// Results: bench/prune.results.json and the "prune" section of BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPrune } from '../src/services/prune.js';
import { runPruneSweep } from '../src/services/pruneSweep.js';
import { saveModel } from '../src/onnx/model.js';
import { synthVitModel, vitSmall16Config } from '../src/vit/synth.js';
import { CRITERIA } from '../src/analysis/importance.js';
import { createSession } from '../src/runtime/session.js';
import { median } from '../src/analysis/stats.js';
import { mulberry32 } from '../src/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const SHARED = path.resolve(root, '../shared');
const MNIST = path.join(SHARED, 'data/mnist/t10k-images-idx3-ubyte.gz');
const VIT_MNIST = path.join(SHARED, 'models/vit-mnist.onnx');

function arg(args: string[], k: string, d: string): string {
  const i = args.indexOf(k);
  return i >= 0 && args[i + 1] ? args[i + 1]! : d;
}
const load = () => Math.round(os.loadavg()[0]! * 100) / 100;
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

async function vits(threads: number, repeat: number, tmp: string) {
  const file = path.join(tmp, 'vit-s16.onnx');
  saveModel(synthVitModel(vitSmall16Config), file);
  const photos = path.join(SHARED, 'data/imagenet-sample');
  const images = fs.existsSync(photos) ? photos : path.join(root, 'fixtures/images');
  const load0 = load();
  const { report } = await runPrune(file, { images, criterion: 'magnitude', ffn: 0.5, scoreImages: 4, batch: 8, warmup: 3, repeat, provider: 'cpu', threads, out: path.join(tmp, 'vits-out'), notice: () => {} });
  const e = report.results.evaluation;
  const lat = (m: typeof e.model) => ({ batch1MedianMs: r4(m.latency!.batch1!.medianMs), batch1P90Ms: r4(m.latency!.batch1!.p90Ms), batch1MinMs: r4(m.latency!.batch1!.minMs), batchedImagesPerSecond: r4(m.latency!.batched.imagesPerSecond), batch: m.latency!.batched.batch });
  const out = {
    model: 'vit-s16 (synthetic, random weights)',
    images: path.relative(root, images),
    threads,
    repeat,
    ffnRemoved: report.results.ffn.removedFraction,
    parameters: report.results.parameters,
    bytes: { original: e.reference!.facts.bytes.total, pruned: e.model.facts.bytes.total, ratio: r4(e.model.facts.bytes.total / e.reference!.facts.bytes.total) },
    latency: { original: lat(e.reference!), pruned: lat(e.model), batch1MedianRatio: r4(e.model.latency!.batch1!.medianMs / e.reference!.latency!.batch1!.medianMs), batch1MinRatio: r4(e.model.latency!.batch1!.minMs / e.reference!.latency!.batch1!.minMs) },
    agreement: e.comparison!.agreement,
    interleaved: await interleaved(file, path.join(tmp, 'vits-out/model.onnx'), threads, repeat),
    loadAverage: [load0, load()],
  };
  process.stderr.write(`vit-s16: ${JSON.stringify(out)}\n`);
  return out;
}

/**
 * Batch-1 latency of two models measured in alternation (original, pruned, original, ...) on the
 * same seeded image, so load changes on a shared machine hit both alike: medians, minima and the
 * median of the per-pair ratios.
 */
async function interleaved(a: string, b: string, threads: number, pairs: number) {
  const sa = await createSession(a, { provider: 'cpu', threads });
  const sb = await createSession(b, { provider: 'cpu', threads });
  try {
    const rnd = mulberry32(1);
    const x = Float32Array.from({ length: 3 * 224 * 224 }, () => rnd() * 2 - 1);
    const feed = { [sa.inputNames[0]!]: { data: x, dims: [1, 3, 224, 224] } };
    for (let i = 0; i < 3; i++) {
      await sa.run(feed);
      await sb.run(feed);
    }
    const ta: number[] = [];
    const tb: number[] = [];
    for (let i = 0; i < pairs; i++) {
      let t = performance.now();
      await sa.run(feed);
      ta.push(performance.now() - t);
      t = performance.now();
      await sb.run(feed);
      tb.push(performance.now() - t);
    }
    const ratios = ta.map((v, i) => tb[i]! / v);
    return { pairs, originalMedianMs: r4(median(ta)), prunedMedianMs: r4(median(tb)), originalMinMs: r4(Math.min(...ta)), prunedMinMs: r4(Math.min(...tb)), medianPairRatio: r4(median(ratios)), minRatio: r4(Math.min(...tb) / Math.min(...ta)) };
  } finally {
    await sa.release();
    await sb.release();
  }
}

async function sweep(threads: number, tmp: string) {
  const load0 = load();
  const { report } = await runPruneSweep(VIT_MNIST, { images: MNIST, scoreImages: 1000, criteria: [...CRITERIA], fractions: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], provider: 'cpu', threads, out: path.join(tmp, 'sweep'), notice: () => {} });
  const r = report.results;
  return { original: r.original, scoring: r.scoring.split, evaluationImages: r.evaluation.images, scoringMs: Math.round(r.scoring.ms), points: r.points.map((p) => ({ criterion: p.criterion, fraction: p.fraction, removed: p.removedFraction, top1: p.top1, low: r4(p.low!), high: r4(p.high!), agreement: p.agreement, meanKl: r4(p.meanKl) })), totalMs: Math.round(report.timings.totalMs), loadAverage: [load0, load()] };
}

async function finetuneRun(threads: number, tmp: string) {
  const load0 = load();
  const { report } = await runPrune(VIT_MNIST, { images: MNIST, scoreImages: 1000, criterion: 'path', ffn: 0.5, finetune: 300, lr: 1e-4, kdTemperature: 2, provider: 'cpu', threads, latency: false, out: path.join(tmp, 'ft'), notice: () => {} });
  const r = report.results;
  const e = r.evaluation;
  const loss = r.finetune!.loss;
  return {
    criterion: 'path',
    ffn: 0.5,
    steps: 300,
    original: e.reference!.accuracy!.top1,
    pruned: e.model.accuracy!.top1,
    drop: r4((e.reference!.accuracy!.top1 - e.model.accuracy!.top1) * 100),
    agreement: e.comparison!.agreement,
    klFirst10: r4(loss.slice(0, 10).reduce((s, x) => s + x.kl, 0) / 10),
    klLast10: r4(loss.slice(-10).reduce((s, x) => s + x.kl, 0) / 10),
    finetuneMs: Math.round(r.finetune!.ms),
    loadAverage: [load0, load()],
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const parts = arg(args, '--parts', 'vits,sweep,finetune').split(',');
  const threads = Number(arg(args, '--threads', '1'));
  const repeat = Number(arg(args, '--repeat', '30'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-prune-'));
  const file = path.join(root, 'bench/prune.results.json');
  const prev = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  const out: Record<string, unknown> = { ...prev, benchmark: 'prune', machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.arch()}` }, provider: 'cpu' };
  try {
    if (parts.includes('vits')) out.vits16 = { date: new Date().toISOString(), ...(await vits(threads, repeat, tmp)) };
    const have = fs.existsSync(VIT_MNIST) && fs.existsSync(MNIST);
    if (!have && (parts.includes('sweep') || parts.includes('finetune'))) process.stderr.write(`skipping vit-mnist parts: ${VIT_MNIST} or ${MNIST} not found\n`);
    if (have && parts.includes('sweep')) out.vitMnistSweep = { date: new Date().toISOString(), threads, ...(await sweep(threads, tmp)) };
    if (have && parts.includes('finetune')) out.vitMnistFinetune = { date: new Date().toISOString(), threads, ...(await finetuneRun(threads, tmp)) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!args.includes('--no-write')) fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
