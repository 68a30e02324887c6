// Benchmark: trace-path against this machine's limits, in one run (issue #14 items 1 and 2).
//  - peak:    fp32 MatMul throughput of ONNX Runtime on one thread (1024^3, weights constant);
//  - torch-*: the same greedy search as a plain PyTorch eager loop (bench/torch_search.py) on a ViT
//             of the same architecture and sizes as the vitpath case (read from the located layout)
//             but random weights, when /usr/bin/python3 has torch (skipped otherwise);
//  - vitpath trace-path on vit-mnist (../shared) and generated ViT-S/16 and ViT-B/16 sized models
//             (written to a temp folder at run time) on ../shared/data/imagenet-sample: each case runs
//             the built CLI (`bin/vitpath.js trace-path`) in its own process under /usr/bin/time for
//             peak RSS and CPU seconds; the report's phases give the first image's fixed costs apart
//             from the per-image work; cost per image in forward-pass equivalents and the nominal FLOP
//             rate come from the report's sample counts and an analytic forward FLOP count;
//  - *-forward: plain inference images/s of the unmodified model; *-fixed: the engine's first-use
//             costs (graph build + session creation + first run) measured in a child process;
//  - --max-memory cases (trace-path and probe-layers), run only when the build under test lists
//             --max-memory in its --help.
// --before DIR runs the `*-before` cases with another built checkout (`npm ci` there builds dist/), so
// before and after come from one run, interleaved, under the same load.
// Run: npm run build && npm run build:tools && node dist-tools/bench/trace-scale.js [--cases a,b,...]
//   [--threads 0] [--mnist-limit 64] [--vit-limit 1] [--torch-limit N] [--before DIR] [--no-write] [--merge]
//   (`--cases list` prints the case names). Results: bench/trace-scale.results.json; the markdown tables
//   printed at the end are the BENCHMARKS.md section's.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadModel, saveModel, encodeModel } from '../src/onnx/model.js';
import { locateVit } from '../src/vit/locate.js';
import type { ViTLayout } from '../src/vit/types.js';
import { defaultToken } from '../src/vit/tokens.js';
import { synthVitModel, vitSmall16Config, type SynthVitConfig } from '../src/vit/synth.js';
import { OrtNeuronOracle, parallelPlan } from '../src/engine/neuronOracle.js';
import { prepareLoaded } from '../src/services/prepareModel.js';
import { prepareVitModel } from '../src/services/vitModel.js';
import { BASELINES, type BaselineName } from '../src/analysis/baselines.js';
import { quadrature, type QuadratureRule } from '../src/analysis/quadrature.js';
import { discoverImages } from '../src/data/sources.js';
import { inferPreprocess } from '../src/data/preprocess.js';
import { loadBatch } from '../src/data/dataset.js';
import { IMAGENET, MNIST_IMAGES, MNIST_MODEL, forwardImagesPerSecond, repo } from './trace-path.js';
import { createSession } from '../src/runtime/session.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../src/onnx/builder.js';
import { DataType } from '../src/onnx/proto.js';

const PYTHON = '/usr/bin/python3';
const STEPS = 20;

/**
 * Forward passes one gradient sample counts as in the cost per image (the lead's convention for
 * issue #14: forward + backward = 3 forward passes, as for a training step).
 */
export const GRAD_SAMPLE_FORWARD_EQUIVALENTS = 3;
/**
 * Forward FLOP counts of one gradient sample in the nominal FLOP rate: the gradient graphs need
 * gradients with respect to activations only, never weights, so the backward of each MatMul is one
 * MatMul of the forward's size (the two attention products of activations are two: about +8% of a
 * ViT-S forward, left out). An approximation of the work actually done, not a measured count.
 */
export const GRAD_SAMPLE_FORWARD_FLOPS = 2;

type ModelName = 'mnist' | 'vits' | 'vitb';
const SYNTH: Record<Exclude<ModelName, 'mnist'>, SynthVitConfig> = {
  vits: vitSmall16Config,
  vitb: { ...vitSmall16Config, width: 768, heads: 12, ffn: 3072, seed: 17 },
};
const LABEL: Record<ModelName, string> = { mnist: 'vit-mnist', vits: 'ViT-S/16 synthetic', vitb: 'ViT-B/16 synthetic' };
const MODELS: ModelName[] = ['mnist', 'vits', 'vitb'];

interface VitpathCase {
  name: string;
  kind: 'trace' | 'forward' | 'fixed' | 'probe';
  model: ModelName;
  baselines: BaselineName[];
  limit: number;
  threads: number;
  steps: number;
  batch: number;
  /** Which build runs it: this checkout, or the one given by --before DIR. */
  build: 'after' | 'before';
  maxMemory?: string;
  modelFile?: string;
}

/** Cost of one image, from the report: samples counted per method plus the clean, scoring and manipulation runs. */
export interface ImageCost {
  gradSamples: number;
  forwardSamples: number;
  /** gradSamples x GRAD_SAMPLE_FORWARD_EQUIVALENTS + forwardSamples. */
  forwardPassEquivalents: number;
  /** (gradSamples x GRAD_SAMPLE_FORWARD_FLOPS + forwardSamples) x the forward FLOPs of one image, GFLOP. */
  nominalGflop: number;
}

export interface TraceResult {
  name: string;
  model: string;
  build: string;
  images: number;
  baselines: BaselineName[];
  threads: number;
  maxMemory: string | null;
  /** The report's imagesPerSecond: images over the trace loop's seconds (in-loop first-use costs included). */
  imagesPerSecond: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /**
   * First image's fixed costs before the loop (ms): model = load + prepare + locate; build = the
   * gradient graph's build and its session(s) (main's engine). inLoopMs: graph build and session
   * creation inside the loop, from the report's graphBuild/sessionOpen phases when it has them, else
   * from this run's *-fixed case of the same model (after builds only), else null.
   */
  fixed: { modelMs: number; buildMs: number; inLoopMs: number | null; inLoopSource: 'report' | 'fixed-case' | null };
  /** Trace-loop seconds (the report's `trace` phase: images decoded apart) per image, first-use costs included. */
  loopSecondsPerImage: number;
  /** loopSecondsPerImage less inLoopMs per image when known (else equal to it). */
  netSecondsPerImage: number;
  cost: ImageCost;
  forwardGflop: number;
  /** cost.nominalGflop / netSecondsPerImage. */
  nominalGflopPerSecond: number;
  /** The report's timings.phases (ms). */
  phases: Record<string, number>;
  /** 1/5/15-minute load averages just before and just after the run (the machine may be shared). */
  loadBefore: number[];
  loadAverage: number[];
}

/** Forward FLOPs (2 per multiply-add) of one image: patch embedding, blocks (linears + attention products), head. */
export function forwardFlops(layout: ViTLayout): number {
  const f = layout.facts;
  const T = f.tokens;
  const D = f.width;
  const P = f.numPatches;
  const patch = (f.channels * f.imageSize[0] * f.imageSize[1]) / Math.max(1, P);
  const block = 2 * T * (4 * D * D + 2 * D * f.ffnWidth) + 4 * T * T * D;
  return 2 * P * patch * D + f.numBlocks * block + 2 * D * f.numClasses;
}

interface ReportLike {
  results: {
    settings: { steps: number; rule?: QuadratureRule };
    summary: { method: string; meanGradSamples: number; meanForwardSamples: number }[];
  };
}

/**
 * Samples per image of a trace-path run (main's traceChunk): the clean pass (1 forward); every
 * method's search as counted in results.summary (meanGradSamples, meanForwardSamples; 0 for
 * activation and random); scorePaths: M paths x (m, or m + 1 when the rule has no alpha = 0 node)
 * gradient samples; manipulatePaths: 2M + 1 forward samples (remove, enhance, one unedited). M = the
 * methods in the summary (the path and each baseline).
 */
export function imageCost(report: ReportLike, fwdFlops: number): ImageCost {
  const { steps, rule } = report.results.settings;
  const q = quadrature(rule ?? 'left', steps);
  const per = q.zeroIndex >= 0 ? steps : steps + 1;
  const M = report.results.summary.length;
  let grad = M * per;
  let fwd = 1 + 2 * M + 1;
  for (const s of report.results.summary) {
    grad += s.meanGradSamples;
    fwd += s.meanForwardSamples;
  }
  return {
    gradSamples: grad,
    forwardSamples: fwd,
    forwardPassEquivalents: grad * GRAD_SAMPLE_FORWARD_EQUIVALENTS + fwd,
    nominalGflop: ((grad * GRAD_SAMPLE_FORWARD_FLOPS + fwd) * fwdFlops) / 1e9,
  };
}

function imagesFor(m: ModelName): string {
  return m === 'mnist' ? MNIST_IMAGES : IMAGENET;
}

function modelFile(c: VitpathCase): string {
  return c.model === 'mnist' ? MNIST_MODEL : c.modelFile!;
}

const helpCache = new Map<string, boolean>();
/** Whether `vitpath <command> --help` of the build in `dir` lists --max-memory. */
export function buildHasMaxMemory(dir: string, command: 'trace-path' | 'probe-layers'): boolean {
  const key = `${dir}\0${command}`;
  if (!helpCache.has(key)) {
    const r = spawnSync(process.execPath, [path.join(dir, 'bin/vitpath.js'), command, '--help'], { encoding: 'utf8', maxBuffer: 16 << 20 });
    helpCache.set(key, r.status === 0 && /--max-memory\b/.test(r.stdout ?? ''));
  }
  return helpCache.get(key)!;
}

/** Run `node <build>/bin/vitpath.js args` under /usr/bin/time: peak RSS (MiB), CPU and wall seconds. */
function timed(buildDir: string, args: string[], timeFile: string, name: string): { peakRssMiB: number; cpuSeconds: number; wallSeconds: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S %e', '-o', timeFile, process.execPath, path.join(buildDir, 'bin/vitpath.js'), ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`${name}: exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`);
  const [rssKb, user, sys, wall] = fs.readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-4).map(Number) as [number, number, number, number];
  return { peakRssMiB: rssKb / 1024, cpuSeconds: user + sys, wallSeconds: wall };
}

/** Run a build's trace-path CLI on the case and read its report. */
function runTrace(c: VitpathCase, buildDir: string, layout: ViTLayout, firstUseMs: number | undefined): TraceResult {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-scale-'));
  const args = [
    'trace-path',
    modelFile(c),
    '--images',
    imagesFor(c.model),
    '--limit',
    String(c.limit),
    '--steps',
    String(c.steps),
    '--batch',
    String(c.batch),
    '--baselines',
    c.baselines.length ? c.baselines.join(',') : 'none',
    '--threads',
    String(c.threads),
    '--provider',
    'cpu',
    '--out',
    path.join(out, 'run'),
    '--quiet',
    ...(c.maxMemory ? ['--max-memory', c.maxMemory] : []),
  ];
  const loadBefore = os.loadavg();
  try {
    const t = timed(buildDir, args, path.join(out, 'time.txt'), c.name);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'run/report.json'), 'utf8'));
    const ph = report.timings.phases as Record<string, number>;
    const images = report.results.images.length as number;
    const fwd = forwardFlops(layout);
    const cost = imageCost(report, fwd);
    let inLoopMs: number | null = null;
    let inLoopSource: TraceResult['fixed']['inLoopSource'] = null;
    if (ph['graphBuild'] !== undefined || ph['sessionOpen'] !== undefined) {
      inLoopMs = (ph['graphBuild'] ?? 0) + (ph['sessionOpen'] ?? 0);
      inLoopSource = 'report';
    } else if (c.build === 'after' && firstUseMs !== undefined) {
      inLoopMs = firstUseMs;
      inLoopSource = 'fixed-case';
    }
    const net = Math.max(0, (ph['trace'] ?? 0) - (inLoopMs ?? 0)) / 1000 / Math.max(1, images);
    return {
      name: c.name,
      model: LABEL[c.model],
      build: c.build,
      images,
      baselines: c.baselines,
      threads: c.threads,
      maxMemory: c.maxMemory ?? null,
      imagesPerSecond: report.results.imagesPerSecond,
      ...t,
      fixed: { modelMs: (ph['load'] ?? 0) + (ph['prepare'] ?? 0) + (ph['locate'] ?? 0), buildMs: ph['build'] ?? 0, inLoopMs, inLoopSource },
      loopSecondsPerImage: (ph['trace'] ?? 0) / 1000 / Math.max(1, images),
      netSecondsPerImage: net,
      cost,
      forwardGflop: fwd / 1e9,
      nominalGflopPerSecond: net > 0 ? cost.nominalGflop / net : 0,
      phases: ph,
      loadBefore,
      loadAverage: os.loadavg(),
    };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export interface ProbeResult {
  name: string;
  model: string;
  build: string;
  images: number;
  maxMemory: string | null;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  loadBefore: number[];
  loadAverage: number[];
}

/**
 * probe-layers (attribution included) under /usr/bin/time: peak RSS and time. The ImageNet sample
 * is a flat folder without labels: the images get labels 0, 1, 0, 1, ... (the probes' accuracy
 * means nothing here; the memory and work do not depend on the labels).
 */
function runProbe(c: VitpathCase, buildDir: string): ProbeResult {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-scale-'));
  const files = fs
    .readdirSync(IMAGENET)
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort()
    .slice(0, c.limit);
  const labels = path.join(out, 'labels.csv');
  fs.writeFileSync(labels, 'file,label\n' + files.map((f, i) => `${f},${i % 2}`).join('\n') + '\n');
  const args = ['probe-layers', modelFile(c), '--images', IMAGENET, '--labels', labels, '--limit', String(c.limit), '--folds', '2', '--steps', String(c.steps), '--threads', String(c.threads), '--provider', 'cpu', '--out', path.join(out, 'run'), '--quiet', ...(c.maxMemory ? ['--max-memory', c.maxMemory] : [])];
  const loadBefore = os.loadavg();
  try {
    const t = timed(buildDir, args, path.join(out, 'time.txt'), c.name);
    return { name: c.name, model: LABEL[c.model], build: c.build, images: files.length, maxMemory: c.maxMemory ?? null, ...t, loadBefore, loadAverage: os.loadavg() };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Images/s of plain inference of the unmodified model with the CPU plan trace-path uses (batch 16). */
async function runForward(c: VitpathCase): Promise<{ name: string; model: string; images: number; forwardImagesPerSecond: number; loadAverage: number[] }> {
  const loaded = loadModel(modelFile(c));
  const layout = locateVit(loaded.proto);
  const f = layout.facts;
  const items = discoverImages(imagesFor(c.model)).items.slice(0, Math.max(c.limit, 2));
  const input = await loadBatch(items, inferPreprocess(layout.inputDims, {}));
  const n = items.length;
  const rate = await forwardImagesPerSecond(loaded, c.threads, input, n, [f.channels, f.imageSize[0], f.imageSize[1]], c.model === 'mnist' ? 10 : 3);
  return { name: c.name, model: LABEL[c.model], images: n, forwardImagesPerSecond: rate, loadAverage: os.loadavg() };
}

export interface FixedResult {
  name: string;
  model: string;
  /** load + prepare + locate, ms. */
  modelMs: number;
  /** OrtNeuronOracle.create: the gradient graph's build and its sessions (trace-path's `build` phase), ms. */
  oracleMs: number;
  /** First call minus second call on one image, ms: the clean graph (built and opened on first use), the forward-only graph (same), the gradient graph's first run. */
  firstUse: { clean: number; forward: number; gradient: number };
  firstUseMs: number;
  loadAverage: number[];
}

/**
 * The engine's fixed costs, measured in this checkout's code as trace-path runs it (prepare, locate,
 * oracle over every block at the default token), on one image: what the first chunk of a run pays
 * on top of its per-image work.
 */
async function runFixed(c: VitpathCase): Promise<FixedResult> {
  const file = modelFile(c);
  const t0 = performance.now();
  const { loaded: prepped } = await prepareLoaded(loadModel(file), { label: file });
  const { loaded, layout } = prepareVitModel(prepped, {});
  const t1 = performance.now();
  const oracle = await OrtNeuronOracle.create(loaded, layout, { layers: layout.blocks.map((_, i) => i), token: defaultToken(layout), objective: 'prob', provider: 'cpu', threads: c.threads });
  const t2 = performance.now();
  try {
    const items = discoverImages(imagesFor(c.model)).items.slice(0, 1);
    const input = await loadBatch(items, inferPreprocess(layout.inputDims, {}));
    const twice = async (f: () => Promise<unknown>) => {
      const a = performance.now();
      await f();
      const b = performance.now();
      await f();
      return b - a - (performance.now() - b);
    };
    const L = oracle.layers.length;
    const query = (grads: boolean) => ({ input, samples: 1, scale: new Array(L).fill(undefined), offset: new Array(L).fill(undefined), target: Int32Array.of(0), grads });
    const clean = await twice(() => oracle.clean(input, 1));
    const forward = await twice(() => oracle.evaluate(query(false)));
    const gradient = await twice(() => oracle.evaluate(query(true)));
    return { name: c.name, model: LABEL[c.model], modelMs: t1 - t0, oracleMs: t2 - t1, firstUse: { clean, forward, gradient }, firstUseMs: Math.max(0, clean) + Math.max(0, forward) + Math.max(0, gradient), loadAverage: os.loadavg() };
  } finally {
    await oracle.release();
  }
}

/** ONNX Runtime fp32 MatMul, 1024^3, one intra-op thread, in this thread: GFLOP/s of the fastest batch of runs. */
async function matmulPeak(): Promise<{ gflopPerSecond: number; runs: number; msPerRun: number; loadBefore: number[]; loadAverage: number[] }> {
  const loadBefore = os.loadavg();
  const N = 1024;
  const b = new GraphBuilder(17, 'peak');
  const w = new Float32Array(N * N);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  b.initializer('w', w, [N, N]);
  b.op('MatMul', ['x', 'w'], {}, 'y');
  const model = makeModel({ opset: 17, graph: makeGraph('peak', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [N, N])], [tensorValueInfo('y', DataType.FLOAT)], b.initializers) });
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  const x = Float32Array.from({ length: N * N }, (_, i) => Math.sin(i));
  const feeds = { x: { data: x, dims: [N, N] } };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  // Best of 5 batches of 5 runs: the machine's limit, not its average under other jobs.
  let best = Infinity;
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    for (let i = 0; i < 5; i++) await s.run(feeds);
    best = Math.min(best, (performance.now() - t) / 5);
  }
  await s.release();
  return { gflopPerSecond: (2 * N ** 3) / (best / 1000) / 1e9, runs: 28, msPerRun: best, loadBefore, loadAverage: os.loadavg() };
}

function torchAvailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The torch model's sizes, from the located layout of the vitpath case's model (its weights are random). */
export function torchConfig(layout: ViTLayout): Record<string, number> {
  const f = layout.facts;
  const patch = f.patchSize ?? Math.round(f.imageSize[0] / Math.sqrt(f.numPatches));
  return { image: f.imageSize[0], channels: f.channels, patch, width: f.width, depth: f.numBlocks, heads: f.heads ?? 1, ffn: f.ffnWidth, classes: f.numClasses };
}

function runTorch(model: ModelName, layout: ViTLayout, images: number, threads: number, batch: number): Record<string, unknown> | null {
  const cfg = torchConfig(layout);
  const loadBefore = os.loadavg();
  const r = spawnSync(PYTHON, [path.join(repo, 'bench/torch_search.py'), JSON.stringify({ ...cfg, steps: STEPS, images, threads, batch })], { encoding: 'utf8', maxBuffer: 16 << 20 });
  const line = (r.stdout ?? '').trim().split('\n').pop();
  if (r.status !== 0 || !line) {
    process.stderr.write(`torch-${model} failed: ${r.stderr?.slice(-500)}\n`);
    return null;
  }
  return { name: `torch-${model}`, model: LABEL[model], config: cfg, weights: 'random (same architecture and sizes)', ...JSON.parse(line), loadBefore, loadAverage: os.loadavg() };
}

function arg(args: string[], k: string, d: string): string {
  const i = args.indexOf(k);
  return i >= 0 && args[i + 1] ? args[i + 1]! : d;
}

/** Every case of the bench (with --before DIR the *-before ones run that build). */
export function allCases(o: { threads: number; mnistLimit: number; vitLimit: number }): VitpathCase[] {
  const cases: VitpathCase[] = [];
  const all4 = [...BASELINES];
  for (const model of MODELS) {
    const limit = model === 'mnist' ? o.mnistLimit : o.vitLimit;
    const base = { model, limit, threads: o.threads, steps: STEPS, batch: 16 };
    cases.push({ ...base, name: `${model}-forward`, kind: 'forward', baselines: [], build: 'after' });
    cases.push({ ...base, name: `${model}-fixed`, kind: 'fixed', baselines: [], build: 'after' });
    // Before and after side by side (minutes apart, under the same load as far as possible).
    for (const build of ['before', 'after'] as const) cases.push({ ...base, name: `${model}-search-${build}`, kind: 'trace', baselines: [], build });
    for (const build of ['before', 'after'] as const) cases.push({ ...base, name: `${model}-default-${build}`, kind: 'trace', baselines: all4, build });
  }
  const probe = { model: 'vitb' as const, limit: 4, threads: o.threads, steps: STEPS, batch: 16, kind: 'probe' as const, baselines: [] };
  for (const build of ['before', 'after'] as const) cases.push({ ...probe, name: `vitb-probe-${build}`, build });
  cases.push({ ...probe, name: 'vitb-probe-6GB', build: 'after', maxMemory: '6GB' });
  for (const [model, mm] of [['mnist', '1GB'], ['vitb', '6GB'], ['vitb', '5GB'], ['vits', '3GB']] as const) {
    cases.push({ model, limit: model === 'mnist' ? o.mnistLimit : o.vitLimit, threads: o.threads, steps: STEPS, batch: 16, name: `${model}-default-${mm}`, kind: 'trace', baselines: all4, build: 'after', maxMemory: mm });
  }
  return cases;
}

const EXTRA = ['peak', 'torch-mnist', 'torch-vits', 'torch-vitb'];
/** Cases run without --cases: the ones that take minutes, not hours (vit-mnist and the peak). */
const DEFAULT_CASES = ['peak', 'torch-mnist', 'mnist-forward', 'mnist-fixed', 'mnist-search-before', 'mnist-search-after', 'mnist-default-before', 'mnist-default-after'];

interface Results {
  machine: Record<string, unknown>;
  date: string;
  conventions: Record<string, unknown>;
  peak?: { gflopPerSecond: number; msPerRun: number; loadBefore: number[]; loadAverage: number[] };
  torch: Record<string, unknown>[];
  traces: TraceResult[];
  probes: ProbeResult[];
  forward: { name: string; model: string; forwardImagesPerSecond: number }[];
  fixed: FixedResult[];
  skipped: { name: string; reason: string }[];
}

const n = (x: number, d = 2) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const load = (a: number[]) => a.map((x) => x.toFixed(1)).join(' ');

/** Markdown tables for BENCHMARKS.md from the results. */
export function markdown(r: Results): string {
  const lines: string[] = [];
  const peak = r.peak?.gflopPerSecond;
  const measured = (t: TraceResult) => {
    const f = r.forward.find((x) => x.model === t.model);
    return f ? n(t.netSecondsPerImage * f.forwardImagesPerSecond, 0) : '–';
  };
  if (r.peak) lines.push(`ONNX Runtime fp32 MatMul 1024³, 1 thread, fastest of 5 × 5 runs: **${n(r.peak.gflopPerSecond, 1)} GFLOP/s** (${n(r.peak.msPerRun, 1)} ms/run; load ${load(r.peak.loadBefore)} → ${load(r.peak.loadAverage)}).`, '');
  if (r.traces.length) {
    lines.push(
      '| case | build | images | imgs/s | loop s/img | net s/img | samples/img (grad + fwd) | fwd-eq/img counted / measured | nominal GFLOP/s | % of MatMul peak × cores | wall s | CPU s | peak RSS MiB | fixed s (model / build / in loop) | load before → after |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const t of r.traces) {
      const inLoop = t.fixed.inLoopMs === null ? '–' : n(t.fixed.inLoopMs / 1000) + (t.fixed.inLoopSource === 'fixed-case' ? '*' : '');
      lines.push(
        `| ${t.name} | ${t.build} | ${t.images} | ${n(t.imagesPerSecond, 3)} | ${n(t.loopSecondsPerImage, 3)} | ${n(t.netSecondsPerImage, 3)} | ${n(t.cost.gradSamples, 0)} + ${n(t.cost.forwardSamples, 0)} | ${n(t.cost.forwardPassEquivalents, 0)} / ${measured(t)} | ${n(t.nominalGflopPerSecond, 1)} | ${peak ? n((100 * t.nominalGflopPerSecond) / (peak * (t.threads > 0 ? t.threads : os.availableParallelism())), 0) + '%' : '–'} | ${n(t.wallSeconds, 1)} | ${n(t.cpuSeconds, 1)} | ${n(t.peakRssMiB, 0)} | ${n(t.fixed.modelMs / 1000)} / ${n(t.fixed.buildMs / 1000)} / ${inLoop} | ${load(t.loadBefore)} → ${load(t.loadAverage)} |`,
      );
    }
    lines.push(
      '',
      `imgs/s: the report's imagesPerSecond (loop incl. image decoding). loop s/img: the report's trace phase per image. net s/img: that less in-loop first-use costs (from the report's graphBuild/sessionOpen phases; \`*\`: measured by the model's *-fixed case in this checkout's code, applied to after builds only, so compare before with after on loop s/img).`,
      `fwd-eq/img counted: gradient samples × ${GRAD_SAMPLE_FORWARD_EQUIVALENTS} + forward samples (clean pass, searches as counted in the report, scoring, remove/enhance); measured: net s/img × the model's plain-inference images/s from this run's *-forward case (batch 16, same threads). nominal GFLOP/s: (gradient samples × ${GRAD_SAMPLE_FORWARD_FLOPS} + forward samples) × analytic forward FLOPs / net s/img.`,
      '',
    );
  }
  if (r.fixed.length) {
    lines.push('| fixed costs | model s | oracle (graph build + sessions) s | first use: clean / forward / gradient s |', '| --- | --- | --- | --- |');
    for (const f of r.fixed) lines.push(`| ${f.model} | ${n(f.modelMs / 1000)} | ${n(f.oracleMs / 1000)} | ${n(f.firstUse.clean / 1000)} / ${n(f.firstUse.forward / 1000)} / ${n(f.firstUse.gradient / 1000)} |`);
    lines.push('');
  }
  if (r.forward.length) {
    lines.push('| plain inference | images/s (batch 16) |', '| --- | --- |');
    for (const f of r.forward) lines.push(`| ${f.model} | ${n(f.forwardImagesPerSecond, 2)} |`);
    lines.push('');
  }
  if (r.torch.length) {
    lines.push('| PyTorch eager search (m = 20, random weights) | torch | threads | batch | images | imgs/s | CPU s/img | vitpath search-only (after) imgs/s / 1 ÷ net s/img |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const t of r.torch as { name: string; model: string; torch: string; threads: number; batch: number; images: number; imagesPerSecond: number; cpuSeconds: number }[]) {
      const v = r.traces.find((x) => x.name === `${t.name.slice('torch-'.length)}-search-after`);
      lines.push(`| ${t.model} | ${t.torch} | ${t.threads} | ${t.batch} | ${t.images} | ${n(t.imagesPerSecond, 3)} | ${n(t.cpuSeconds / t.images, 3)} | ${v ? `${n(v.imagesPerSecond, 3)} / ${v.netSecondsPerImage > 0 ? n(1 / v.netSecondsPerImage, 3) : '–'}` : '–'} |`);
    }
    lines.push('');
  }
  if (r.probes.length) {
    lines.push('| probe-layers | build | images | --max-memory | wall s | CPU s | peak RSS MiB |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const p of r.probes) lines.push(`| ${p.model} | ${p.build} | ${p.images} | ${p.maxMemory ?? '–'} | ${n(p.wallSeconds, 1)} | ${n(p.cpuSeconds, 1)} | ${n(p.peakRssMiB, 0)} |`);
    lines.push('');
  }
  if (r.skipped.length) lines.push('Skipped: ' + r.skipped.map((s) => `${s.name} (${s.reason})`).join('; '), '');
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const child = arg(args, '--child', '');
  if (child) {
    const c = JSON.parse(child) as VitpathCase;
    const r = c.kind === 'fixed' ? await runFixed(c) : await runForward(c);
    process.stdout.write('RESULT ' + JSON.stringify(r) + '\n');
    return;
  }
  const before = arg(args, '--before', '');
  const log = (s: string) => process.stderr.write(s + '\n');
  const threads = Number(arg(args, '--threads', '0'));
  const mnistLimit = Number(arg(args, '--mnist-limit', '64'));
  const vitLimit = Number(arg(args, '--vit-limit', '1'));
  const torchLimit = arg(args, '--torch-limit', '');
  const cases = allCases({ threads, mnistLimit, vitLimit });
  const known = [...EXTRA, ...cases.map((c) => c.name)];
  if (arg(args, '--cases', '') === 'list') {
    process.stdout.write(known.join('\n') + '\n');
    return;
  }
  const wanted = arg(args, '--cases', DEFAULT_CASES.join(',')).split(',');
  for (const w of wanted) if (!known.includes(w)) throw new Error(`unknown case ${w}; choose from ${known.join(', ')}`);
  if (before && !fs.existsSync(path.join(before, 'dist/cli/main.js'))) throw new Error(`--before ${before}: no dist/cli/main.js there (run npm ci in that checkout)`);
  const out: Results = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.arch()}`, memoryGiB: os.totalmem() / 2 ** 30 },
    date: new Date().toISOString(),
    conventions: { steps: STEPS, batch: 16, gradSampleForwardEquivalents: GRAD_SAMPLE_FORWARD_EQUIVALENTS, gradSampleForwardFlops: GRAD_SAMPLE_FORWARD_FLOPS, before: before ? path.resolve(before) : null },
    torch: [],
    traces: [],
    probes: [],
    forward: [],
    fixed: [],
    skipped: [],
  };
  const skip = (name: string, reason: string) => {
    out.skipped.push({ name, reason });
    log(`skipping ${name}: ${reason}`);
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-bench-scale-models-'));
  const fileOf = (model: ModelName): string | null => {
    if (model === 'mnist') return fs.existsSync(MNIST_MODEL) && fs.existsSync(MNIST_IMAGES) ? MNIST_MODEL : null;
    if (!fs.existsSync(IMAGENET)) return null;
    const f = path.join(tmp, `${model}.onnx`);
    if (!fs.existsSync(f)) saveModel(synthVitModel(SYNTH[model]), f);
    return f;
  };
  const missing = (model: ModelName) => (model === 'mnist' ? `${MNIST_MODEL} or ${MNIST_IMAGES} not found` : `${IMAGENET} not found`);
  try {
    if (wanted.includes('peak')) {
      out.peak = await matmulPeak();
      log(`peak: ${JSON.stringify(out.peak)}`);
    }
    const torch = wanted.some((w) => w.startsWith('torch-')) ? torchAvailable() : null;
    for (const model of MODELS) {
      const name = `torch-${model}`;
      if (!wanted.includes(name)) continue;
      if (!torch) {
        skip(name, `${PYTHON} has no torch (apt install python3-torch to compare)`);
        continue;
      }
      const file = fileOf(model);
      if (!file) {
        skip(name, missing(model));
        continue;
      }
      const plan = parallelPlan(threads);
      const t = model === 'mnist' ? 1 : plan.sessions * plan.threads;
      const images = torchLimit ? Number(torchLimit) : model === 'mnist' ? mnistLimit : vitLimit;
      log(`${name}: ${images} images ... (load ${load(os.loadavg())})`);
      const r = runTorch(model, locateVit(loadModel(file).proto), images, t, model === 'mnist' ? Math.min(16, images) : 1);
      if (r) {
        out.torch.push(r);
        log(`${name}: ${JSON.stringify(r)}`);
      }
    }
    for (const c of cases.filter((x) => wanted.includes(x.name))) {
      const file = fileOf(c.model);
      if (!file) {
        skip(c.name, missing(c.model));
        continue;
      }
      if (c.model !== 'mnist') c.modelFile = file;
      const buildDir = c.build === 'before' ? (before ? path.resolve(before) : '') : repo;
      if (!buildDir) {
        skip(c.name, 'pass --before DIR (a built checkout of the commit to compare with)');
        continue;
      }
      if (c.maxMemory && !buildHasMaxMemory(buildDir, c.kind === 'probe' ? 'probe-layers' : 'trace-path')) {
        skip(c.name, `${c.kind === 'probe' ? 'probe-layers' : 'trace-path'} of ${buildDir} has no --max-memory`);
        continue;
      }
      log(`${c.name}: ${c.kind === 'trace' || c.kind === 'probe' ? `${c.limit} images ` : ''}... (load ${load(os.loadavg())})`);
      try {
        if (c.kind === 'probe') {
          const res = runProbe(c, buildDir);
          out.probes.push(res);
          log(`${c.name}: ${JSON.stringify(res)}`);
        } else if (c.kind === 'trace') {
          const layout = locateVit(loadModel(file).proto);
          const firstUse = out.fixed.find((f) => f.name === `${c.model}-fixed`)?.firstUseMs;
          const res = runTrace(c, buildDir, layout, firstUse);
          out.traces.push(res);
          log(`${c.name}: ${JSON.stringify({ ...res, phases: undefined })}`);
        } else {
          const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
          const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
          if (r.status !== 0 || !line) throw new Error(`exit ${r.status}`);
          const res = JSON.parse(line.slice(7));
          (c.kind === 'fixed' ? out.fixed : out.forward).push(res);
          log(`${c.name}: ${JSON.stringify(res)}`);
        }
      } catch (e) {
        log(`${c.name} failed: ${(e as Error).message}`);
        out.skipped.push({ name: c.name, reason: `failed: ${(e as Error).message}` });
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const file = path.join(repo, 'bench/trace-scale.results.json');
  if (args.includes('--merge') && fs.existsSync(file)) {
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as Results;
    const keep = <T extends { name: string }>(a: T[] = [], b: T[]) => [...a.filter((x) => !b.some((y) => y.name === x.name)).map((x) => ({ date: old.date, ...x })), ...b.map((x) => ({ ...x, date: out.date }))];
    out.traces = keep(old.traces, out.traces);
    out.forward = keep(old.forward, out.forward);
    out.fixed = keep(old.fixed, out.fixed);
    out.probes = keep(old.probes, out.probes);
    out.torch = keep(old.torch as { name: string }[], out.torch as { name: string }[]);
    out.peak ??= old.peak;
  }
  process.stdout.write(markdown(out) + '\n');
  if (!args.includes('--no-write')) fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) await main();
