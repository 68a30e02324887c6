// Benchmark: trace-path throughput on CPU, through the same service the CLI runs, for vit-mnist
// (../shared) and a generated ViT-S/16-sized model (vitSmall16Config, written to a temp file):
// images/s at the default settings (m = 20, JAS product, all four baselines) and for the search
// alone (--baselines none, the L passes of m samples the issue's target compares with), peak RSS
// of the process, and the ratio to a single forward pass of the unmodified model (images/s of
// plain inference on the same images with the same CPU threads). Each case runs in a fresh child
// process so its peak RSS is its own; a phase breakdown (clean, search, baselines, scoring,
// manipulation) comes from traceChunk's phase timer on the same oracle.
// Run: npm run build:tools && node dist-tools/bench/trace-path.js [--mnist-limit 200] [--vits-limit 2]
//   [--threads 0] [--cases mnist-default,mnist-search,mnist-default-t1,mnist-phases,vits-default,vits-search]
//   [--no-write] [--merge: keep recorded cases that are not rerun]
// Results: bench/trace-path.results.json and the "trace-path" section of BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadModel, saveModel, type LoadedModel } from '../src/onnx/model.js';
import { locateVit } from '../src/vit/locate.js';
import { synthVitModel, vitSmall16Config } from '../src/vit/synth.js';
import { tracePath } from '../src/services/tracePath.js';
import { traceChunk, type PhaseTimes } from '../src/services/traceCore.js';
import { OrtNeuronOracle, parallelPlan } from '../src/engine/neuronOracle.js';
import { BASELINES, type BaselineName } from '../src/analysis/baselines.js';
import { discoverImages } from '../src/data/sources.js';
import { inferPreprocess } from '../src/data/preprocess.js';
import { loadBatch } from '../src/data/dataset.js';
import { SessionPool, splitRows } from '../src/runtime/sessionPool.js';
import { encodeModel } from '../src/onnx/model.js';
import { clearGraphCache } from '../src/engine/gradientEngine.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The project root and the ../shared material the trace benches read (bench/trace-scale.ts too). */
export const repo = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const SHARED = path.resolve(repo, '../shared');
export const MNIST_MODEL = path.join(SHARED, 'models/vit-mnist.onnx');
export const MNIST_IMAGES = path.join(SHARED, 'data/mnist/t10k-images-idx3-ubyte.gz');
export const IMAGENET = path.join(SHARED, 'data/imagenet-sample');

interface CaseSpec {
  name: string;
  model: 'mnist' | 'vits';
  baselines: BaselineName[];
  limit: number;
  threads: number;
  steps: number;
  batch: number;
  /** Phase breakdown through traceChunk instead of the service. */
  phases?: boolean;
  /** Path of the generated ViT-S/16 model (children read it). */
  modelFile?: string;
}

export interface CaseResult {
  name: string;
  model: string;
  images: number;
  settings: { steps: number; baselines: BaselineName[]; batch: number; threads: number; sessions: number; intraOpThreads: number };
  /** Images per second of the trace loop (graph build excluded), as the report records it. */
  imagesPerSecond: number;
  /** Wall seconds of the whole service call, graph build and report writing included. */
  wallSeconds: number;
  buildMs: number;
  /** Plain forward pass of the unmodified model on the same images with the same threads. */
  forwardImagesPerSecond: number;
  /** Cost of tracing one image in single forward passes (forward images/s over trace images/s). */
  forwardPassesPerImage: number;
  peakRssMiB: number;
  cpuSeconds: number;
  /** Per-phase ms (phases case only). */
  phases?: PhaseTimes;
  loadAverage: number[];
}

function modelPath(c: CaseSpec): string {
  return c.model === 'mnist' ? MNIST_MODEL : c.modelFile!;
}
function imagesPath(c: CaseSpec): string {
  return c.model === 'mnist' ? MNIST_IMAGES : IMAGENET;
}

/**
 * Images/s of plain inference of the unmodified model on `n` images, batch 16, with the CPU session
 * plan trace-path uses for `threads` (one warm-up pass, then `reps` timed passes). Shared with
 * bench/trace-scale.ts.
 */
export async function forwardImagesPerSecond(loaded: LoadedModel, threads: number, input: Float32Array, n: number, dims: number[], reps: number): Promise<number> {
  const layout = locateVit(loaded.proto);
  const plan = parallelPlan(threads);
  const pool = await SessionPool.open(encodeModel(loaded.proto), { provider: 'cpu', threads: plan.threads, sessions: plan.sessions });
  const per = input.length / n;
  const B = Math.min(16, n);
  const once = async () => {
    for (let s = 0; s < n; s += B) {
      const m = Math.min(B, n - s);
      const pieces = splitRows(m, pool.size);
      await pool.runAll(pieces.length, (j) => {
        const [a, k] = pieces[j]!;
        return { feeds: { [layout.input]: { data: input.slice((s + a) * per, (s + a + k) * per), dims: [k, ...dims] } }, outputs: [layout.logits] };
      });
    }
  };
  await once(); // warm-up
  const t = performance.now();
  for (let r = 0; r < reps; r++) await once();
  const sec = (performance.now() - t) / 1000;
  await pool.release();
  return (reps * n) / sec;
}

/** Images/s of the unmodified model on the first `n` images, batch 16, same session plan as trace-path. */
function forwardRate(loaded: LoadedModel, c: CaseSpec, input: Float32Array, n: number, dims: number[]): Promise<number> {
  return forwardImagesPerSecond(loaded, c.threads, input, n, dims, c.model === 'mnist' ? 5 : 2);
}

async function runCase(c: CaseSpec): Promise<CaseResult> {
  const cpu0 = process.cpuUsage();
  const loaded = loadModel(modelPath(c));
  const layout = locateVit(loaded.proto);
  const f = layout.facts;
  const src = discoverImages(imagesPath(c));
  const items = src.items.slice(0, c.limit);
  const spec = inferPreprocess(layout.inputDims, {});
  const plan = parallelPlan(c.threads);
  let imagesPerSecond: number;
  let wallSeconds: number;
  let buildMs: number;
  let phases: PhaseTimes | undefined;
  const t0 = performance.now();
  if (c.phases) {
    const oracle = await OrtNeuronOracle.create(loaded, layout, { layers: layout.blocks.map((_, i) => i), token: 'cls', objective: 'prob', provider: 'cpu', threads: c.threads });
    buildMs = performance.now() - t0;
    const settings = { steps: c.steps, jas: 'product' as const, objective: 'prob' as const, target: 'auto' as const, baselines: c.baselines, topK: 5, seed: 0 };
    const input = await loadBatch(items, spec);
    const size = input.length / items.length;
    // Warm-up chunk (first runs allocate; the forward-only session opens on first use).
    await traceChunk(oracle, { input: input.subarray(0, 2 * size), ids: ['w0', 'w1'], labels: [null, null], indices: [0, 1] }, settings);
    phases = {};
    const t = performance.now();
    for (let s = 0; s < items.length; s += c.batch) {
      const n = Math.min(c.batch, items.length - s);
      await traceChunk(
        oracle,
        { input: input.subarray(s * size, (s + n) * size), ids: items.slice(s, s + n).map((i) => i.id), labels: items.slice(s, s + n).map((i) => i.label ?? null), indices: Array.from({ length: n }, (_, i) => s + i) },
        settings,
        phases,
      );
    }
    const sec = (performance.now() - t) / 1000;
    imagesPerSecond = items.length / sec;
    wallSeconds = (performance.now() - t0) / 1000;
    await oracle.release();
  } else {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-trace-'));
    try {
      const { report } = await tracePath({
        model: modelPath(c),
        images: imagesPath(c),
        target: 'auto',
        objective: 'prob',
        steps: c.steps,
        jas: 'product',
        baselines: c.baselines,
        topK: 5,
        batch: c.batch,
        seed: 0,
        limit: c.limit,
        resume: false,
        out: path.join(out, 'run'),
        force: true,
        provider: 'cpu',
        deviceId: 0,
        threads: c.threads,
        preprocess: {},
      });
      wallSeconds = (performance.now() - t0) / 1000;
      imagesPerSecond = report.results.imagesPerSecond;
      buildMs = report.timings.phases['build'] ?? 0;
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  const input = await loadBatch(items, spec);
  const fwd = await forwardRate(loaded, c, input, items.length, [f.channels, f.imageSize[0], f.imageSize[1]]);
  const cpu = process.cpuUsage(cpu0);
  return {
    name: c.name,
    model: c.model === 'mnist' ? 'vit-mnist' : 'ViT-S/16 synthetic',
    images: items.length,
    settings: { steps: c.steps, baselines: c.baselines, batch: c.batch, threads: c.threads, sessions: plan.sessions, intraOpThreads: plan.threads },
    imagesPerSecond,
    wallSeconds,
    buildMs,
    forwardImagesPerSecond: fwd,
    forwardPassesPerImage: fwd / imagesPerSecond,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    phases,
    loadAverage: os.loadavg(),
  };
}

function arg(args: string[], k: string, d: string): string {
  const i = args.indexOf(k);
  return i >= 0 && args[i + 1] ? args[i + 1]! : d;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const child = arg(args, '--child', '');
  if (child) {
    const r = await runCase(JSON.parse(child) as CaseSpec);
    process.stdout.write('RESULT ' + JSON.stringify(r) + '\n');
    return;
  }
  const log = (s: string) => process.stderr.write(s + '\n');
  const mnistLimit = Number(arg(args, '--mnist-limit', '200'));
  const vitsLimit = Number(arg(args, '--vits-limit', '2'));
  const threads = Number(arg(args, '--threads', '0'));
  const all = ['mnist-default', 'mnist-search', 'mnist-default-t1', 'mnist-phases', 'vits-default', 'vits-search'];
  const wanted = arg(args, '--cases', all.join(',')).split(',');
  const all4 = [...BASELINES];
  const specs: CaseSpec[] = [
    { name: 'mnist-default', model: 'mnist', baselines: all4, limit: mnistLimit, threads, steps: 20, batch: 16 },
    { name: 'mnist-search', model: 'mnist', baselines: [], limit: mnistLimit, threads, steps: 20, batch: 16 },
    { name: 'mnist-default-t1', model: 'mnist', baselines: all4, limit: Math.min(mnistLimit, 100), threads: 1, steps: 20, batch: 16 },
    { name: 'mnist-phases', model: 'mnist', baselines: all4, limit: Math.min(mnistLimit, 128), threads, steps: 20, batch: 16, phases: true },
    { name: 'vits-default', model: 'vits', baselines: all4, limit: vitsLimit, threads, steps: 20, batch: 16 },
    { name: 'vits-search', model: 'vits', baselines: [], limit: vitsLimit, threads, steps: 20, batch: 16 },
  ].filter((c) => wanted.includes(c.name)) as CaseSpec[];
  const haveMnist = fs.existsSync(MNIST_MODEL) && fs.existsSync(MNIST_IMAGES);
  const haveImagenet = fs.existsSync(IMAGENET);
  let tmp: string | undefined;
  const results: CaseResult[] = [];
  try {
    for (const c of specs) {
      if (c.model === 'mnist' && !haveMnist) {
        log(`skipping ${c.name}: ${MNIST_MODEL} or ${MNIST_IMAGES} not found`);
        continue;
      }
      if (c.model === 'vits') {
        if (!haveImagenet) {
          log(`skipping ${c.name}: ${IMAGENET} not found`);
          continue;
        }
        if (!tmp) {
          tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-vits-'));
          const t = performance.now();
          saveModel(synthVitModel(vitSmall16Config), path.join(tmp, 'vit-s16.onnx'));
          log(`ViT-S/16: generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        }
        c.modelFile = path.join(tmp, 'vit-s16.onnx');
      }
      log(`${c.name}: ${c.limit} images, baselines ${c.baselines.join(',') || 'none'}, threads ${c.threads} ...`);
      const self = fileURLToPath(import.meta.url);
      const r = spawnSync(process.execPath, [self, '--child', JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
      const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
      if (r.status !== 0 || !line) {
        log(`${c.name} failed (exit ${r.status})`);
        continue;
      }
      const res = JSON.parse(line.slice(7)) as CaseResult;
      results.push(res);
      log(
        `${c.name}: ${res.imagesPerSecond.toPrecision(3)} images/s (${(1 / res.imagesPerSecond).toPrecision(3)} s per image) (${res.images} images, wall ${res.wallSeconds.toFixed(1)} s, build ${(res.buildMs / 1000).toFixed(1)} s), ` +
          `forward ${res.forwardImagesPerSecond.toFixed(1)} images/s -> ${res.forwardPassesPerImage.toFixed(0)} forward passes per image, peak RSS ${res.peakRssMiB.toFixed(0)} MiB, CPU ${res.cpuSeconds.toFixed(1)} s` +
          (res.phases ? `; phases ms: ${Object.entries(res.phases).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}` : ''),
      );
    }
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    clearGraphCache();
  }
  const out = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.arch()}`, memoryGiB: os.totalmem() / 2 ** 30 },
    date: new Date().toISOString(),
    results,
  };
  const file = path.join(repo, 'bench/trace-path.results.json');
  if (args.includes('--merge') && fs.existsSync(file)) {
    // Keep the recorded cases that were not rerun (e.g. rerun vit-mnist alone at a quieter moment).
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as { results: (CaseResult & { date?: string })[]; date?: string };
    const kept = old.results.filter((r) => !results.some((x) => x.name === r.name)).map((r) => ({ ...r, date: r.date ?? old.date }));
    out.results = [...kept, ...results.map((r) => ({ ...r, date: out.date }))];
  }
  if (!args.includes('--no-write')) fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) await main();
