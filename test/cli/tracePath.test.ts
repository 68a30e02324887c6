// End-to-end: the built CLI (`node bin/vitpath.js trace-path ...`) as a user runs it: exit codes
// and messages for each kind of bad call, --json on stdout alone, the documented CSV headers,
// refusing to overwrite, --resume after a run cut short, --shard partitions, and a short run on
// every fixture model (each export style).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath, type CliRun } from '../helpers/cli.js';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { saveModel } from '../../src/onnx/model.js';
import { parseCsv } from '../../src/report/csv.js';

const MODEL = 'fixtures/models/erf-ln-matmul.onnx';
// The 8 top-level fixture PNGs and their labels, copied so that other material added under
// fixtures/images (e.g. class subfolders) does not change what these tests see.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-trace-cli-'));
const IMG_DIR = path.join(tmp, 'images');
fs.mkdirSync(IMG_DIR);
for (const f of fs.readdirSync(path.join(ROOT, 'fixtures/images'))) {
  if (/\.(png|csv)$/.test(f)) fs.copyFileSync(path.join(ROOT, 'fixtures/images', f), path.join(IMG_DIR, f));
}
const IMAGES = ['--images', IMG_DIR, '--labels', path.join(IMG_DIR, 'labels.csv')];
const FAST = ['--steps', '4', '--threads', '1', '--provider', 'cpu'];


function vitpath(...args: string[]): Promise<CliRun> {
  return runVitpath(args);
}

function expectError(r: CliRun, code: number, ...mentions: (string | RegExp)[]): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  expect(r.stdout).toBe('');
  for (const m of mentions) expect(r.stderr).toMatch(m);
}

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
function withoutTimings(report: Record<string, unknown>): unknown {
  const { timings: _t, options, results, ...rest } = report as { timings: unknown; options: Record<string, unknown>; results: Record<string, unknown> };
  const { imagesPerSecond: _s, ...res } = results;
  return { ...rest, options: { ...options, out: undefined, resume: undefined, force: undefined }, results: res };
}
function header(file: string): string {
  return fs.readFileSync(file, 'utf8').split(/\r?\n/)[0]!;
}

beforeAll(async () => {
  ensureBuilt();
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe('vitpath trace-path: bad calls', () => {
  it('no model: usage error (1) that points to the demo', async () => {
    expectError(await vitpath('trace-path'), 1, /needs a model/, /vitpath demo/);
  });

  it('no --images: usage error (1) naming the option', async () => {
    expectError(await vitpath('trace-path', MODEL), 1, /--images/);
  });

  it('a model that is not a ViT: unsupported (3), naming the file', async () => {
    const b = new GraphBuilder(17);
    const w = b.initializer('w', Float32Array.from({ length: 784 * 10 }, (_, i) => (i % 7) / 70), [784, 10]);
    b.op('MatMul', [b.op('Flatten', ['input'], { axis: 1 }), w], {}, 'logits');
    const m = makeModel({
      graph: makeGraph('mlp', b.nodes, [tensorValueInfo('input', DataType.FLOAT, ['N', 1, 28, 28])], [tensorValueInfo('logits', DataType.FLOAT, ['N', 10])], b.initializers),
      opset: 17,
    });
    const file = path.join(tmp, 'mlp.onnx');
    saveModel(m, file);
    expectError(await vitpath('trace-path', file, ...IMAGES, ...FAST, '--out', path.join(tmp, 'mlp-out')), 3, file);
  });

  it('bad labels: a label outside the classes and an unreadable label are bad input (2), naming the labels file', async () => {
    const out = path.join(tmp, 'labels-out');
    const big = path.join(tmp, 'labels-big.csv');
    fs.writeFileSync(big, 'file,label\ngray-28x28-ring.png,42\n');
    expectError(await vitpath('trace-path', MODEL, '--images', IMG_DIR, '--labels', big, ...FAST, '--out', out), 2, big, /0\.\.9/);
    const word = path.join(tmp, 'labels-word.csv');
    fs.writeFileSync(word, 'file,label\ngray-28x28-ring.png,zero\n');
    expectError(await vitpath('trace-path', MODEL, '--images', IMG_DIR, '--labels', word, ...FAST, '--out', out), 2, word);
    const missing = path.join(tmp, 'no-such-labels.csv');
    expectError(await vitpath('trace-path', MODEL, '--images', IMG_DIR, '--labels', missing, ...FAST, '--out', out), 2, missing);
  });

  it('--target outside the classes, and malformed --target/--shard/--baselines: usage error (1)', async () => {
    const out = path.join(tmp, 'target-out');
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--target', '10', '--out', out), 1, /--target 10/, /0\.\.9/);
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--target', 'best', '--out', out), 1, /--target/);
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--shard', '2/2', '--out', out), 1, /--shard/);
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--baselines', 'activation,oracle', '--out', out), 1, /oracle/);
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--resume'), 1, /--resume needs --out/);
    // Nothing was written for any of these.
    expect(fs.existsSync(path.join(out, 'report.json'))).toBe(false);
  });
});

describe('vitpath trace-path: outputs', () => {
  let json: Record<string, any>;
  const out = () => path.join(tmp, 'main');
  beforeAll(async () => {
    const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '3', '--batch', '2', '--out', out(), '--json');
    if (r.code !== 0) throw new Error(`trace-path failed (${r.code}): ${r.stderr}`);
    json = JSON.parse(r.stdout); // stdout is the JSON report and nothing else
    expect(r.stderr).toMatch(/trace-path: 3 images/); // the summary moved to stderr
  }, 60_000);

  it('--json prints the report alone, equal to report.json', async () => {
    expect(json.command).toBe('trace-path');
    expect(json.runtime.used).toBe('cpu');
    expect(json).toEqual(readJson(path.join(out(), 'report.json')));
    expect(json.results.images).toHaveLength(3);
    expect(json.results.summary.map((s: { method: string }) => s.method)).toEqual(['path', 'activation', 'influence', 'ig-layer', 'random']);
  });

  it('writes the documented CSV files with exactly the documented headers and one row per observation', async () => {
    expect(header(path.join(out(), 'paths.csv'))).toBe('image,method,layer,neuron,activation,score');
    expect(header(path.join(out(), 'images.csv'))).toBe(
      'image,label,pred,target,p_base,f_base,method,jas_product,jas_sum,completeness_gap,remove_ratio,enhance_ratio,remove_pred,enhance_pred',
    );
    expect(header(path.join(out(), 'classes.csv'))).toBe('class,layer,neuron,count,share,preferred,class_images,path_shared');
    expect(header(path.join(out(), 'similarity.csv'))).toBe('class_a,class_b,cosine');
    const rows = (f: string) => parseCsv(fs.readFileSync(path.join(out(), f), 'utf8'));
    const paths = rows('paths.csv');
    const images = rows('images.csv');
    // paths.csv: images x methods x layers (+ header); images.csv: images x methods (+ header).
    expect(paths.length - 1).toBe(3 * 5 * 2);
    expect(images.length - 1).toBe(3 * 5);
    // similarity.csv: every ordered pair of the target classes that have images (3 images here), by class index.
    const targets = [...new Set<number>(json.results.images.map((im: { target: number }) => im.target))].sort((a, b) => a - b);
    expect(json.results.classes.similarityClasses).toEqual(targets);
    const sim = rows('similarity.csv').slice(1);
    expect(sim).toHaveLength(targets.length ** 2);
    expect(new Set(sim.map((r) => Number(r[0])))).toEqual(new Set(targets));
    // classes.csv counts add up to images x layers; CSV values match the JSON.
    expect(rows('classes.csv').slice(1).reduce((a, r) => a + Number(r[3]), 0)).toBe(3 * 2);
    const first = json.results.images[0];
    const pathRow = paths.find((r) => r[0] === first.id && r[1] === 'path' && r[2] === '1')!;
    expect(Number(pathRow[3])).toBe(first.layers[1].neuron);
    expect(Number(pathRow[5])).toBe(first.layers[1].score);
    const imgRow = images.find((r) => r[0] === first.id && r[6] === 'activation')!;
    const act = first.methods.find((m: { method: string }) => m.method === 'activation');
    expect(Number(imgRow[7])).toBe(act.jasProduct);
    expect(Number(imgRow[10])).toBe(act.removeRatio);
    // Baseline rows carry no search score.
    expect(paths.find((r) => r[1] === 'random')![5]).toBe('');
  });

  it('refuses to overwrite an earlier run without --force (1), and overwrites with it', async () => {
    const before = fs.readFileSync(path.join(out(), 'report.json'), 'utf8');
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '1', '--out', out()), 1, /already exists/, /--force/);
    expect(fs.readFileSync(path.join(out(), 'report.json'), 'utf8')).toBe(before);
    const forced = path.join(tmp, 'forced');
    fs.cpSync(out(), forced, { recursive: true });
    const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '1', '--out', forced, '--force', '--quiet');
    expect(r.code).toBe(0);
    expect(readJson(path.join(forced, 'report.json')).results.images).toHaveLength(1);
  });

  it('--resume continues a run cut short from its progress log (kept lines are not recomputed)', async () => {
    const cut = path.join(tmp, 'cut');
    fs.mkdirSync(cut);
    // A run killed after two images: the header, two finished images, half a line; no reports yet.
    const lines = fs.readFileSync(path.join(out(), 'progress.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1 + 3);
    const kept = JSON.parse(lines[2]!);
    kept.pBase = 0.123456; // a marker: a resumed run must take this image from the log
    fs.writeFileSync(path.join(cut, 'progress.jsonl'), [lines[0], lines[1], JSON.stringify(kept)].join('\n') + '\n' + lines[3]!.slice(0, 40));
    const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '3', '--batch', '2', '--out', cut, '--resume', '--quiet');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const resumed = readJson(path.join(cut, 'report.json'));
    expect(resumed.results.images[1].pBase).toBe(0.123456);
    resumed.results.images[1].pBase = json.results.images[1].pBase;
    expect(withoutTimings(resumed)).toEqual(withoutTimings(json));
    // The log now holds every image once, each line whole.
    const after = fs.readFileSync(path.join(cut, 'progress.jsonl'), 'utf8').split('\n').filter(Boolean);
    const ids = after.map((l) => JSON.parse(l)).filter((l) => l.kind === 'image').map((l) => l.id);
    expect([...ids].sort()).toEqual(json.results.images.map((i: { id: string }) => i.id).sort());
    // Resuming on other images (same count, same name lengths) is refused (1) rather than mixing two runs.
    const other = path.join(tmp, 'other-images');
    fs.cpSync(IMG_DIR, other, { recursive: true });
    fs.renameSync(path.join(other, 'gray-16x16-noise.png'), path.join(other, 'gray-16x16-moise.png'));
    fs.writeFileSync(path.join(other, 'labels.csv'), fs.readFileSync(path.join(IMG_DIR, 'labels.csv'), 'utf8').replace('noise.png', 'moise.png'));
    expectError(
      await vitpath('trace-path', MODEL, '--images', other, '--labels', path.join(other, 'labels.csv'), ...FAST, '--limit', '3', '--batch', '2', '--out', cut, '--resume'),
      1,
      /different options or inputs/,
    );
    // Resuming with other options is refused (1) rather than mixing two runs.
    expectError(await vitpath('trace-path', MODEL, ...IMAGES, '--steps', '5', '--threads', '1', '--provider', 'cpu', '--limit', '3', '--out', cut, '--resume'), 1, /different options/);
  }, 60_000);

  it('--shard K/N partitions the images: disjoint shards that cover the run, same results as unsharded', async () => {
    type Img = { id: string; layers: { neuron: number }[]; methods: { method: string; path: number[] }[] };
    const shards: Img[][] = [];
    for (const k of [0, 1, 2]) {
      const o = path.join(tmp, `shard${k}`);
      const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--baselines', 'random', '--shard', `${k}/3`, '--out', o, '--quiet');
      expect(r.code).toBe(0);
      shards.push(readJson(path.join(o, 'report.json')).results.images as Img[]);
    }
    const all = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--baselines', 'random', '--out', path.join(tmp, 'unsharded'), '--json', '--quiet');
    const full = JSON.parse(all.stdout).results.images as Img[];
    expect(full).toHaveLength(8);
    shards.forEach((s, k) => expect(s.map((i) => i.id)).toEqual(full.filter((_, i) => i % 3 === k).map((i) => i.id)));
    const ids = shards.flat().map((i) => i.id);
    expect(new Set(ids).size).toBe(8);
    for (const im of shards.flat()) {
      const f = full.find((x) => x.id === im.id)!;
      expect(im.layers).toEqual(f.layers);
      // The seeded random baseline too: merging a job array's shards reproduces the unsharded run.
      expect(im.methods.map((m) => m.path)).toEqual(f.methods.map((m) => m.path));
    }
    // Different images still get different random paths.
    expect(new Set(full.map((im) => im.methods[1]!.path.join(','))).size).toBeGreaterThan(4);
  }, 60_000);

  it('--target label on images without labels is bad input (2)', async () => {
    expectError(await vitpath('trace-path', MODEL, '--images', IMG_DIR, ...FAST, '--target', 'label', '--out', path.join(tmp, 'nolabels')), 2, /--target label/, /--labels/);
  });
});

describe('vitpath trace-path on every fixture model (each export style)', () => {
  const manifest = readJson(path.join(ROOT, 'fixtures/models/manifest.json')) as Record<string, { config: { depth: number; ffn: number; head: string } }>;
  for (const [file, { config }] of Object.entries(manifest)) {
    it(file, async () => {
      const o = path.join(tmp, `fx-${file}`);
      const r = await vitpath('trace-path', `fixtures/models/${file}`, ...IMAGES, ...FAST, '--limit', '2', '--baselines', 'activation,random', '--out', o, '--json', '--quiet');
      if (r.code !== 0) throw new Error(`${file}: exit ${r.code}: ${r.stderr}`);
      const res = JSON.parse(r.stdout).results;
      expect(res.settings.token).toBe(config.head === 'mean' ? 'mean' : 'cls');
      expect(res.images).toHaveLength(2);
      for (const im of res.images) {
        expect(im.layers).toHaveLength(config.depth);
        for (const c of im.layers) {
          expect(c.neuron).toBeGreaterThanOrEqual(0);
          expect(c.neuron).toBeLessThan(config.ffn);
          expect(c.top[0].neuron).toBe(c.neuron);
          expect(Number.isFinite(c.score)).toBe(true);
        }
        for (const m of im.methods) expect(Number.isFinite(m.jasProduct) && Number.isFinite(m.removeRatio)).toBe(true);
      }
    }, 60_000);
  }
});

describe.skipIf(!fs.existsSync(path.join(ROOT, 'fixtures/models/digits-vit.onnx')) || !fs.existsSync(path.join(ROOT, 'fixtures/digits')))(
  'vitpath trace-path on the project-trained digits model',
  () => {
    it('runs on its class-folder digits (labels from the folders), one neuron per block', async () => {
      const o = path.join(tmp, 'digits');
      const r = await vitpath('trace-path', 'fixtures/models/digits-vit.onnx', '--images', 'fixtures/digits', ...FAST, '--shard', '0/10', '--out', o, '--json', '--quiet');
      if (r.code !== 0) throw new Error(`digits-vit: exit ${r.code}: ${r.stderr}`);
      const res = JSON.parse(r.stdout).results;
      expect(res.images.length).toBeGreaterThan(0);
      for (const im of res.images) {
        expect(im.label).not.toBeNull();
        expect(im.target).toBe(im.label);
        expect(im.layers.length).toBe(res.settings.layers.length);
      }
    }, 60_000);
  },
);
