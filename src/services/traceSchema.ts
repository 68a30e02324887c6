// The results schema of the trace-path report (inside the shared envelope), as zod, exported
// as JSON Schema by `vitpath trace-path --schema`.
import * as z from 'zod';
import { registerReportSchema } from '../report/schema.js';

const num = z.number();
const int = z.int();
const methodName = z.enum(['path', 'activation', 'influence', 'ig-layer', 'random', 'greedy', 'beam', 'effect']);
const searchScore = z.enum(['product', 'sum', 'effect']);

export const methodResultSchema = z.object({
  method: methodName,
  path: z.array(int).describe('One neuron index per searched layer (0-based).'),
  activations: z.array(num).describe('Clean activation of each path neuron.'),
  jasProduct: num.describe('JAS, official product form: (Σ_l w_l/m)·(Σ_k Σ_l g_l(k)).'),
  jasSum: num.describe('JAS, integrated-gradients sum form: Σ_l (w_l/m)·Σ_k g_l(k).'),
  completenessGap: num.describe('F(clean) − F(path zeroed); jasSum approaches it as --steps grows.'),
  removeRatio: num.describe('Target-class softmax probability with the path neurons set to 0 at every layer, divided by the clean probability (whatever the objective).'),
  enhanceRatio: num.describe('Target-class softmax probability with the path neurons doubled, divided by the clean probability.'),
  removePred: int,
  enhancePred: int,
  gradSamples: num.describe('Gradient-graph samples (forward + backward) evaluated per image to find this path (0 for activation and random). ig-layer\'s samples start from the clean state at their layer where the model allows it, so one costs about (blocks above that layer) / (blocks) of a whole-model sample.'),
  forwardSamples: num.describe('Forward-only samples evaluated per image to find this path (the effect score\'s ablations).'),
});

export const layerChoiceSchema = z.object({
  layer: int.describe('Block index (0-based).'),
  neuron: int,
  activation: num,
  score: num.describe('Score of the path up to and including this neuron, as the search ranks it (--score: JAS product or sum, or the effect F(clean) − F(path removed)).'),
  top: z.array(z.object({ neuron: int, score: num })).describe('Best candidates of the layer, best first.'),
  zeroActivation: z.boolean().describe('The chosen neuron is exactly 0 at the clean input (common with ReLU).'),
});

export const imageResultSchema = z.object({
  index: int.describe('Position in the input list after --shard and --limit.'),
  id: z.string(),
  label: int.nullable(),
  pred: int,
  target: int,
  fBase: num.describe('Objective at the clean input (probability or logit of the target).'),
  pBase: num.describe('Softmax probability of the target class at the clean input.'),
  layers: z.array(layerChoiceSchema),
  methods: z.array(methodResultSchema),
});

export const methodSummarySchema = z.object({
  method: methodName,
  images: int,
  meanJasProduct: num,
  meanJasSum: num,
  meanCompletenessGap: num,
  meanCompletenessError: num,
  meanRemoveRatio: num,
  medianRemoveRatio: num,
  meanEnhanceRatio: num,
  medianEnhanceRatio: num,
  removeTop1Changed: num,
  enhanceTop1Changed: num,
  removeAccuracyDeviation: num.nullable().describe('Top-1 accuracy with the path removed minus the clean accuracy, over the labelled images; null without labels.'),
  enhanceAccuracyDeviation: num.nullable().describe('Top-1 accuracy with the path enhanced minus the clean accuracy, over the labelled images; null without labels.'),
  meanGradSamples: num.describe('Mean gradient-graph samples per image spent finding the paths.'),
  meanForwardSamples: num.describe('Mean forward-only samples per image spent finding the paths.'),
});

export const traceResultsSchema = z.object({
  data: z.record(z.string(), z.json()).describe('The image source: kind, input, count, labels.'),
  preprocess: z.record(z.string(), z.json()).describe('Preprocessing actually applied.'),
  settings: z.object({
    layers: z.array(int),
    token: z.union([z.literal('cls'), z.literal('mean'), int]),
    steps: int,
    rule: z.enum(['left', 'right', 'midpoint', 'trapezoid', 'gauss']).describe('Integration rule of every integrated gradient (left: the paper\'s Riemann sum).'),
    autoSteps: z
      .object({
        rule: z.enum(['left', 'right', 'midpoint', 'trapezoid', 'gauss']),
        steps: int,
        error: num,
        maxError: num,
        reference: num.describe('Relative completeness error of left with 20 steps (the paper\'s setting) on the same images.'),
        reached: z.boolean(),
        images: int,
        tried: z.array(z.object({ rule: z.enum(['left', 'right', 'midpoint', 'trapezoid', 'gauss']), steps: int, error: num })),
      })
      .nullable()
      .describe('--steps auto: the calibration that chose rule and steps (relative error Σ|JAS(sum) − gap| / Σ|gap| of the activation path on the first images).'),
    search: z
      .object({
        strategy: z.enum(['greedy', 'beam', 'effect']),
        score: searchScore,
        beam: int,
        candidates: int,
        prefilter: z.enum(['taylor', 'ig']),
      })
      .describe('The search that found the path; beam and candidates matter only for beam and the effect score.'),
    jas: z.enum(['product', 'sum']),
    objective: z.enum(['prob', 'logit']),
    target: z.union([z.enum(['auto', 'label', 'pred']), int]),
    baselines: z.array(methodName),
    topK: int,
    seed: int,
    shard: z.object({ index: int, count: int }).nullable(),
    head: z.enum(['avg', 'cls', 'dist']).optional().describe('Distilled models: the logits F is taken from (average of both heads, or one head).'),
  }),
  images: z.array(imageResultSchema),
  skipped: z
    .array(z.object({ id: z.string(), reason: z.string() }))
    .optional()
    .describe('With --skip-bad-images: the images that could not be read or decoded, and why (absent without the flag).'),
  summary: z.array(methodSummarySchema),
  accuracy: num.nullable().describe('Top-1 accuracy of the clean model over the images with a label (images[].label not null); null when none has one.'),
  classes: z.object({
    preferred: z.array(z.array(int).nullable()).describe('Per target class, the most frequent path neuron per layer (null: no image).'),
    images: z.array(int),
    pathShared: z.array(int).describe('Per target class, the images whose whole path equals the preferred path.'),
    preferredShare: z.array(z.array(num).nullable()).describe('Per target class and layer, the share of its images whose path has the preferred (most frequent) neuron there.'),
    similarityClasses: z.array(int).describe('The target classes that have images, ascending: the rows and columns of similarity.'),
    similarity: z
      .array(z.array(num))
      .describe('Cosine similarity of the path frequency tables of the classes in similarityClasses (row a, column b = classes similarityClasses[a], similarityClasses[b]); classes without images are left out.'),
  }),
  imagesPerSecond: num,
});
export type TraceResults = z.infer<typeof traceResultsSchema>;

registerReportSchema('trace-path', traceResultsSchema);
