// Benchmark: `vitpath eval`'s latency and throughput figures, through the eval service itself, on
// CPU for vit-mnist (../shared, over the 10,000 MNIST test images, so the accuracy pass is timed too)
// and a generated ViT-S/16-sized model (width 384, 12 blocks, FFN 1536, 224x224, 1000 classes, random
// weights; over the 20 ImageNet sample photos of ../shared, or the fixture images without it; batch
// at most 8, at most 10 timed runs).
// Run: npm run build:tools && node dist-tools/bench/eval.js [--threads 1,2] [--warmup 5] [--repeat 50] [--batch 32] [--models mnist,vits16] [--no-write]
// Results: bench/eval.results.json and the "eval" section of BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateModels } from '../src/services/eval.js';
import { saveModel } from '../src/onnx/model.js';
import { synthVitModel, vitSmall16Config } from '../src/vit/synth.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const SHARED = path.resolve(root, '../shared');

interface Case {
  model: string;
  images: string;
  imageCount: number;
  threads: number;
  batch: number;
  warmup: number;
  repeat: number;
  parameters: number;
  bytes: number;
  /** Top-1 accuracy (null for unlabelled images). */
  accuracy: number | null;
  /** The accuracy pass: decode + preprocess + inference, images per second. */
  evaluateImagesPerSecond: number;
  batch1: { medianMs: number; p90Ms: number; minMs: number } | null;
  batched: { batch: number; medianMs: number; p90Ms: number; minMs: number; imagesPerSecond: number };
  /** 1-minute load average before and after the case (the machine may be shared). */
  loadAverage: [number, number];
}

function arg(args: string[], k: string, d: string): string {
  const i = args.indexOf(k);
  return i >= 0 && args[i + 1] ? args[i + 1]! : d;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r2 = (x: number) => Math.round(x * 100) / 100;

async function runCase(name: string, model: string, images: string, threads: number, o: { batch: number; warmup: number; repeat: number }): Promise<Case> {
  const load0 = os.loadavg()[0]!;
  const { report } = await evaluateModels(model, { images, batch: o.batch, warmup: o.warmup, repeat: o.repeat, runtime: { provider: 'cpu', threads, notice: () => {} } });
  const r = report.results.model;
  const l = r.latency!;
  const c: Case = {
    model: name,
    images: path.relative(root, images),
    imageCount: report.results.images.count,
    threads,
    batch: o.batch,
    warmup: o.warmup,
    repeat: o.repeat,
    parameters: r.facts.parameters,
    bytes: r.facts.bytes.total,
    accuracy: r.accuracy?.top1 ?? null,
    evaluateImagesPerSecond: r2(report.results.images.count / (report.timings.phases.evaluate! / 1000)),
    batch1: l.batch1 ? { medianMs: r3(l.batch1.medianMs), p90Ms: r3(l.batch1.p90Ms), minMs: r3(l.batch1.minMs) } : null,
    batched: { batch: l.batched.batch, medianMs: r3(l.batched.medianMs), p90Ms: r3(l.batched.p90Ms), minMs: r3(l.batched.minMs), imagesPerSecond: r2(l.batched.imagesPerSecond) },
    loadAverage: [Math.round(load0 * 100) / 100, Math.round(os.loadavg()[0]! * 100) / 100],
  };
  process.stderr.write(`${name}, ${threads} thread(s): ${JSON.stringify(c)}\n`);
  return c;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const threadList = arg(args, '--threads', '1,2').split(',').map(Number);
  const o = { batch: Number(arg(args, '--batch', '32')), warmup: Number(arg(args, '--warmup', '5')), repeat: Number(arg(args, '--repeat', '50')) };
  const models = arg(args, '--models', 'mnist,vits16').split(',');
  const cases: Case[] = [];
  const mnist = path.join(SHARED, 'models/vit-mnist.onnx');
  if (models.includes('mnist')) {
    if (fs.existsSync(mnist)) for (const t of threadList) cases.push(await runCase('vit-mnist', mnist, path.join(SHARED, 'data/mnist/t10k-images-idx3-ubyte.gz'), t, o));
    else process.stderr.write(`skipping vit-mnist: ${mnist} not found\n`);
  }
  if (models.includes('vits16')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-eval-'));
    try {
      const file = path.join(dir, 'vit-s16.onnx');
      saveModel(synthVitModel(vitSmall16Config), file);
      const photos = path.join(SHARED, 'data/imagenet-sample');
      const images = fs.existsSync(photos) ? photos : path.join(root, 'fixtures/images');
      // 224x224 inputs are slow on CPU: a batch of at most 8 and fewer runs.
      for (const t of threadList) cases.push(await runCase('vit-s16 (synthetic)', file, images, t, { batch: Math.min(o.batch, 8), repeat: Math.min(o.repeat, 10), warmup: Math.min(o.warmup, 2) }));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const out = {
    benchmark: 'eval',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.arch()}` },
    provider: 'cpu',
    cases,
  };
  if (!args.includes('--no-write')) fs.writeFileSync(path.join(root, 'bench/eval.results.json'), JSON.stringify(out, null, 2) + '\n');
  for (const c of cases) {
    console.log(
      `${c.model}, ${c.threads} thread(s): batch 1 ${c.batch1 ? `${c.batch1.medianMs} ms median, ${c.batch1.p90Ms} ms p90` : '-'}; batch ${c.batched.batch} ${c.batched.imagesPerSecond} images/s (${c.batched.medianMs} ms per run); ` +
        `accuracy pass ${c.evaluateImagesPerSecond} images/s over ${c.imageCount}; load ${c.loadAverage.join(' -> ')}`,
    );
  }
}

main().catch((e) => {
  process.stderr.write(String((e as Error)?.stack ?? e) + '\n');
  process.exitCode = 1;
});
