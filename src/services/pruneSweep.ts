// `vitpath prune --sweep`: accuracy against the fraction of FFN neurons removed, for several
// importance criteria, without writing models (the paper's pruning experiment on the user's model).
// Each criterion is scored once on the scoring images; each (criterion, fraction) model is cut in
// memory and evaluated against the original on the evaluation images (the original runs once).
import * as z from 'zod';
import type { ModelProto } from '../onnx/proto.js';
import { encodeModel } from '../onnx/model.js';
import { describeClassifier } from '../onnx/classifier.js';
import { createSession } from '../runtime/session.js';
import { iterateBatches } from '../data/dataset.js';
import { describeSource } from '../data/sources.js';
import { compareClassifiers, evaluateClassifier, sessionClassifier, type Classifier, type ClassifierBatch } from './evaluate.js';
import { checkPruneOptions, openPruneInputs, scoreForPrune, COMMAND, type PruneOptions } from './prune.js';
import { CommandRun, runCommand, type RunHooks } from './commandRun.js';
import { CRITERIA, type Criterion } from '../analysis/importance.js';
import { planFfn } from '../prune/policy.js';
import { applyPlan } from '../prune/apply.js';
import { runtimeInfo, type Envelope } from '../report/envelope.js';
import type { OutDir } from '../report/outdir.js';
import { writeChart, chartFiles, type ChartSpec } from '../report/charts.js';
import { registerReportSchema } from '../report/schema.js';
import { usageError } from '../errors.js';

export const SWEEP_FILES = { report: 'report.json', curves: 'curves.csv' } as const;
export const SWEEP_CHART = 'curves';

const num = z.number();
const int = z.int().nonnegative();
export const sweepResultsSchema = z.object({
  sweep: z.literal(true),
  criteria: z.array(z.enum(CRITERIA)),
  fractions: z.array(num),
  policy: z.object({ scope: z.enum(['per-block', 'global']), roundTo: int, exclude: z.array(int), keepPathNeurons: z.boolean() }),
  scoring: z.object({ images: int, split: z.string(), steps: int, rule: z.string(), seed: z.number().int(), source: z.record(z.string(), z.json()).nullable(), ms: num }),
  evaluation: z.object({ images: int, labelled: int, source: z.record(z.string(), z.json()) }),
  original: z.object({ top1: num.nullable(), low: num.nullable(), high: num.nullable() }),
  points: z.array(
    z.object({
      criterion: z.enum(CRITERIA),
      fraction: num.describe('Fraction asked for.'),
      removedFraction: num.describe('Fraction removed after rounding the widths.'),
      ffnAfter: z.array(int),
      top1: num.nullable(),
      low: num.nullable(),
      high: num.nullable(),
      agreement: num,
      meanKl: num,
      accuracyDifference: num.nullable(),
    }),
  ),
});
export type SweepResults = z.infer<typeof sweepResultsSchema>;
registerReportSchema(`${COMMAND} --sweep`, sweepResultsSchema);

export interface SweepOptions extends PruneOptions {
  fractions: number[];
  criteria: Criterion[];
}

/** A classifier returning stored scores for batches it has seen (the original, evaluated once). */
function memo(inner: Classifier): Classifier {
  const seen = new Map<ClassifierBatch, Promise<Float32Array | Float64Array>>();
  return {
    logits(b) {
      let r = seen.get(b);
      if (!r) seen.set(b, (r = inner.logits(b)));
      return r;
    },
  };
}

export function curvesSpec(r: SweepResults, title: string): ChartSpec {
  const values = r.points.map((p) => ({ criterion: p.criterion, removed: p.removedFraction, top1: p.top1 ?? p.agreement }));
  const y = r.original.top1 !== null ? 'top-1 accuracy' : 'agreement with the original';
  const layers: unknown[] = [
    {
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'removed', type: 'quantitative', title: 'fraction of FFN neurons removed', scale: { domain: [0, 1] } },
        y: { field: 'top1', type: 'quantitative', title: y },
        color: { field: 'criterion', type: 'nominal', title: 'criterion' },
      },
    },
  ];
  if (r.original.top1 !== null) layers.push({ data: { values: [{ top1: r.original.top1 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: '#7F7F7F' }, encoding: { y: { field: 'top1', type: 'quantitative' } } });
  return { title, width: 420, height: 280, data: { values }, layer: layers } as unknown as ChartSpec;
}

export async function runPruneSweep(modelPath: string, options: SweepOptions, hooks: RunHooks = {}): Promise<{ report: Envelope<SweepResults>; outDir: OutDir }> {
  return runCommand(COMMAND, hooks, (run) => {
    let said = false;
    const progress = (e: { phase: string; done: number; total: number }) => {
      if (e.phase === 'score') run.progress(e.done, e.total);
      else if (!said) {
        said = true;
        run.notice(`${COMMAND} --sweep: evaluating ${e.total} pruned models`);
      }
    };
    return sweep(modelPath, { ...options, notice: options.notice ?? ((l) => run.notice(l)), onProgress: options.onProgress ?? progress }, run);
  });
}

async function sweep(modelPath: string, o: SweepOptions, run: CommandRun): Promise<{ report: Envelope<SweepResults>; outDir: OutDir }> {
  if (o.fractions.length === 0) throw usageError('--sweep needs at least one fraction, e.g. --sweep 0.1,0.3,0.5');
  for (const f of o.fractions) if (!(f >= 0 && f < 1)) throw usageError(`--sweep fractions are from 0 up to (not including) 1 (got ${f})`);
  if (o.finetune) throw usageError('--sweep evaluates pruned models without fine-tuning; drop --finetune');
  if (o.save) throw usageError('--sweep writes no model; drop --save');
  if (o.dropBlocks || o.heads) throw usageError('--sweep varies the FFN fraction only; drop --drop-blocks and --heads');
  const criteria = [...new Set(o.criteria)];
  const c = checkPruneOptions({ ...o, criterion: criteria[0] });
  for (const k of criteria) checkPruneOptions({ ...o, criterion: k });
  const clock = run.clock;
  const inp = await openPruneInputs(modelPath, o, c, clock);
  const out = run.claim({ out: o.out, force: o.force, files: [...Object.values(SWEEP_FILES), ...chartFiles(SWEEP_CHART)] });
  const scored = await scoreForPrune(inp, criteria, o, c, clock);
  const rt = { provider: o.provider, deviceId: o.deviceId, threads: o.threads, notice: o.notice };
  const batches: ClassifierBatch[] = [];
  for await (const b of iterateBatches(inp.evalSource.items, inp.spec, c.batch)) batches.push({ data: b.data, dims: b.dims, labels: b.labels });
  const original: ModelProto = inp.stored.proto;
  const io = describeClassifier(original, { output: o.output ?? inp.storedLayout.logits, label: modelPath });
  const refSession = await createSession(encodeModel(original), rt);
  const points: SweepResults['points'] = [];
  let provider = refSession.provider;
  try {
    const ref = memo(sessionClassifier(refSession, io, { batchSize: c.batch, label: modelPath }));
    const base = await clock.time('evaluate', () => evaluateClassifier(ref, batches));
    const total = criteria.length * o.fractions.length;
    o.onProgress?.({ phase: 'evaluate', done: 0, total });
    for (const k of criteria) {
      for (const f of o.fractions) {
        const d = planFfn(scored.scores.get(k)!.scores, { fraction: f, scope: c.scope, roundTo: c.roundTo, exclude: c.exclude, protect: scored.protect });
        const pruned = applyPlan(original, inp.storedLayout, { ffn: d.keep });
        const s = await createSession(encodeModel(pruned), rt);
        provider = s.provider;
        try {
          const r = await clock.time('evaluate', () => compareClassifiers(sessionClassifier(s, io, { batchSize: c.batch, label: `${modelPath} (${k} ${f})` }), ref, batches));
          const a = r.model.accuracy;
          points.push({
            criterion: k,
            fraction: f,
            removedFraction: (d.before - d.after) / d.before,
            ffnAfter: [...d.keep.values()].map((x) => x.length),
            top1: a?.top1 ?? null,
            low: a?.top1Interval.low ?? null,
            high: a?.top1Interval.high ?? null,
            agreement: r.comparison.agreement,
            meanKl: r.comparison.meanKl,
            accuracyDifference: r.comparison.paired?.difference ?? null,
          });
        } finally {
          await s.release();
        }
        o.onProgress?.({ phase: 'evaluate', done: points.length, total });
      }
    }
    const labelled = inp.evalSource.items.filter((i) => i.label !== undefined).length;
    const results: SweepResults = {
      sweep: true,
      criteria,
      fractions: o.fractions,
      policy: { scope: c.scope, roundTo: c.roundTo, exclude: c.exclude, keepPathNeurons: c.keepPathNeurons },
      scoring: { images: scored.images, split: inp.split, steps: c.steps, rule: c.rule, seed: c.seed, source: scored.images ? (describeSource({ ...inp.source, items: inp.scoreItems }) as Record<string, never>) : null, ms: scored.ms },
      evaluation: { images: inp.evalSource.items.length, labelled, source: describeSource(inp.evalSource) as Record<string, never> },
      original: { top1: base.accuracy?.top1 ?? null, low: base.accuracy?.top1Interval.low ?? null, high: base.accuracy?.top1Interval.high ?? null },
      points,
    };
    const report = run.envelope(
      {
        options: o.reportOptions ?? { ...c, criteria, fractions: o.fractions, images: o.images, evalImages: o.evalImages },
        model: { path: modelPath, sha256: inp.stored.sha256, layout: inp.storedLayout as never },
        runtime: runtimeInfo({ provider: scored.provider ?? provider }, { provider: o.provider, deviceId: o.deviceId, threads: o.threads }, 'thread'),
        results,
      },
      sweepResultsSchema,
    );
    await run.writeReports(report, async (out) => {
    out.writeCsv(
      SWEEP_FILES.curves,
      points.map((p) => ({ criterion: p.criterion, fraction: p.fraction, removed_fraction: p.removedFraction, top1: p.top1, ci_low: p.low, ci_high: p.high, agreement: p.agreement, mean_kl: p.meanKl, accuracy_difference: p.accuracyDifference })),
      ['criterion', 'fraction', 'removed_fraction', 'top1', 'ci_low', 'ci_high', 'agreement', 'mean_kl', 'accuracy_difference'],
    );
    await writeChart(out, SWEEP_CHART, curvesSpec(results, `Pruning FFN neurons: ${modelPath.split('/').pop()}`));
    });
    return { report, outDir: out };
  } finally {
    await refSession.release();
  }
}
