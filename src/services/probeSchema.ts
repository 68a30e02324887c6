// The results schema of the probe-layers report (inside the shared envelope), as zod, exported
// as JSON Schema by `vitpath probe-layers --schema`.
import * as z from 'zod';
import type { Envelope } from '../report/envelope.js';
import { registerReportSchema } from '../report/schema.js';

export const COMMAND = 'probe-layers';

const num = z.number();
export const probeSchema = z.object({
  accuracy: num.describe('Mean held-out accuracy over the folds.'),
  std: num.describe('Population std of the fold accuracies.'),
  folds: z.array(num),
  converged: z.boolean().describe('Whether L-BFGS met its tolerance in every fold.'),
});
const ablationSchema = z.object({
  accuracy: num,
  meanTrueProb: num,
  accuracyDrop: num.describe('Baseline accuracy minus accuracy with the branch removed.'),
  trueProbDrop: num.describe('Baseline mean true-class probability minus the ablated one.'),
});
export const layerResultSchema = z.object({
  layer: z.int().nonnegative(),
  logitLens: z.object({
    accuracy: num,
    meanTrueProb: num,
    meanKl: num.describe('Mean KL(final output distribution || lens distribution), nats.'),
  }),
  probe: probeSchema.describe('Linear probe on the block output row (the token, or the patch mean).'),
  neuronProbe: probeSchema.describe("Linear probe on the block's FFN neuron row."),
  redundancy: z.object({
    attention: num.describe('Mean over images and tokens of 1 - cos(block input, input + attention).'),
    mlp: num.describe('Mean of 1 - cos(after attention, block output).'),
    block: num.describe('Mean of 1 - cos(block input, block output): the Block Influence.'),
  }),
  ablation: z.object({ attention: ablationSchema, mlp: ablationSchema }),
  neurons: z.object({
    meanActivation: num.describe('Mean over images and neurons of the neuron row.'),
    deadFraction: num.describe('Fraction of neurons with |activation| <= deadThreshold on every image.'),
    igMass: num.nullable().describe('Mean over images of sum_j |IG_j| for the true-class probability; null without attribution.'),
    igSum: num.nullable().describe('Mean over images of sum_j IG_j (completeness: about P(row) - P(row = 0)).'),
    completenessGap: num.nullable().describe('Mean over images of |sum_j IG_j - (P(row) - P(row = 0))|.'),
  }),
});
export const probeLayersResultsSchema = z.object({
  images: z.object({
    count: z.int().nonnegative(),
    source: z.record(z.string(), z.unknown()),
    preprocess: z.record(z.string(), z.unknown()),
    skipped: z
      .array(z.object({ id: z.string(), reason: z.string() }))
      .optional()
      .describe('With --skip-bad-images: the images that could not be read or decoded, and why (absent without the flag).'),
  }),
  token: z.union([z.literal('cls'), z.literal('mean'), z.int()]),
  lensInput: z.enum(['tokens', 'row']).describe("'tokens': the tail reads the whole residual stream as the model's head does; 'row': the chosen row broadcast to every token."),
  classes: z.int().positive(),
  chance: z.object({ uniform: num, majority: num.describe('Accuracy of always predicting the most frequent label.') }),
  model: z.object({ accuracy: num, meanTrueProb: num }),
  ablationBaseline: z.object({ accuracy: num, meanTrueProb: num }).describe('The gated model with every branch on (the reference for the drops).'),
  probeSettings: z.object({ folds: z.int(), l2: num, seed: z.int(), standardized: z.literal(true) }),
  neuronSettings: z.object({ deadThreshold: num, igSteps: z.int().nullable(), objective: z.literal('prob') }),
  layers: z.array(layerResultSchema),
});
export type LayerResult = z.infer<typeof layerResultSchema>;
export type ProbeLayersResults = z.infer<typeof probeLayersResultsSchema>;
export type ProbeSummary = z.infer<typeof probeSchema>;
export type ProbeLayersReport = Envelope<ProbeLayersResults>;

registerReportSchema(COMMAND, probeLayersResultsSchema);
