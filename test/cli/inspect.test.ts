// End-to-end: the built CLI (`node bin/vitpath.js inspect ...`) on every fixture, on vit-mnist, with
// --json and --output, and on each kind of bad input (one line naming the file, documented exit code).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath, type CliRun } from '../helpers/cli.js';
import { fromBinary, toBinary, ModelProtoSchema, DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { encodeModel } from '../../src/onnx/model.js';
import { expectLayoutMatches, type GroundTruth } from '../vit/expect-layout.js';

const FIXTURES = path.join(ROOT, 'fixtures/models');
const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, GroundTruth>;
const VIT_MNIST = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');


function vitpath(...args: string[]): Promise<CliRun> {
  return runVitpath(args);
}

/** A failed run: the exit code, nothing on stdout, and one stderr line naming the file, no stack trace. */
function expectOneLineError(r: CliRun, code: number, file: string): string {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^vitpath: error: /);
  expect(lines[0]).toContain(file);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:|internal error/);
  return lines[0]!;
}

let tmp: string;
beforeAll(async () => {
  // `npm test` builds first (pretest); build here only when the compiled CLI is missing.
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-inspect-'));
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe('vitpath inspect on the fixtures', () => {
  for (const [file, truth] of Object.entries(manifest)) {
    it(`${file}: table and --json`, async () => {
      const model = path.join('fixtures/models', file);
      const table = await vitpath('inspect', model);
      expect(table.stderr).toBe('');
      expect(table.code).toBe(0);
      const c = truth.config;
      const row = (fact: string, value: string | number) => expect(table.stdout).toMatch(new RegExp(`│ ${fact}\\s+│ ${String(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s`));
      row('blocks', c.depth);
      row('width', c.width);
      row('FFN width', c.ffn);
      row('heads', c.heads);
      row('classes', c.classes);
      row('tokens', truth.tokens);
      row('batch', c.batch === 'dynamic' ? 'dynamic' : `fixed ${c.batch}`);
      row('opset / IR', `${c.opset} /`);
      row('pooling', c.head === 'cls' ? 'class token' : `mean over all ${truth.tokens} tokens; no class token`);
      for (let i = 0; i < c.depth; i++) expect(table.stdout).toMatch(new RegExp(`│ ${i}\\s+│ ${c.linear}.*│ ${truth.tensors[`block.${i}.neuron`]} \\[`));

      const json = await vitpath('inspect', model, '--json', '--quiet');
      expect(json.code).toBe(0);
      expect(json.stderr).toBe('');
      const report = JSON.parse(json.stdout);
      expect(report).toMatchObject({ schemaVersion: 1, tool: { name: 'vitpath' }, command: 'inspect', model: { path: model }, runtime: null });
      expect(report.model.sha256).toBe(createHash('sha256').update(fs.readFileSync(path.join(ROOT, model))).digest('hex'));
      expect(report.results.sizeBytes).toBe(fs.statSync(path.join(ROOT, model)).size);
      expectLayoutMatches(report.model.layout, truth);
    });
  }

  it('--json without --quiet keeps stdout pure JSON and puts the tables on stderr', async () => {
    const r = await vitpath('inspect', 'fixtures/models/erf-ln-matmul.onnx', '--json');
    expect(r.code).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
    expect(r.stderr).toContain('│ blocks');
  });

  it('--output picks the logits among several outputs, and names the outputs when wrong', async () => {
    const ok = await vitpath('inspect', 'fixtures/models/fixed-batch1-attn.onnx', '--output', 'logits', '--json', '-q');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).model.layout).toMatchObject({ logits: 'logits', extraOutputs: ['attention'] });
    const wrong = await vitpath('inspect', 'fixtures/models/fixed-batch1-attn.onnx', '--output', 'probs');
    expect(expectOneLineError(wrong, 1, 'fixed-batch1-attn.onnx')).toContain('its outputs are: attention, logits');
    const notHead = await vitpath('inspect', 'fixtures/models/fixed-batch1-attn.onnx', '--output', 'attention');
    expectOneLineError(notHead, 3, 'fixed-batch1-attn.onnx');
  });

  it('shows heads x head dim per block, and --layers lists the named linears with the generator\'s weights', async () => {
    const file = 'decomposed-gemm-tanh.onnx';
    const { config: c, names } = manifest[file]! as GroundTruth & { names: Record<string, string> };
    const r = await vitpath('inspect', path.join('fixtures/models', file), '--layers');
    expect(r.code).toBe(0);
    for (let i = 0; i < c.depth; i++) expect(r.stdout).toMatch(new RegExp(`│ ${i}\\s+│ .*│ q/k/v ${c.width}->${c.width}, proj ${c.width}->${c.width}\\s+│ ${c.heads} x ${c.width / c.heads}\\s+│`));
    const rows = r.stdout.slice(r.stdout.indexOf('│ layer ')).split('\n').slice(1).filter((l) => l.startsWith('│ ')).map((l) => l.split('│').map((x) => x.trim()).filter(Boolean));
    expect(rows.map((x) => x[0])).toEqual(['patch_embed', ...Array.from({ length: c.depth }, (_, i) => ['q', 'k', 'v', 'proj', 'fc1', 'fc2'].map((k) => `blocks.${i}.${k.startsWith('fc') ? 'mlp' : 'attn'}.${k}`)).flat(), 'head']);
    for (const [name, kind, , weight] of rows) {
      const m = /^blocks\.(\d+)\.(?:attn|mlp)\.(\w+)$/.exec(name!);
      if (m) expect(weight).toBe(names[`block.${m[1]}.${m[2]!.startsWith('fc') ? m[2] : `attn.${m[2]}`}.weight`]);
      if (m) expect(kind).toBe('gemm (transB)');
    }
  });

  it('--help teaches with examples', async () => {
    const r = await vitpath('inspect', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('vitpath inspect model.onnx --json');
    expect(r.stdout).toContain('--output <name>');
  });
});

describe.skipIf(!fs.existsSync(VIT_MNIST))('vitpath inspect on vit-mnist', () => {
  it('reports the trained model', async () => {
    const r = await vitpath('inspect', VIT_MNIST);
    expect(r.code).toBe(0);
    for (const [fact, value] of [
      ['blocks', '4'],
      ['width', '64'],
      ['FFN width', '128'],
      ['heads', '4'],
      ['tokens', '17'],
      ['classes', '10'],
      ['image', '28x28, 1 channel'],
      ['pooling', 'class token'],
      ['batch', 'dynamic'],
      ['opset / IR', '18 / 8'],
      ['producer', 'pytorch'],
    ]) expect(r.stdout).toMatch(new RegExp(`│ ${fact}\\s+│ ${value}`));
    const j = JSON.parse((await vitpath('inspect', VIT_MNIST, '--json', '-q')).stdout);
    expect(j.model.layout.blocks).toHaveLength(4);
    expect(j.model.layout.blocks.map((b: { activation: { kind: string } }) => b.activation.kind)).toEqual(['gelu-erf', 'gelu-erf', 'gelu-erf', 'gelu-erf']);
    // Every tensor name the layout gives exists in the model.
    const g = fromBinary(ModelProtoSchema, fs.readFileSync(VIT_MNIST)).graph!;
    const tensors = new Set([...g.node.flatMap((n) => [...n.input, ...n.output]), ...g.initializer.map((t) => t.name)]);
    for (const b of j.model.layout.blocks) {
      for (const t of [b.input, b.output, b.attnResidual, b.attnBranch, b.attnSoftmax, b.mlpBranch, b.neuron, b.fc1.weight, b.fc2.weight]) expect(tensors).toContain(t);
    }
  });
});

describe('vitpath inspect on bad input', () => {
  it('a path that does not exist: exit 2', async () => {
    expect(expectOneLineError(await vitpath('inspect', 'no/such/model.onnx'), 2, 'no/such/model.onnx')).toContain('no such file');
  });

  it('a file that is not ONNX: exit 2', async () => {
    const png = 'fixtures/images/rgb-32x32-disc.png';
    expectOneLineError(await vitpath('inspect', png), 2, png);
    const text = path.join(tmp, 'notes.onnx');
    fs.writeFileSync(text, 'this is not a model\n'.repeat(20));
    expectOneLineError(await vitpath('inspect', text), 2, text);
  });

  it('a truncated ONNX file: exit 2 wherever it is cut', async () => {
    const bytes = fs.readFileSync(path.join(FIXTURES, 'erf-ln-matmul.onnx'));
    for (const frac of [0.01, 0.5, 0.99]) {
      const cut = path.join(tmp, `cut-${frac}.onnx`);
      fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * frac)));
      expect(expectOneLineError(await vitpath('inspect', cut), 2, cut)).toMatch(/truncated/);
    }
  });

  it('an ONNX model that is not a transformer: exit 3 naming what was looked for and found', async () => {
    const b = new GraphBuilder(17);
    const w = b.initializer('w', Float32Array.from({ length: 64 * 10 }, (_, i) => (i % 7) / 70), [64, 10]);
    b.op('Softmax', [b.op('MatMul', [b.op('Relu', ['x']), w])], { axis: -1 }, 'probs');
    const m = makeModel({ graph: makeGraph('mlp', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['N', 64])], [tensorValueInfo('probs', DataType.FLOAT, ['N', 10])], b.initializers), opset: 17 });
    const file = path.join(tmp, 'mlp.onnx');
    fs.writeFileSync(file, encodeModel(m));
    const line = expectOneLineError(await vitpath('inspect', file), 3, file);
    expect(line).toContain('no Vision Transformer found');
    expect(line).toContain('Looked for transformer blocks');
    expect(line).toContain('found 3 nodes, 1 linear layer(s) (64->10), 1 Softmax, 0 Conv');
  });

  it('an external-data location that escapes the model folder: exit 2', async () => {
    const dir = path.join(tmp, 'models');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'gelu20-external.data'), path.join(tmp, 'stolen.data'));
    const proto = fromBinary(ModelProtoSchema, fs.readFileSync(path.join(FIXTURES, 'gelu20-external.onnx')));
    let edited = 0;
    for (const t of proto.graph!.initializer) {
      for (const e of t.externalData) if (e.key === 'location') {
        e.value = '../stolen.data';
        edited++;
      }
    }
    expect(edited).toBeGreaterThan(0);
    const file = path.join(dir, 'escape.onnx');
    fs.writeFileSync(file, toBinary(ModelProtoSchema, proto));
    expect(expectOneLineError(await vitpath('inspect', file), 2, file)).toContain('escapes the model folder');
  });
});
