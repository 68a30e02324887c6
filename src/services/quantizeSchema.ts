// The results schema of `vitpath quantize` (report.json `results`, printed by `--schema`), as zod,
// and its types. The before/after evaluation is the eval service's own results record.
import * as z from 'zod';
import { registerReportSchema } from '../report/schema.js';
import { evalResultsSchema } from './evalSchema.js';

export const COMMAND = 'quantize';

const num = z.number();
const int = z.int().nonnegative();

export const MODES = ['int8', 'dynamic', 'fp16'] as const;
export type QuantizeMode = (typeof MODES)[number];

export const layerSchema = z.object({
  name: z.string().describe('Canonical name: blocks.N.attn.qkv|q|k|v|proj, blocks.N.mlp.fc1|fc2, head.'),
  block: int.nullable(),
  kind: z.string(),
  node: z.string().describe('The MatMul/Gemm node (may be empty when the export left it unnamed).'),
  weight: z.string(),
  inFeatures: int,
  outFeatures: int,
  precision: z.enum(['int8', 'float32', 'float16']).describe('How the layer runs in the written model.'),
  scheme: z.string().describe('e.g. "int8 weights symmetric per output channel, uint8 activations asymmetric per tensor"; "float" when left in float.'),
  reason: z.string().nullable().describe('Why a layer stayed in float (out of scope, --exclude, kept for --max-drop), null otherwise.'),
  activation: z
    .object({
      min: num.describe('The calibrated range quantized to (before widening to hold 0).'),
      max: num,
      observedMin: num,
      observedMax: num,
      scale: num,
      zeroPoint: int,
      clippedFraction: num.describe('Share of calibration values outside the range (clipped by the quantization).'),
    })
    .nullable()
    .describe('Static int8 only.'),
  weights: z.object({ channels: int, zeroChannels: int, maxStepError: num.describe('Largest |dequantized - float| / step (<= 0.5).') }).nullable(),
  biasInt32: z.boolean().nullable(),
  sensitivity: z
    .object({ meanKl: num, agreement: num })
    .nullable()
    .describe('--max-drop: this layer alone quantized, against the float model on the validation images.'),
});

export const quantizeResultsSchema = z.object({
  mode: z.enum(MODES),
  calibration: z
    .object({
      method: z.string(),
      percentile: num.nullable(),
      images: int,
      seed: int,
      indices: z.array(int).describe('Positions of the calibration images in the image list (0-based); evaluation uses the others.'),
    })
    .nullable()
    .describe('null for modes without calibration.'),
  output: z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: int }),
  fused: z
    .object({
      quantizedLayers: int,
      int8Kernels: int.describe('QLinearMatMul / MatMulIntegerToFloat / QGemm / DynamicQuantizeMatMul / MatMulInteger nodes in the graph ONNX Runtime CPU runs.'),
      ops: z.record(z.string(), int).describe('Ops of the optimized graph.'),
    })
    .nullable(),
  layers: z.array(layerSchema),
  float16: z
    .object({ clampedWeights: int, maxAbsActivation: num, overflow: z.boolean() })
    .nullable()
    .describe('fp16 mode: weights clamped to the float16 range, and the largest |activation| on the calibration images.'),
  mixedPrecision: z
    .object({
      maxDrop: num.describe('The budget, in accuracy points, as given.'),
      validation: z.object({ images: int, indices: z.array(int) }).describe('Images the layers were chosen on: disjoint from the calibration and the evaluation images.'),
      floatAccuracy: num.describe('Top-1 of the float model on the validation images.'),
      ranking: z.array(z.string()).describe('Layers by decreasing sensitivity (mean KL with only that layer in int8, then disagreement).'),
      steps: z.array(z.object({ float: z.array(z.string()), accuracy: num, drop: num })).describe('Each candidate: the layers kept in float, its validation top-1 and drop in points.'),
      kept: z.array(z.string()).describe('Layers kept in float to meet the budget.'),
      met: z.boolean().describe('Whether the validation drop is within the budget (always, at worst with every layer in float).'),
    })
    .nullable()
    .describe('--max-drop: the per-layer sensitivity search; null without it.'),
  evaluation: evalResultsSchema.nullable().describe('The quantized model (model) against the float model (reference) on the evaluation images, as vitpath eval reports it.'),
  notes: z.array(z.string()),
});

export type QuantizeResults = z.infer<typeof quantizeResultsSchema>;
export type LayerRecord = z.infer<typeof layerSchema>;

registerReportSchema(COMMAND, quantizeResultsSchema);
