// The results schema of `vitpath prune` (report.json `results`, printed by `--schema`), as zod.
// Inside the versioned envelope (report/envelope.ts): adding fields keeps schemaVersion.
import * as z from 'zod';
import { registerReportSchema } from '../report/schema.js';
import { evalResultsSchema } from './evalSchema.js';
import { layoutSchema } from '../report/envelope.js';

export const COMMAND = 'prune';

const int = z.int().nonnegative();
const num = z.number();

export const pruneResultsSchema = z.object({
  criterion: z.enum(['path', 'ig', 'taylor', 'activation', 'magnitude', 'random']),
  policy: z.object({
    ffn: num.describe('Fraction of FFN neurons asked to be removed.'),
    scope: z.enum(['per-block', 'global']),
    roundTo: int,
    exclude: z.array(int),
    keepPathNeurons: z.boolean(),
    dropBlocks: int,
    heads: num.describe('Fraction of attention heads asked to be removed per block.'),
  }),
  scoring: z.object({
    images: int.describe('Scoring images this run passed through the model (0 for magnitude and random, and for paths read with --from-trace).'),
    source: z.record(z.string(), z.json()).nullable(),
    split: z.string().describe('How scoring and evaluation images were chosen (disjoint).'),
    steps: int,
    rule: z.string(),
    seed: z.number().int(),
    fromTrace: z.string().nullable().describe('trace-path run the paths were read from, if any.'),
    protectedNeurons: int.describe('Neurons on a class preferred path (never removed with --keep-path-neurons).'),
    ms: num,
  }),
  blocks: z.array(
    z.object({
      block: int,
      ffnBefore: int,
      ffnAfter: int.describe('0 for a dropped block.'),
      protected: int,
      dropped: z.boolean().describe('Removed whole (--drop-blocks): the residual stream passes through.'),
      headsBefore: int.nullable(),
      headsAfter: int.nullable().describe('Attention heads kept (--heads; null when the attention was not located).'),
      blockInfluence: num.nullable().describe('Mean 1 - cos(block input, block output) on the scoring images (with --drop-blocks).'),
    }),
  ),
  ffn: z.object({ before: int, after: int, removedFraction: num }),
  parameters: z.object({ before: int, after: int }),
  ffnMacsPerImage: z.object({ before: int, after: int }).describe('Multiply-accumulates of the FFN linears per image (tokens x (in x F + F x out) per block).'),
  output: z.object({ path: z.string(), sha256: z.string(), bytes: int, layout: layoutSchema }),
  finetune: z
    .object({
      steps: int,
      temperature: num,
      lr: num,
      batch: int,
      loss: z.array(z.object({ step: int, kl: num })).describe('KL(teacher || student) of the softened logits (times T^2), mean over the batch, per step.'),
      ms: num,
    })
    .nullable(),
  evaluation: evalResultsSchema.describe('The eval service on the evaluation images: model = the pruned model, reference = the original.'),
});

export type PruneResults = z.infer<typeof pruneResultsSchema>;

registerReportSchema(COMMAND, pruneResultsSchema);
