// The `inspect` service: load a model, prepare it (prepareModel.ts), locate its ViT layout and
// return the report of `vitpath inspect --json`: the shared envelope (model path + sha256 + layout)
// with file facts and what the preparation found.
import * as z from 'zod';
import { loadModel } from '../onnx/model.js';
import { assertFloatModel, prepareVitModel } from './vitModel.js';
import { prepareLoaded } from './prepareModel.js';
import type { ViTLayout } from '../vit/types.js';
import { makeEnvelope, Stopwatch, type Envelope, type ModelInfo } from '../report/envelope.js';

export interface InspectOptions {
  /** Graph output holding the logits (default: the [batch, classes] output of the classifier head). */
  output?: string;
}

export const preparationSchema = z
  .object({
    batch: z.enum(['fixed', 'dynamic', 'rewritten', 'one-at-a-time']).describe('The batch as vitpath runs it: fixed by the input, dynamic, rewritten from constants baked at batch 1, or one image at a time.'),
    summary: z.string().describe('The batch in words, with what was corrected.'),
    staleValueInfo: z.int().nonnegative().describe('value_info entries dropped because they contradict the symbolic batch.'),
    staleOutputs: z.array(z.string()).describe('Graph outputs whose stored dims were corrected.'),
    rewrites: z.array(z.object({ node: z.string(), kind: z.enum(['reshape', 'concat-expand']), detail: z.string() })).describe('Shape constants baked at batch 1, rewritten.'),
    conflicts: z.array(z.string()).describe('What holds only at one batch size (before rewriting, or why it could not be).'),
    verifiedMaxDiff: z.number().nullable().describe('Largest |difference| of the rewritten model against one-image runs of the original; null when no check ran.'),
    fold: z.object({
      removed: z.int().nonnegative().describe('Nodes of shape subgraphs replaced by constants.'),
      constants: z.int().nonnegative(),
      batchShapes: z.int().nonnegative().describe('Batch-dependent shape values given as constants with 0/-1 or rebuilt from the batch size.'),
      refused: z.array(z.object({ node: z.string(), op: z.string(), reason: z.string() })).describe('Shape computations left computed, with the reason.'),
    }),
    notice: z.string().optional(),
  })
  .describe('What vitpath does to the model before building graphs (batch generalization, shape folding).');

export const inspectResultsSchema = z.object({
  sizeBytes: z.int().nonnegative().describe('Size of the .onnx file in bytes.'),
  externalFiles: z.array(z.string()).describe('External-data files read, relative to the model folder.'),
  preparation: preparationSchema,
});
export type InspectResults = z.infer<typeof inspectResultsSchema>;

/** The inspect report; `model.layout` is always set. */
export type InspectReport = Omit<Envelope<InspectResults>, 'model'> & { model: Omit<ModelInfo, 'layout'> & { layout: ViTLayout } };

/** Load `modelPath`, prepare it (batch, shape folding) and locate its layout. Errors: exit 2 (unreadable model), 3 (not a ViT), 1 (bad --output). */
export async function inspectModel(modelPath: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const clock = new Stopwatch();
  const file = await clock.time('load', () => loadModel(modelPath));
  assertFloatModel(file.proto, modelPath, 'inspect');
  const { loaded: prepped, preparation } = await clock.time('prepare', () => prepareLoaded(file, { label: modelPath }));
  const { loaded, layout } = await clock.time('locate', () => prepareVitModel(prepped, { output: opts.output }));
  const report = makeEnvelope(
    {
      command: 'inspect',
      options: { ...opts },
      // ViTLayout is an interface without an index signature; the schema checks it structurally.
      model: { path: modelPath, sha256: loaded.sha256, layout: layout as unknown as ModelInfo['layout'] },
      runtime: null,
      timings: clock.finish(),
      results: { sizeBytes: loaded.sizeBytes, externalFiles: loaded.externalFiles, preparation },
    },
    inspectResultsSchema,
  );
  // The envelope's schema is loose about the layout; hand back the locator's own object.
  return { ...report, model: { ...report.model, layout } };
}
