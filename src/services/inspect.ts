// The `inspect` service: load a model, locate its ViT layout and return the report of
// `vitpath inspect --json`: the shared envelope (model path + sha256 + layout) with file facts.
import * as z from 'zod';
import { loadModel } from '../onnx/model.js';
import { prepareVitModel } from './vitModel.js';
import type { ViTLayout } from '../vit/types.js';
import { makeEnvelope, Stopwatch, type Envelope, type ModelInfo } from '../report/envelope.js';

export interface InspectOptions {
  /** Graph output holding the logits (default: the [batch, classes] output of the classifier head). */
  output?: string;
}

export const inspectResultsSchema = z.object({
  sizeBytes: z.int().nonnegative().describe('Size of the .onnx file in bytes.'),
  externalFiles: z.array(z.string()).describe('External-data files read, relative to the model folder.'),
});
export type InspectResults = z.infer<typeof inspectResultsSchema>;

/** The inspect report; `model.layout` is always set. */
export type InspectReport = Omit<Envelope<InspectResults>, 'model'> & { model: Omit<ModelInfo, 'layout'> & { layout: ViTLayout } };

/** Load `modelPath` and locate its layout. Errors: exit 2 (unreadable model), 3 (not a ViT), 1 (bad --output). */
export function inspectModel(modelPath: string, opts: InspectOptions = {}): InspectReport {
  const clock = new Stopwatch();
  const t0 = performance.now();
  const loaded = loadModel(modelPath);
  clock.add('load', performance.now() - t0);
  const t1 = performance.now();
  const { layout } = prepareVitModel(loaded, { output: opts.output });
  clock.add('locate', performance.now() - t1);
  const report = makeEnvelope(
    {
      command: 'inspect',
      options: { ...opts },
      // ViTLayout is an interface without an index signature; the schema checks it structurally.
      model: { path: modelPath, sha256: loaded.sha256, layout: layout as unknown as ModelInfo['layout'] },
      runtime: null,
      timings: clock.finish(),
      results: { sizeBytes: loaded.sizeBytes, externalFiles: loaded.externalFiles },
    },
    inspectResultsSchema,
  );
  // The envelope's schema is loose about the layout; hand back the locator's own object.
  return { ...report, model: { ...report.model, layout } };
}
