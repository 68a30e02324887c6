// The results schema of `vitpath eval` (report.json `results`, printed by `--schema`), as zod, and
// its types. Inside the versioned envelope (report/envelope.ts): adding fields keeps schemaVersion.
import * as z from 'zod';
import { registerReportSchema } from '../report/schema.js';

export const COMMAND = 'eval';

const num = z.number();
const int = z.int().nonnegative();

export const intervalSchema = z.object({ low: num, high: num });

export const timingSchema = z.object({
  runs: int,
  medianMs: num,
  p90Ms: num.describe('90th percentile, linear interpolation between order statistics (numpy default).'),
  meanMs: num,
  minMs: num,
  maxMs: num,
});

export const accuracySchema = z.object({
  labelled: int.describe('Images with a label (the accuracy denominators).'),
  correct: int,
  top1: num,
  top1Interval: intervalSchema.describe('Wilson score 95% interval of top1.'),
  top5: z.object({ k: z.literal(5), correct: int, accuracy: num }).nullable().describe('null when the model has 5 classes or fewer.'),
  meanTrueProb: num.describe('Mean softmax probability of the true class.'),
  perClass: z.array(z.object({ class: int, count: int, correct: int, accuracy: num.nullable() })).describe('One entry per class; accuracy null for a class without images.'),
});

export const factsSchema = z.object({
  parameters: int.describe('Elements of the weight initializers (float and 4/8/16-bit integer types, at least 2 elements each, and int32 quantized biases; scalars, quantization scales and zero points, other int32/int64 tensors and Constant nodes are not counted).'),
  parametersByType: z.record(z.string(), int),
  precision: z.string().describe("float32 | float16 | bfloat16 | float64 (the weights' float type), <int type>-qdq (QuantizeLinear/DequantizeLinear), int8-qoperator (integer kernels)."),
  ops: z.record(z.string(), int).describe('Node count per op type (other domains as domain.Op), subgraphs included.'),
  nodes: int,
  opset: int,
  irVersion: int,
  producer: z.string(),
  bytes: z.object({ model: int, externalData: int, total: int }).describe('Bytes on disk: the .onnx file, its external data files, both.'),
  externalFiles: z.array(z.string()),
  input: z.object({ name: z.string(), dims: z.array(z.union([z.number(), z.string()])), type: z.string() }),
  output: z.object({ name: z.string(), type: z.string(), scores: z.enum(['logits', 'probabilities', 'log-probabilities']) }),
  batch: z.union([z.literal('dynamic'), z.int().positive()]).describe("The model's declared batch size."),
});

export const latencySchema = z.object({
  warmup: int.describe('Untimed runs before each measurement.'),
  repeat: int.describe('Timed runs per measurement.'),
  batch1: timingSchema.nullable().describe('Milliseconds per image at batch 1; null when the model has a fixed batch size other than 1.'),
  batched: timingSchema.extend({ batch: z.int().positive(), imagesPerSecond: num.describe('batch / median seconds per run.') }).describe('Milliseconds per run of `batch` images.'),
});

export const modelEvalSchema = z.object({
  path: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  facts: factsSchema,
  accuracy: accuracySchema.nullable().describe('null when no image has a label.'),
  latency: latencySchema.nullable().describe('null with --no-latency.'),
  preparation: z
    .object({
      batch: z.enum(['fixed', 'dynamic', 'rewritten', 'one-at-a-time']).describe('What vitpath found about the batch (as `vitpath inspect` reports it).'),
      summary: z.string(),
      ran: z
        .enum(['file', 'prepared'])
        .describe("What ONNX Runtime ran: the file as it is, or vitpath's prepared copy (stale stored shapes dropped, shape constants baked at batch 1 rewritten and checked against one-image runs, or fixed at batch 1 and run one image at a time), because the file as it is fails above batch 1."),
    })
    .nullable()
    .optional()
    .describe('How the model was prepared for batches; null when vitpath could not analyse it (the file then runs as it is).'),
});

export const comparisonSchema = z.object({
  images: int,
  agreed: int,
  agreement: num.describe('Fraction of images where the model predicts the same class as the reference.'),
  meanKl: num.describe('Mean over images of KL(softmax(reference) || softmax(model)), nats.'),
  maxAbsProbDiff: num.describe('Largest |p_model - p_reference| over images and classes.'),
  accuracyDifference: z
    .object({
      labelled: int,
      difference: num.describe('Top-1 accuracy of the model minus that of the reference.'),
      interval: intervalSchema.describe('95% Wald interval with the paired (McNemar) variance ((b + c) - (c - b)^2/n) / n^2.'),
      referenceOnly: int.describe('b: images the reference gets right and the model wrong.'),
      modelOnly: int.describe('c: images the model gets right and the reference wrong.'),
      mcnemarP: num.describe('Two-sided exact McNemar p-value on the b + c discordant pairs.'),
    })
    .nullable()
    .describe('null when no image has a label.'),
  speedup: num.nullable().describe('Model images/s over reference images/s at the throughput batch; null without latency.'),
});

export const checkSchema = z.object({
  check: z.enum(['min-accuracy', 'max-drop']),
  threshold: num.describe('As given: percent for min-accuracy, points for max-drop.'),
  value: num.describe('Top-1 accuracy in percent, or the drop (reference minus model) in points.'),
  passed: z.boolean(),
});

export const evalResultsSchema = z.object({
  images: z.object({
    count: int,
    labelled: int,
    source: z.record(z.string(), z.unknown()),
    preprocess: z.record(z.string(), z.unknown()),
  }),
  classes: z.int().positive(),
  classNames: z.array(z.string()).nullable().describe('Class-folder names (index = class), when the images come in class subfolders.'),
  model: modelEvalSchema,
  reference: modelEvalSchema.nullable().describe('The --compare model; null without it.'),
  comparison: comparisonSchema.nullable(),
  checks: z.array(checkSchema).describe('--min-accuracy / --max-drop outcomes; the command exits 5 when one failed.'),
});

export type EvalResults = z.infer<typeof evalResultsSchema>;
export type ModelEval = z.infer<typeof modelEvalSchema>;
export type ModelFactsRecord = z.infer<typeof factsSchema>;
export type LatencyRecord = z.infer<typeof latencySchema>;
export type CheckRecord = z.infer<typeof checkSchema>;

registerReportSchema(COMMAND, evalResultsSchema);
