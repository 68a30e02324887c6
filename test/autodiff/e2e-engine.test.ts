// NeuronGradientEngine plumbing: graphs are built once per (model sha256, configuration) and then
// come from memory or the cache folder with identical results; stale cache files are rebuilt;
// bad calls fail with typed errors.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { CleanNeuronEngine, NeuronGradientEngine, clearGraphCache, targetProbabilities } from '../../src/engine/gradientEngine.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { FIXTURE_DIR } from '../rewrite/layouts.js';
import { randomImages } from '../rewrite/data.js';

const file = path.join(FIXTURE_DIR, 'erf-ln-matmul.onnx');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-grad-cache-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function runOnce(engine: NeuronGradientEngine) {
  const B = 2;
  const images = randomImages(B, engine.imageSize, 4);
  const clean = await engine.clean(images, B);
  const r = await engine.run(images, B, [3, 7], clean.activations);
  return { clean, r };
}

describe('gradient engine caching', () => {
  const loaded = loadModel(file);
  const layout = locateVit(loaded.proto);
  const opts = { threads: 1, provider: 'cpu' as const };

  it('builds once per configuration and reuses the graph from memory', async () => {
    clearGraphCache();
    const a = await NeuronGradientEngine.create(loaded, layout, opts);
    const b = await NeuronGradientEngine.create(loaded, layout, opts);
    const c = await NeuronGradientEngine.create(loaded, layout, { ...opts, layers: [1] });
    expect(a.timings.source).toBe('built');
    expect(a.timings.graphMs).toBeGreaterThan(0);
    expect(b.timings.source).toBe('memory');
    expect(c.timings.source).toBe('built');
    const ra = await runOnce(a);
    const rb = await runOnce(b);
    expect(Array.from(rb.r.grads[1]!)).toEqual(Array.from(ra.r.grads[1]!));
    // F equals the softmax probability of the target computed from the logits.
    const p = targetProbabilities(ra.r.logits, 10, [3, 7]);
    expect(ra.r.F[0]).toBeCloseTo(p[0]!, 6);
    expect(ra.r.F[1]).toBeCloseTo(p[1]!, 6);
    // An engine on block 1 only: at clean overrides the forward is the same and the graph downstream
    // of block 1 is the same (no later interventions), so its gradient matches the all-block engine's.
    const rc = await runOnce(c);
    expect(Object.keys(rc.r.grads)).toEqual(['1']);
    const g = ra.r.grads[1]!;
    const scale = Math.max(...g.map(Math.abs));
    for (let i = 0; i < g.length; i++) expect(Math.abs(rc.r.grads[1]![i]! - g[i]!)).toBeLessThan(1e-5 * scale);
    for (const x of [a, b, c]) await x.release();
  });

  it('writes the graph to the cache folder and reads it back in a fresh process state', async () => {
    clearGraphCache();
    const a = await NeuronGradientEngine.create(loaded, layout, { ...opts, cacheDir: tmp });
    expect(a.timings.source).toBe('built');
    const files = fs.readdirSync(tmp).filter((f) => f.startsWith('vitpath-gradient-'));
    expect(files.some((f) => f.endsWith('.onnx'))).toBe(true);
    expect(files.some((f) => f.endsWith('.json'))).toBe(true);
    const ra = await runOnce(a);
    clearGraphCache();
    const b = await NeuronGradientEngine.create(loaded, layout, { ...opts, cacheDir: tmp });
    expect(b.timings.source).toBe('disk');
    const rb = await runOnce(b);
    for (const l of [0, 1]) expect(Array.from(rb.r.grads[l]!)).toEqual(Array.from(ra.r.grads[l]!));
    expect(Array.from(rb.clean.logits)).toEqual(Array.from(ra.clean.logits));
    // A truncated graph file is detected (byte count in the meta file) and rebuilt.
    const onnx = path.join(tmp, files.find((f) => f.endsWith('.onnx'))!);
    fs.writeFileSync(onnx, fs.readFileSync(onnx).subarray(0, 100));
    clearGraphCache();
    const c = await NeuronGradientEngine.create(loaded, layout, { ...opts, cacheDir: tmp });
    expect(c.timings.source).toBe('built');
    const rc = await runOnce(c);
    expect(Array.from(rc.r.grads[0]!)).toEqual(Array.from(ra.r.grads[0]!));
    for (const x of [a, b, c]) await x.release();
  });

  it('forward() gives run() without gradients; the clean-only engine gives the same clean pass', async () => {
    const e = await NeuronGradientEngine.create(loaded, layout, opts);
    const c = await CleanNeuronEngine.create(loaded, layout, opts);
    const B = 3;
    const images = randomImages(B, e.imageSize, 9);
    const a = await e.clean(images, B);
    const b = await c.clean(images, B);
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits));
    for (const l of e.layers) expect(Array.from(b.activations[l]!)).toEqual(Array.from(a.activations[l]!));
    const ov = Object.fromEntries(e.layers.map((l) => [l, a.activations[l]!.map((x) => 0.5 * x)]));
    const r = await e.run(images, B, [0, 5, 9], ov);
    const f = await e.forward(images, B, [0, 5, 9], ov);
    expect(Object.keys(f)).not.toContain('grads');
    for (let i = 0; i < B; i++) expect(f.F[i]).toBeCloseTo(r.F[i]!, 6);
    for (let i = 0; i < r.logits.length; i++) expect(f.logits[i]).toBeCloseTo(r.logits[i]!, 5);
    await e.release();
    await c.release();
  });

  it('rejects bad calls with typed errors', async () => {
    const e = await NeuronGradientEngine.create(loaded, layout, opts);
    const img = randomImages(2, e.imageSize, 1);
    const ov = { 0: new Float32Array(2 * e.ffn), 1: new Float32Array(2 * e.ffn) };
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        expect(err).toBeInstanceOf(VitpathError);
        return (err as VitpathError).exitCode;
      }
      return 0;
    };
    expect(await code(e.run(img.subarray(1), 2, [0, 1], ov))).toBe(ExitCode.BAD_INPUT);
    expect(await code(e.run(img, 2, [0, 10], ov))).toBe(ExitCode.USAGE);
    expect(await code(e.run(img, 2, [0], ov))).toBe(ExitCode.USAGE);
    expect(await code(e.run(img, 2, [0, 1], { 0: ov[0] }))).toBe(ExitCode.USAGE);
    expect(await code(NeuronGradientEngine.create(loaded, layout, { ...opts, layers: [2] }))).toBe(ExitCode.USAGE);
    expect(await code(NeuronGradientEngine.create(loaded, layout, { ...opts, token: 17 }))).toBe(ExitCode.USAGE);
    await e.release();
  });
});
