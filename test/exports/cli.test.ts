// End-to-end on every export-style fixture (fixtures/exports, real torch.onnx.export models): the
// built CLI runs inspect, trace-path (on the four reference images, default settings) and
// probe-layers (the 20 labelled images of the fixture's kind) as a user would, and trace-path's
// report agrees with the PyTorch reference stored beside the model: the target probability, the
// greedy path and its product JAS. Also the flags this style brings: --head on DeiT, --token cls
// on class-token + mean-pooled models, and the float16 notice (in the default trace-path run).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runVitpath as runCli, type CliRun } from '../helpers/cli.js';
import { EXPORTS, readManifest, readReference, type ManifestEntry, type RefSetting } from './fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-exports-cli-'));
const manifest = readManifest();

beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * The built CLI (spawned without blocking the test worker: test/helpers/cli.ts). One intra-op
 * thread in the calling thread: these models are tiny, and on a busy machine worker start-up costs
 * more than it saves.
 */
function runVitpath(args: string[]): Promise<CliRun> {
  const runArgs = ['trace-path', 'probe-layers'].includes(args[0]!) ? [...args, '--threads', '1', '--provider', 'cpu'] : args;
  return runCli(runArgs);
}

function ok(r: CliRun): CliRun {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const model = (e: ManifestEntry) => path.join(EXPORTS, e.file);
const refImages = (e: ManifestEntry) => path.join(EXPORTS, 'images', `${e.input.kind}-reference.csv`);

/** Run trace-path on the reference images and check its report against one reference setting. */
async function traceAgainst(name: string, e: ManifestEntry, setting: RefSetting, extra: string[]): Promise<Record<string, unknown>> {
  const out = path.join(tmp, `${name}-${extra.join('').replace(/[^a-z0-9]/gi, '') || 'default'}`);
  const r = ok(await runVitpath(['trace-path', model(e), '--images', refImages(e), '--out', out, '--json', ...extra]));
  // A float16 model says once (on stderr) that it is analysed in float32; others say nothing of it.
  expect(r.stderr.match(/float16 model: analysed in float32/g) ?? []).toHaveLength(e.input.dtype === 'float16' ? 1 : 0);
  const report = JSON.parse(r.stdout);
  const images = report.results.images as { target: number; pBase: number; layers: { neuron: number }[]; methods: { method: string; jasProduct: number }[] }[];
  expect(images).toHaveLength(setting.images.length);
  images.forEach((im, i) => {
    const ref = setting.images[i]!;
    expect(im.target).toBe(ref.target);
    expect(Math.abs(im.pBase - ref.probability)).toBeLessThan(1e-4);
    expect(im.layers.map((l) => l.neuron), `${name} image ${i}`).toEqual(ref.path);
    const jas = im.methods.find((m) => m.method === 'path')!.jasProduct;
    expect(Math.abs(jas - ref.jas.product) / Math.abs(ref.jas.product)).toBeLessThan(1e-4);
  });
  for (const f of ['report.json', 'paths.csv', 'images.csv', 'classes.csv', 'similarity.csv', 'progress.jsonl']) expect(fs.existsSync(path.join(out, f))).toBe(true);
  return report;
}

describe.each(Object.entries(manifest))('%s end to end', (name, e) => {
  const doc = readReference(e);

  it('inspect locates it (--json on stdout, the tables on stderr)', async () => {
    const run = ok(await runVitpath(['inspect', model(e), '--json']));
    const table = { stdout: run.stderr };
    expect(table.stdout).toMatch(/│ pooling\s+│/);
    const report = JSON.parse(run.stdout);
    const l = report.model.layout;
    expect(l.facts).toMatchObject({ numBlocks: 2, numClasses: 10, batch: 'dynamic', opset: e.opset });
    expect(l.blocks).toHaveLength(2);
    if (e.input.dtype === 'float16') {
      expect(l.precision).toEqual({ stored: 'float16', analysed: 'float32' });
      expect(table.stdout).toMatch(/│ precision\s+│ float16 \(analysed in float32/);
    } else expect(l.precision).toBeUndefined();
    if (name === 'deit-distilled') {
      expect(l.distillation).toMatchObject({ row: 1, averaged: 'logits' });
      expect(l.readout).toBe('avg');
      expect(table.stdout).toMatch(/│ readout\s+│ class head \+ distillation head \(row 1/);
    }
    if (name.startsWith('cls-meanpool')) {
      expect(l.facts.pooling).toBe('mean');
      expect(l.classToken).toMatchObject({ row: 0 });
      expect(l.meanRows).toEqual(name === 'cls-meanpool' ? { start: 0, end: 17 } : { start: 1, end: 17 });
      // inspect says both: the mean pooling and the joined class token.
      expect(table.stdout).toMatch(name === 'cls-meanpool' ? /mean over all 17 tokens, class token included; class token at row 0/ : /mean over tokens 1\.\.16 \(16 of 17\); class token at row 0/);
    }
    if (e.input.dynamicAxes !== 'batch') {
      expect(l.declaredInputDims).toEqual(['batch_size', 'num_channels', 'height', 'width']);
      expect(l.inputDims).toEqual(['batch_size', 1, 28, 28]);
    }
  });

  it('trace-path finds the PyTorch reference path', async () => {
    const dflt = doc.references[0]!;
    const report = await traceAgainst(name, e, dflt, []);
    expect((report.results as { settings: { token: unknown } }).settings.token).toBe(dflt.token);
  }, 120_000);

  it('probe-layers runs over its labelled images', async () => {
    const out = path.join(tmp, `${name}-probe`);
    const r = ok(await runVitpath(['probe-layers', model(e), '--images', path.join(EXPORTS, e.input.images), '--folds', '2', '--out', out, '--json', '--quiet']));
    const report = JSON.parse(r.stdout);
    expect(report.results.images.count).toBe(20);
    expect(report.results.layers).toHaveLength(2);
    // The lens at the last block reads the model's own head: its accuracy is the model's.
    const lens = report.results.layers[1].logitLens;
    const acc = doc.allLogits.filter((z, i) => z.indexOf(Math.max(...z)) === doc.allLabels[i]).length / doc.allLabels.length;
    expect(lens.accuracy).toBeCloseTo(acc, 10);
    for (const f of ['report.json', 'layers.csv', 'layers.svg']) expect(fs.existsSync(path.join(out, f))).toBe(true);
  }, 120_000);
});

describe('export-style flags', () => {
  const deit = manifest['deit-distilled']!;
  const deitDoc = readReference(deit);

  it.each([
    ['cls', 'cls'],
    ['dist', 1],
  ] as const)('DeiT --head %s traces that head (reference with token %s)', async (head, token) => {
    const setting = deitDoc.references.find((s) => s.head === head && s.token === token)!;
    const report = await traceAgainst('deit', deit, setting, ['--head', head, '--baselines', 'none']);
    expect((report.results as { settings: { head: string; token: unknown } }).settings).toMatchObject({ head, token });
  }, 120_000);

  it('--head on a model with one head is a usage error (1)', async () => {
    const r = await runVitpath(['trace-path', model(manifest['hf-vit']!), '--images', refImages(manifest['hf-vit']!), '--head', 'dist', '--out', path.join(tmp, 'nohead')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--head dist needs a model with a class head and a distillation head/);
  });

  it('probe-layers --head dist reads the distillation head', async () => {
    const r = ok(await runVitpath(['probe-layers', model(deit), '--images', path.join(EXPORTS, deit.input.images), '--folds', '2', '--head', 'dist', '--no-attribution', '--out', path.join(tmp, 'deit-probe-dist'), '--json', '--quiet']));
    const report = JSON.parse(r.stdout);
    expect(report.results.token).toBe(1);
    const z = deitDoc.headLogits.dist!;
    const acc = z.filter((v, i) => v.indexOf(Math.max(...v)) === deitDoc.allLabels[i]).length / z.length;
    expect(report.results.layers[1].logitLens.accuracy).toBeCloseTo(acc, 10);
  }, 120_000);

  it.each(['cls-meanpool', 'cls-meanpool-patches'])('%s --token cls traces the class-token row', async (name) => {
    const e = manifest[name]!;
    const setting = readReference(e).references.find((s) => s.token === 'cls')!;
    await traceAgainst(name, e, setting, ['--token', 'cls', '--baselines', 'none']);
  }, 120_000);
});
