// Head importance: the per-head gate Taylor score against central finite differences of the
// cross-entropy in ONNX Runtime (digits model, one image: score = |dL/dξ_h|), headScores by hand,
// the head policy, and --heads through the service (re-located head counts, removed.csv rows).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import { hostToTensor } from '../../src/onnx/tensor.js';
import { DataType } from '../../src/onnx/proto.js';
import { locateVit } from '../../src/vit/locate.js';
import { gateHeads, headTaylorScores } from '../../src/services/headImportance.js';
import { headScores } from '../../src/analysis/importance.js';
import { planHeads } from '../../src/prune/policy.js';
import { withCrossEntropy, LOSS_OUTPUT, TARGET_INPUT } from '../../src/train/trainingGraph.js';
import { createSession } from '../../src/runtime/session.js';
import { discoverImages } from '../../src/data/sources.js';
import { loadBatch } from '../../src/data/dataset.js';
import { inferPreprocess } from '../../src/data/preprocess.js';
import { runPrune } from '../../src/services/prune.js';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'fixtures/models/digits-vit.onnx');
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-heads-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('head scores', () => {
  it('headScores: mean over images of |sum of the head features gradients|', () => {
    const s = headScores([Float32Array.of(1, -3, 2, 2), Float32Array.of(-1, 0, 0.5, 0.5)], 2, 2);
    expect([...s]).toEqual([(2 + 1) / 2, (4 + 1) / 2]);
  });
  it('planHeads keeps the best heads, at least one', () => {
    const p = planHeads(new Map([[0, [0.3, 0.1, 0.2, 0.4]], [1, [1, 2]]]), 0.5);
    expect(p.keep.get(0)).toEqual([0, 3]);
    expect(p.keep.get(1)).toEqual([1]);
    expect(p.removed.map((r) => [r.block, r.index])).toEqual([[0, 1], [0, 2], [1, 0]]);
    expect(planHeads(new Map([[0, [1]]]), 0.9).keep.get(0)).toEqual([0]);
  });

  it('gate Taylor score equals |dL/dξ_h| by central differences (digits model, one image)', async () => {
    const proto = loadModel(MODEL).proto;
    const layout = locateVit(proto);
    const spec = inferPreprocess([1, 1, 28, 28]);
    const x = await loadBatch(discoverImages(path.join(ROOT, 'fixtures/digits')).items.slice(3, 4), spec);
    const label = 3;
    const scores = await headTaylorScores({ model: proto, layout, blocks: [1, 2], images: x, labels: [label], spec, runtime: { provider: 'cpu', threads: 1 } });
    const { model: gated, gates } = gateHeads(proto, layout, [1, 2]);
    const lossModel = withCrossEntropy(gated, layout.logits, 10);
    const loss = async (l: number, h: number, eps: number): Promise<number> => {
      const a = layout.blocks[l]!.attention!;
      const g = new Float32Array(a.dim).fill(1);
      for (let j = 0; j < a.headDim!; j++) g[h * a.headDim! + j] = 1 + eps;
      const m = structuredClone(lossModel);
      m.graph!.initializer = m.graph!.initializer.map((t) => (t.name === gates.get(l) ? hostToTensor(t.name, g, [a.dim], DataType.FLOAT) : t));
      const s = await createSession(encodeModel(m), { provider: 'cpu', threads: 1 });
      const t = new Float32Array(10);
      t[label] = 1;
      const out = await s.run({ [layout.input]: { data: x, dims: [1, 1, 28, 28] }, [TARGET_INPUT]: { data: t, dims: [1, 10] } }, [LOSS_OUTPUT]);
      await s.release();
      return (out[LOSS_OUTPUT]!.data as Float32Array)[0]!;
    };
    const eps = 1e-2;
    for (const l of [1, 2]) {
      for (let h = 0; h < 4; h++) {
        const fd = (await loss(l, h, eps)) - (await loss(l, h, -eps));
        expect(scores.get(l)![h]!).toBeCloseTo(Math.abs(fd / (2 * eps)), 3);
      }
    }
  }, 120_000);

  it('--heads through the service: kept heads re-located, head rows in removed.csv', async () => {
    const out = path.join(tmp, 'svc');
    const { report } = await runPrune(MODEL, { images: path.join(ROOT, 'fixtures/digits'), criterion: 'magnitude', ffn: 0, heads: 0.5, scoreImages: 10, provider: 'cpu', threads: 1, latency: false, out });
    const r = report.results;
    expect(r.blocks.map((b) => [b.headsBefore, b.headsAfter])).toEqual([[4, 2], [4, 2], [4, 2], [4, 2]]);
    expect(r.output.layout.blocks.map((b) => (b as { attention?: { heads: number } }).attention?.heads)).toEqual([2, 2, 2, 2]);
    const rows = fs.readFileSync(path.join(out, 'removed.csv'), 'utf8').trim().split(/\r?\n/).filter((l) => l.includes(',head,'));
    expect(rows.length).toBe(8);
    expect(r.parameters.before - r.parameters.after).toBe(4 * 2 * 16 * (3 * 64 + 3 + 64));
  }, 120_000);
});
