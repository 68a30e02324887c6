// Benchmark: cost of vitpath's neuron-gradient graph against the plain forward pass, on CPU at
// batch 20, for vit-mnist (../shared) and a generated ViT-S/16-sized model (width 384, 12 blocks,
// FFN 1536, 224x224, random weights): graph build time (rewrite, shape probe, backward, encode),
// session creation, forward ms/sample and forward+gradient ms/sample (medians), and their ratio.
// Run: npm run build:tools && node dist-tools/bench/gradients.js [--threads 2,1] [--batch 20] [--repeat 5] [--models mnist,vits16] [--no-write]
// Results: bench/gradients.results.json and the "Gradients" section of BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadModel, encodeModel, sha256Hex, type LoadedModel } from '../src/onnx/model.js';
import { locateVit } from '../src/vit/locate.js';
import { synthVitModel, vitSmall16Config } from '../src/vit/synth.js';
import { interveneNeurons } from '../src/onnx/rewrite/intervene.js';
import { batchDim } from '../src/vit/tokens.js';
import { appendObjective } from '../src/onnx/autodiff/objective.js';
import { buildGradientGraph } from '../src/onnx/autodiff/backward.js';
import { probeFacts } from '../src/runtime/probe.js';
import { createSession } from '../src/runtime/session.js';
import { NeuronGradientEngine, clearGraphCache } from '../src/engine/gradientEngine.js';
import type { ViTLayout } from '../src/vit/types.js';

export interface GradientBenchResult {
  model: string;
  params: number;
  batch: number;
  threads: number;
  /** Build phases, ms. */
  build: { rewriteMs: number; probeMs: number; backwardMs: number; encodeMs: number; totalMs: number; engineCreateMs: number; sessionMs: number; forwardNodes: number; backwardNodes: number };
  /** Medians over the timed runs, per sample. */
  forwardMsPerSample: number;
  gradientMsPerSample: number;
  ratio: number;
  /** Fastest run, per sample: the least disturbed by other processes on a shared machine. */
  forwardMinMsPerSample: number;
  gradientMinMsPerSample: number;
  ratioMin: number;
  /** Every timed run, ms per batch. */
  forwardRunsMs: number[];
  gradientRunsMs: number[];
  runs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function pseudoImages(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((i * 2654435761) >>> 0) / 2 ** 32;
  return a;
}

async function benchModel(name: string, loaded: LoadedModel, layout: ViTLayout, batch: number, threads: number, repeat: number, log: (s: string) => void): Promise<GradientBenchResult> {
  const F = layout.facts.ffnWidth;
  const params = loaded.proto.graph!.initializer.reduce((s, t) => s + t.dims.reduce((p, d) => p * Number(d), 1), 0);
  // Build phases, timed one by one (the engine does the same steps).
  let t = performance.now();
  const iv = interveneNeurons(loaded.proto, layout, { exposeActivations: true });
  const obj = appendObjective(iv.model, { logits: layout.logits, batchDim: batchDim(layout) });
  const rewriteMs = performance.now() - t;
  t = performance.now();
  const facts = await probeFacts(obj.model, { provider: 'cpu', threads });
  const probeMs = performance.now() - t;
  t = performance.now();
  const g = buildGradientGraph(obj.model, { loss: obj.loss, wrt: Object.values(iv.inputs), facts });
  const backwardMs = performance.now() - t;
  t = performance.now();
  encodeModel(g.model);
  const encodeMs = performance.now() - t;
  log(`${name}: rewrite ${rewriteMs.toFixed(0)} ms, probe ${probeMs.toFixed(0)} ms, backward ${backwardMs.toFixed(0)} ms (${g.addedNodes} nodes), encode ${encodeMs.toFixed(0)} ms`);

  clearGraphCache();
  t = performance.now();
  const engine = await NeuronGradientEngine.create(loaded, layout, { provider: 'cpu', threads });
  const engineCreateMs = performance.now() - t;
  log(`${name}: engine create ${engineCreateMs.toFixed(0)} ms (graph ${engine.timings.graphMs.toFixed(0)} ms, session ${engine.timings.sessionMs.toFixed(0)} ms)`);

  const [, c, h, w] = [batch, layout.facts.channels, layout.facts.imageSize[0], layout.facts.imageSize[1]];
  const images = pseudoImages(batch * c * h * w);
  const fwd = await createSession(encodeModel(loaded.proto), { provider: 'cpu', threads });
  const feeds = { [layout.input]: { data: images, dims: [batch, c, h, w] } };
  const clean = await engine.clean(images, batch);
  const targets = Array.from({ length: batch }, (_, i) => i % layout.facts.numClasses);
  const overrides = Object.fromEntries(engine.layers.map((l) => [l, clean.activations[l]!.map((x) => 0.5 * x)]));
  // Warm-up (first runs allocate), then alternate forward and gradient runs so drift hits both.
  await fwd.run(feeds, [layout.logits]);
  await engine.run(images, batch, targets, overrides);
  const tf: number[] = [];
  const tg: number[] = [];
  for (let k = 0; k < repeat; k++) {
    t = performance.now();
    await fwd.run(feeds, [layout.logits]);
    tf.push(performance.now() - t);
    t = performance.now();
    await engine.run(images, batch, targets, overrides);
    tg.push(performance.now() - t);
    log(`${name}: run ${k + 1}/${repeat}: forward ${tf[k]!.toFixed(0)} ms, forward+gradient ${tg[k]!.toFixed(0)} ms`);
  }
  await fwd.release();
  await engine.release();
  const forwardMsPerSample = median(tf) / batch;
  const gradientMsPerSample = median(tg) / batch;
  void F;
  return {
    model: name,
    params,
    batch,
    threads,
    build: {
      rewriteMs,
      probeMs,
      backwardMs,
      encodeMs,
      totalMs: rewriteMs + probeMs + backwardMs + encodeMs,
      engineCreateMs,
      sessionMs: engine.timings.sessionMs,
      forwardNodes: obj.model.graph!.node.length,
      backwardNodes: g.addedNodes,
    },
    forwardMsPerSample,
    gradientMsPerSample,
    ratio: gradientMsPerSample / forwardMsPerSample,
    forwardMinMsPerSample: Math.min(...tf) / batch,
    gradientMinMsPerSample: Math.min(...tg) / batch,
    ratioMin: Math.min(...tg) / Math.min(...tf),
    forwardRunsMs: tf.map((x) => Math.round(x * 10) / 10),
    gradientRunsMs: tg.map((x) => Math.round(x * 10) / 10),
    runs: repeat,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (k: string, d: string) => {
    const i = args.indexOf(k);
    return i >= 0 && args[i + 1] ? args[i + 1]! : d;
  };
  const batch = Number(arg('--batch', '20'));
  const threadList = arg('--threads', String(Math.min(2, os.cpus().length))).split(',').map(Number);
  const repeat = Number(arg('--repeat', '5'));
  const models = arg('--models', 'mnist,vits16').split(',');
  const log = (s: string) => process.stderr.write(s + '\n');
  const results: GradientBenchResult[] = [];
  const mnistPath = fileURLToPath(new URL('../../../shared/models/vit-mnist.onnx', import.meta.url));
  if (models.includes('mnist')) {
    if (fs.existsSync(mnistPath)) {
      const loaded = loadModel(mnistPath);
      for (const threads of threadList) results.push(await benchModel('vit-mnist', loaded, locateVit(loaded.proto), batch, threads, Math.max(repeat, 20), log));
    } else log(`skipping vit-mnist: ${mnistPath} not found`);
  }
  if (models.includes('vits16')) {
    const t = performance.now();
    const proto = synthVitModel(vitSmall16Config);
    const bytes = encodeModel(proto);
    log(`vit-s16: generated in ${(performance.now() - t).toFixed(0)} ms (${(bytes.length / 2 ** 20).toFixed(1)} MiB)`);
    const loaded: LoadedModel = { proto, path: '<generated ViT-S/16>', sha256: sha256Hex(bytes), sizeBytes: bytes.length, externalFiles: [] };
    for (const threads of threadList) results.push(await benchModel('vit-s16 (synthetic)', loaded, locateVit(proto), batch, threads, repeat, log));
  }
  const out = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.arch()}` },
    date: new Date().toISOString(),
    loadAverageAtEnd: os.loadavg(),
    results,
  };
  const file = fileURLToPath(new URL('../../bench/gradients.results.json', import.meta.url));
  if (!args.includes('--no-write')) fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  for (const r of results) {
    console.log(
      `${r.model} (${r.threads} thread${r.threads > 1 ? 's' : ''}): build ${r.build.totalMs.toFixed(0)} ms (probe ${r.build.probeMs.toFixed(0)}, backward ${r.build.backwardMs.toFixed(0)}), session ${r.build.sessionMs.toFixed(0)} ms; ` +
        `forward ${r.forwardMsPerSample.toFixed(2)} ms/sample, forward+gradient ${r.gradientMsPerSample.toFixed(2)} ms/sample, ratio ${r.ratio.toFixed(2)}x (medians); ` +
        `fastest runs ${r.forwardMinMsPerSample.toFixed(2)} / ${r.gradientMinMsPerSample.toFixed(2)} ms/sample, ratio ${r.ratioMin.toFixed(2)}x`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) void main();
