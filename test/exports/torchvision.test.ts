// Real exports: tiny torchvision VisionTransformer models written by torch.onnx.export
// (scripts/export-torchvision.py) at opsets 11, 14 and 17 with dynamic batch axes, one with
// stale batch-1 value_info, one with shape constants baked at batch 1, one vitpath cannot
// rewrite. Checked against PyTorch's logits (references.json), against the original model run one
// image at a time, against finite differences, and end to end through the CLI.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, sha256Hex, type LoadedModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { prepareLoaded, type PreparedModel } from '../../src/services/prepareModel.js';
import { fixBatch } from '../../src/onnx/rewrite/batch.js';
import { locateVit } from '../../src/vit/locate.js';
import { NeuronGradientEngine, clearGraphCache } from '../../src/engine/gradientEngine.js';
import { ForwardF, probeNeurons, worstError } from '../autodiff/e2e-helpers.js';
import { runOnce } from '../rewrite/data.js';
import { lcgBytes } from '../data/lcg.js';
import { BIN, ROOT, ensureBuilt } from '../helpers/cli.js';

const DIR = path.resolve(__dirname, '../../fixtures/exports/torchvision');

interface Ref {
  file: string;
  sha256: string;
  bytes: number;
  opset: number;
  style: 'dynamic' | 'stale' | 'baked' | 'flat';
  expectBatch: 'dynamic' | 'rewritten' | 'one-at-a-time';
  config: { image: number; channels: number; classes: number; layers: number; heads: number; hidden: number; mlp: number };
  inputs: { count: number; seeds: number[]; dims: number[]; scale: number };
  logits: number[][];
}
const refs: Ref[] = JSON.parse(fs.readFileSync(path.join(DIR, 'references.json'), 'utf8')).models;

/** Image i of a model: lcg_bytes(C*H*W, seeds[0] + i) / 256, as the export script makes them. */
function images(r: Ref, n: number): Float32Array {
  const size = r.inputs.dims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const bytes = lcgBytes(size, r.inputs.seeds[0]! + i);
    for (let k = 0; k < size; k++) out[i * size + k] = bytes[k]! * r.inputs.scale;
  }
  return out;
}

/** Logits of `model` for n images, in batches of `batch` (1 for a model fixed at batch 1). */
async function logitsOf(model: ModelProto, r: Ref, n: number, batch: number): Promise<Float32Array> {
  const size = r.inputs.dims.reduce((a, b) => a * b, 1);
  const x = images(r, n);
  const out = new Float32Array(n * r.config.classes);
  for (let s = 0; s < n; s += batch) {
    const k = Math.min(batch, n - s);
    const y = await runOnce(model, { input: { data: x.slice(s * size, (s + k) * size), dims: [k, ...r.inputs.dims] } }, ['logits']);
    expect(y.logits!.dims).toEqual([k, r.config.classes]);
    out.set(y.logits!.data as Float32Array, s * r.config.classes);
  }
  return out;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

const prepared = new Map<string, { file: LoadedModel; p: PreparedModel }>();
async function prepare(r: Ref) {
  let e = prepared.get(r.file);
  if (!e) {
    const file = loadModel(path.join(DIR, r.file));
    e = { file, p: await prepareLoaded(file, { label: r.file }) };
    prepared.set(r.file, e);
  }
  return e;
}

describe.each(refs)('$file (opset $opset, $style export)', (r) => {
  it('is the file the references were computed for, and small', () => {
    const bytes = fs.readFileSync(path.join(DIR, r.file));
    expect(sha256Hex(bytes)).toBe(r.sha256);
    expect(bytes.length).toBeLessThan(160 * 1024);
  });

  it(`prepares as "${r.expectBatch}" and says what it found`, async () => {
    const { p } = await prepare(r);
    const prep = p.preparation;
    expect(prep.batch).toBe(r.expectBatch);
    expect(prep.fold.refused).toEqual([]);
    if (r.style === 'dynamic') expect(prep.summary).toBe('dynamic');
    if (r.style === 'stale') {
      expect(prep.staleValueInfo).toBeGreaterThan(50);
      expect(prep.staleOutputs).toEqual(['logits']);
      expect(prep.summary).toMatch(/^dynamic \(\d+ stale value_info dropped; output dims corrected \(logits\)\)$/);
    }
    if (r.style === 'baked') {
      expect(prep.rewrites.length).toBeGreaterThanOrEqual(4 * r.config.layers);
      expect(prep.verifiedMaxDiff).toBeLessThan(1e-5);
      expect(prep.summary).toMatch(/^fixed at 1 in the export; rewritten/);
    }
    if (r.style === 'flat') {
      expect(prep.notice).toMatch(/running one image at a time/);
      expect(prep.conflicts[0]).toMatch(/graph output logits would be \[1,10B\]/);
    }
  });

  it("gives PyTorch's logits (within 1e-4)", async () => {
    const { p } = await prepare(r);
    const got = await logitsOf(p.loaded.proto, r, r.inputs.count, r.expectBatch === 'one-at-a-time' ? 1 : r.inputs.count);
    const diff = maxRelDiff(got, r.logits.flat());
    console.log(`${r.file}: logits vs PyTorch, max |diff| / max(1, |logit|) = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    // The weights are not degenerate: the classes differ.
    expect(Math.max(...r.logits[0]!) - Math.min(...r.logits[0]!)).toBeGreaterThan(0.5);
  });

  it('prepared at batch 1, 2 and 7 equals the original run one image at a time', async () => {
    const { file, p } = await prepare(r);
    const original = fixBatch(file.proto, 1);
    const want = await logitsOf(original, r, 7, 1);
    for (const n of r.expectBatch === 'one-at-a-time' ? [1] : [1, 2, 7]) {
      const got = await logitsOf(p.loaded.proto, r, 7, n);
      expect(maxRelDiff(got, want), `batch ${n}`).toBeLessThan(1e-5);
    }
  });

  it('gradients of the class probability w.r.t. the neuron rows agree with finite differences', async () => {
    const { p } = await prepare(r);
    const layout = locateVit(p.loaded.proto, { label: r.file });
    clearGraphCache();
    const engine = await NeuronGradientEngine.create(p.loaded, layout, { provider: 'cpu', threads: 1 });
    const B = 2;
    const x = images(r, B);
    const clean = await engine.clean(x, B);
    const ov = Object.fromEntries(engine.layers.map((l) => [l, clean.activations[l]!.map((v) => 0.7 * v)]));
    const targets = [3, 7];
    const res = await engine.run(x, B, targets, ov);
    const fwd = await ForwardF.create(p.loaded, layout, { layers: [...engine.layers] });
    const f = await fwd.eval(x, B, targets, ov);
    for (let b = 0; b < B; b++) expect(res.F[b]).toBeCloseTo(f[b]!, 6);
    const probes = probeNeurons([...engine.layers], engine.ffn, 6);
    const nd = await fwd.richardson(x, B, targets, ov, probes, 0.4);
    await fwd.release();
    await engine.release();
    let worst = 0;
    for (let b = 0; b < B; b++) worst = Math.max(worst, worstError(probes.map((q) => res.grads[q.layer]![b * engine.ffn + q.index]!), nd[b]!));
    console.log(`${r.file}: worst finite-difference error ${worst.toExponential(2)}`);
    for (let b = 0; b < B; b++) {
      const an = probes.map((q) => res.grads[q.layer]![b * engine.ffn + q.index]!);
      expect(worstError(an, nd[b]!), `sample ${b}: analytic ${an.slice(0, 3)} numeric ${nd[b]!.slice(0, 3)}`).toBeLessThan(1e-2);
    }
  });
});

// ---- end to end through the CLI: inspect, trace-path and probe-layers on every export ----

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** The built CLI, spawned without blocking the test worker. */
function vitpath(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', CI: '1', VITPATH_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the CLI on every torchvision export', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-tv-'));
  beforeAll(() => ensureBuilt());
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const images = path.join(ROOT, 'fixtures/images');
  const labels = path.join(images, 'labels.csv');

  it.each(refs)('inspect $file', async (r) => {
    const run = await vitpath(['inspect', path.join(DIR, r.file), '--json']); // JSON on stdout, the tables on stderr
    expect(run.code, run.stderr).toBe(0);
    const rep = JSON.parse(run.stdout);
    expect(rep.results.preparation.batch).toBe(r.expectBatch);
    expect(rep.model.layout.facts).toMatchObject({ numBlocks: r.config.layers, width: r.config.hidden, ffnWidth: r.config.mlp, heads: r.config.heads, numClasses: 10, pooling: 'cls' });
    expect(run.stderr).not.toMatch(/\[[EW]:onnxruntime/);
    const batchLine = run.stderr.split('\n').find((l) => /│ batch /.test(l)) ?? '';
    expect(batchLine).toContain({ dynamic: r.style === 'stale' ? 'dynamic (' : 'dynamic', rewritten: 'fixed at 1 in the export; rewritten', 'one-at-a-time': 'run one image at a time' }[r.expectBatch]);
  });

  it.each(refs)('trace-path and probe-layers on $file', async (r) => {
    const model = path.join(DIR, r.file);
    const out = path.join(tmp, r.file);
    const [tp, pl] = await Promise.all([
      vitpath(['trace-path', model, '--images', images, '--limit', '2', '--steps', '3', '--baselines', 'random', '--provider', 'cpu', '--out', `${out}-trace`, '--json']),
      vitpath(['probe-layers', model, '--images', images, '--labels', labels, '--folds', '2', '--steps', '3', '--provider', 'cpu', '--out', `${out}-probe`, '--json']),
    ]);
    expect(tp.code, tp.stderr).toBe(0);
    expect(pl.code, pl.stderr).toBe(0);
    for (const run of [tp, pl]) {
      expect(run.stderr).not.toMatch(/\[[EW]:onnxruntime/);
      expect(run.stderr.includes('running one image at a time')).toBe(r.expectBatch === 'one-at-a-time');
    }
    const trace = JSON.parse(tp.stdout);
    expect(trace.results.images).toHaveLength(2);
    for (const img of trace.results.images) expect(img.layers).toHaveLength(r.config.layers);
    const probe = JSON.parse(pl.stdout);
    expect(probe.results.layers).toHaveLength(r.config.layers);
  });
});
