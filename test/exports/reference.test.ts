// vitpath against PyTorch autograd on real torch.onnx.export models of every export style
// (fixtures/exports; scripts/export-fixtures.py wrote the models and, from the same weights in
// float64 PyTorch, the reference values). Independent of vitpath's own autodiff: the oracle here
// runs vitpath's generated gradient graphs in ONNX Runtime; the reference is torch.autograd.
//
// Per fixture and setting (token, DeiT head): logits and clean neuron rows of the reference images;
// dF/dR_l with every row held at its clean value (do-intervention); every candidate's product-JAS
// score at every layer of the layer-progressive search (20 left-Riemann steps) and the path it
// picks; the path's JAS in both forms and its completeness gap. Tolerances: logits 1e-4 absolute;
// rows, gradients and scores 1e-4 relative to the vector's largest entry; JAS 1e-4 relative; the
// completeness gap (a difference of two probabilities, so float32 cancellation) 1e-6 absolute. A layer whose reference margin
// (best vs runner-up) is below the reference's near-tie threshold is reported, not required to
// agree; the scripts' manifest lists such layers (none in the committed fixtures).
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openVitModel } from '../../src/services/vitModel.js';
import { OrtNeuronOracle } from '../../src/engine/neuronOracle.js';
import { searchPaths, scorePaths, type ImageContext } from '../../src/analysis/pathSearch.js';
import { softmax } from '../../src/analysis/stats.js';
import { EXPORTS, maxAbsDiff, readManifest, readReference, referenceInput, relErr, type RefSetting } from './fixtures.js';

const TOL = 1e-4;
const manifest = readManifest();
/** Measured errors per fixture and setting; written to $VITPATH_EXPORT_METRICS when set (the report table). */
const metrics: Record<string, Record<string, number | string | boolean>> = {};

afterAll(() => {
  const out = process.env.VITPATH_EXPORT_METRICS;
  if (out) fs.writeFileSync(out, JSON.stringify(metrics, null, 2) + '\n');
});

function settingName(s: RefSetting): string {
  return s.head === 'model' ? `token ${s.token}` : `token ${s.token}, head ${s.head}`;
}

describe('the committed export fixtures', () => {
  it('match their manifest (file, sha256, size) and stay small', () => {
    let total = 0;
    for (const [name, e] of Object.entries(manifest)) {
      const bytes = fs.readFileSync(path.join(EXPORTS, e.file));
      expect(createHash('sha256').update(bytes).digest('hex'), name).toBe(e.sha256);
      expect(bytes.length).toBe(e.bytes);
      expect(bytes.length).toBeLessThan(160 * 1024);
      expect(readReference(e).model).toBe(e.file);
      total += bytes.length + fs.statSync(path.join(EXPORTS, e.reference)).size;
    }
    expect(Object.keys(manifest).sort()).toEqual(['cls-meanpool', 'cls-meanpool-patches', 'deit-distilled', 'hf-vit', 'hf-vit-fp16', 'timm-vit-gelu20', 'timm-vit-gelu20-tanh']);
    expect(total).toBeLessThan(1.5 * 1024 * 1024);
  });
});

describe.each(Object.entries(manifest))('%s matches PyTorch autograd', (name, entry) => {
  const doc = readReference(entry);
  it.each(doc.references.map((s) => [settingName(s), s] as const))('%s', async (_label, setting) => {
    const { loaded, layout } = openVitModel(path.join(EXPORTS, entry.file), { head: setting.head === 'model' ? undefined : setting.head });
    const L = layout.blocks.length;
    const F = layout.facts.ffnWidth;
    const C = layout.facts.numClasses;
    const oracle = await OrtNeuronOracle.create(loaded, layout, {
      layers: Array.from({ length: L }, (_, l) => l),
      token: setting.token,
      objective: 'prob',
      provider: 'cpu',
      threads: 1,
    });
    try {
      const n = doc.images.length;
      const x = await referenceInput(doc, layout);
      const m: Record<string, number | string | boolean> = {};
      const refs = setting.images;

      // Logits and clean rows.
      const clean = await oracle.clean(x, n);
      let dLogit = 0;
      let dAct = 0;
      refs.forEach((r, i) => {
        dLogit = Math.max(dLogit, maxAbsDiff(clean.logits.subarray(i * C, (i + 1) * C), r.logits));
        for (let l = 0; l < L; l++) dAct = Math.max(dAct, relErr(clean.acts[l]!.subarray(i * F, (i + 1) * F), r.activations[l]!));
      });
      m.maxAbsLogitDiff = dLogit;
      m.maxRelActivationErr = dAct;
      expect(dLogit).toBeLessThan(TOL);
      expect(dAct).toBeLessThan(TOL);

      // Gradients with every row held at its clean value.
      const target = Int32Array.from(refs.map((r) => r.target));
      const res = await oracle.evaluate({ input: x, samples: n, scale: clean.acts.map(() => new Float32Array(n * F)), offset: clean.acts, target, grads: true });
      let dGrad = 0;
      refs.forEach((r, i) => {
        for (let l = 0; l < L; l++) dGrad = Math.max(dGrad, relErr(res.grads![l]!.subarray(i * F, (i + 1) * F), r.cleanGradients[l]!));
      });
      m.maxRelCleanGradErr = dGrad;
      expect(dGrad).toBeLessThan(TOL);

      // The layer-progressive search: every candidate's score and the picks.
      const probs = softmax(clean.logits, n, C);
      const ctxs: ImageContext[] = refs.map((r, i) => ({
        input: x.subarray(i * oracle.inputSize, (i + 1) * oracle.inputSize),
        acts: clean.acts.map((a) => a.subarray(i * F, (i + 1) * F)),
        target: r.target,
        fClean: probs[i * C + r.target]!,
      }));
      const found = await searchPaths(oracle, ctxs, { steps: doc.steps, jas: 'product', topK: F });
      let dScore = 0;
      let agree = 0;
      let compared = 0;
      const ties: string[] = [];
      refs.forEach((r, i) => {
        for (let l = 0; l < L; l++) {
          const ref = r.layers[l]!;
          const got = found[i]![l]!;
          if (got.neuron !== ref.neuron) {
            // Only a flagged near-tie may pick differently; later layers then follow another path.
            expect(ref.nearTie, `${name} image ${i} layer ${l}: vitpath picked ${got.neuron}, PyTorch ${ref.neuron} (margin ${ref.margin})`).toBe(true);
            ties.push(`image ${i} layer ${l} (margin ${ref.margin.toExponential(2)}: ${got.neuron} vs ${ref.neuron})`);
            break;
          }
          if (ref.nearTie) ties.push(`image ${i} layer ${l} (margin ${ref.margin.toExponential(2)}, same pick)`);
          const scores = new Float64Array(F);
          for (const t of got.top) scores[t.neuron] = t.score;
          dScore = Math.max(dScore, relErr(scores, ref.scores));
          compared++;
          agree++;
        }
      });
      m.maxRelScoreErr = dScore;
      m.pathLayersAgreeing = `${agree}/${refs.length * L}`;
      m.nearTies = ties.join('; ');
      expect(dScore).toBeLessThan(TOL);
      expect(compared).toBeGreaterThan(0);

      // JAS of the reference path (both forms) and the completeness gap.
      const scored = await scorePaths(oracle, ctxs, refs.map((r) => [r.path]), doc.steps);
      let dJas = 0;
      let dGap = 0;
      refs.forEach((r, i) => {
        const s = scored[i]![0]!;
        dJas = Math.max(dJas, Math.abs(s.jasProduct - r.jas.product) / Math.abs(r.jas.product), Math.abs(s.jasSum - r.jas.sum) / Math.abs(r.jas.sum));
        dGap = Math.max(dGap, Math.abs(s.completenessGap - r.jas.completenessGap));
      });
      m.maxRelJasErr = dJas;
      m.maxAbsGapErr = dGap;
      expect(dJas).toBeLessThan(TOL);
      // The gap is a difference of two float32 probabilities (each within ~1e-7 of exact): absolute.
      expect(dGap).toBeLessThan(1e-6);
      metrics[`${name} (${settingName(setting)})`] = m;
    } finally {
      await oracle.release();
    }
  });
});
