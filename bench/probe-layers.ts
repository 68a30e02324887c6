// Benchmark: `probe-layers` on vit-mnist over the first N MNIST test images (default 1,000), with
// and without the integrated-gradient attribution (per-block and shared gradient graphs); records the time per phase (build, forward =
// exposed pass + logit lens + batched ablations, attribution, probes) and every per-layer curve.
// Run: npm run build:tools && node dist-tools/bench/probe-layers.js [--limit 1000] [--threads 1] [--batch 32] [--provider cpu]
// Results: bench/probe-layers.results.json; the summary is copied by hand into BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeLayers } from '../src/services/probeLayers.js';
import { layersChartSvg } from '../src/services/probeFiles.js';
import type { ProbeLayersReport } from '../src/services/probeSchema.js';
import type { ProviderChoice } from '../src/runtime/session.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes('dist-tools') ? '../..' : '..');
const MODEL = path.resolve(root, '../shared/models/vit-mnist.onnx');
const MNIST = path.resolve(root, '../shared/data/mnist');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

interface Case {
  attribution: boolean;
  /** Gradient graphs of the attribution: one per block or one for all blocks. */
  igEngines: 'per-layer' | 'shared' | null;
  /** Wall-clock seconds (inflated when other processes share the CPUs: see loadAverage). */
  seconds: number;
  /** CPU seconds of this process (user + system), less sensitive to other load. */
  cpuSeconds: number;
  /** 1-minute load average before and after the case. */
  loadAverage: [number, number];
  imagesPerSecond: number;
  phasesMs: Record<string, number>;
  inference: { runs: number; ms: number } | undefined;
  provider: string;
}

async function runCase(attribution: boolean, igEngines: 'per-layer' | 'shared', limit: number, threads: number, batch: number, provider: ProviderChoice): Promise<{ c: Case; report: ProbeLayersReport }> {
  const load0 = os.loadavg()[0]!;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const report = await probeLayers(MODEL, { images: MNIST, limit, attribution, igEngines, batch, runtime: { provider, threads, notice: () => {} } });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    report,
    c: {
      attribution,
      igEngines: attribution ? igEngines : null,
      seconds: Math.round(seconds * 100) / 100,
      cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
      loadAverage: [Math.round(load0 * 100) / 100, Math.round(os.loadavg()[0]! * 100) / 100],
      imagesPerSecond: Math.round((limit / seconds) * 10) / 10,
      phasesMs: Object.fromEntries(Object.entries(report.timings.phases).map(([k, v]) => [k, Math.round(v)])),
      inference: report.timings.inference,
      provider: report.runtime?.used ?? '?',
    },
  };
}

async function main(): Promise<void> {
  if (!fs.existsSync(MODEL) || !fs.existsSync(MNIST)) {
    process.stderr.write(`probe-layers bench: needs ${MODEL} and ${MNIST} (../shared); skipped\n`);
    return;
  }
  const limit = Number(arg('limit', '1000'));
  const threads = Number(arg('threads', '1'));
  const batch = Number(arg('batch', '32'));
  const provider = arg('provider', 'cpu') as ProviderChoice;
  const without = await runCase(false, 'per-layer', limit, threads, batch, provider);
  const withIg = await runCase(true, 'per-layer', limit, threads, batch, provider);
  const shared = await runCase(true, 'shared', limit, threads, batch, provider);
  const r = withIg.report.results;
  const curves = r.layers.map((x) => ({
    layer: x.layer,
    lensAccuracy: x.logitLens.accuracy,
    lensTrueProb: x.logitLens.meanTrueProb,
    lensKl: x.logitLens.meanKl,
    probeAccuracy: x.probe.accuracy,
    probeStd: x.probe.std,
    neuronProbeAccuracy: x.neuronProbe.accuracy,
    neuronProbeStd: x.neuronProbe.std,
    redundancyAttention: x.redundancy.attention,
    redundancyMlp: x.redundancy.mlp,
    redundancyBlock: x.redundancy.block,
    ablateAttentionAccuracyDrop: x.ablation.attention.accuracyDrop,
    ablateAttentionTrueProbDrop: x.ablation.attention.trueProbDrop,
    ablateMlpAccuracyDrop: x.ablation.mlp.accuracyDrop,
    ablateMlpTrueProbDrop: x.ablation.mlp.trueProbDrop,
    meanActivation: x.neurons.meanActivation,
    deadFraction: x.neurons.deadFraction,
    igMass: x.neurons.igMass,
    igSum: x.neurons.igSum,
    completenessGap: x.neurons.completenessGap,
  }));
  const result = {
    benchmark: 'probe-layers',
    date: new Date().toISOString().slice(0, 10),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', node: process.version },
    settings: { model: 'vit-mnist.onnx', images: `first ${limit} MNIST test images`, threads, batch, folds: r.probeSettings.folds, igSteps: r.neuronSettings.igSteps },
    cases: [without.c, withIg.c, shared.c],
    model: r.model,
    chance: r.chance,
    curves,
  };
  const out = path.join(root, 'bench/probe-layers.results.json');
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(root, 'bench/probe-layers.results.svg'), await layersChartSvg(r, `probe-layers: vit-mnist, ${limit} MNIST test images`));
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(String((e as Error)?.stack ?? e) + '\n');
  process.exitCode = 1;
});
