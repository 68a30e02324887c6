// An image classifier's interface read from the graph alone, for any architecture (no ViT layout
// needed): the image input [batch, C, H, W] with its element type and batch size, and the output
// holding the class scores with what it holds (logits, or probabilities when a Softmax writes it).
import { DataType, type ModelProto } from './proto.js';
import { Graph, valueInfoShape } from './graph.js';
import { dtypeName } from './tensor.js';
import { badInput, unsupported, usageError } from '../errors.js';

/** What the class-score output holds. Probabilities are turned into log-probabilities before scoring. */
export type ScoreKind = 'logits' | 'probabilities' | 'log-probabilities';

/** Element types vitpath feeds and reads (float16 through its bit codec). */
export type FloatType = 'float32' | 'float16' | 'float64';

export interface ClassifierIo {
  input: string;
  /** Declared input dims: numbers for fixed sizes, names (or '?') for the others. */
  inputDims: Array<number | string>;
  inputType: FloatType;
  /** The fixed batch size the input declares, or 'dynamic'. */
  batch: 'dynamic' | number;
  output: string;
  outputType: FloatType;
  scores: ScoreKind;
}

const FLOAT_TYPES: Partial<Record<DataType, FloatType>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
};

/** Ops that pass class scores through unchanged in meaning (so a Softmax before them still makes probabilities). */
const PASS_THROUGH = new Set(['Identity', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Cast']);

function floatType(t: DataType | undefined, what: string, label: string): FloatType {
  if (t === undefined || t === DataType.UNDEFINED) return 'float32';
  const f = FLOAT_TYPES[t];
  if (!f) throw unsupported(`${label}: ${what} has element type ${dtypeName(t)}; vitpath eval feeds and reads float32, float16 or float64 tensors.`);
  return f;
}

/** What a graph output holds, from the op that writes it (looking through reshapes and casts). */
export function scoreKindOf(g: Graph, output: string): ScoreKind {
  let t = output;
  for (let hops = 0; hops < 16; hops++) {
    const p = g.producerOf(t);
    if (!p) return 'logits';
    if (p.opType === 'Softmax') return 'probabilities';
    if (p.opType === 'LogSoftmax') return 'log-probabilities';
    if (!PASS_THROUGH.has(p.opType) || !p.input[0]) return 'logits';
    t = p.input[0];
  }
  return 'logits';
}

/**
 * The image input and the class-score output of `model`. The input must be the graph's only
 * non-initializer input, of rank 4 ([batch, channels, height, width]). The output is `output` when
 * given, else the only output, else the only one declared with rank 2 ([batch, classes]).
 */
export function describeClassifier(model: ModelProto, opts: { output?: string; label: string }): ClassifierIo {
  const g = new Graph(model);
  const label = opts.label;
  const inputs = g.inputNames;
  if (inputs.length === 0) throw badInput(`${label}: the model has no input; pass an image classifier.`);
  if (inputs.length > 1) {
    throw unsupported(`${label}: the model has ${inputs.length} inputs (${inputs.join(', ')}); vitpath eval needs an image classifier with one image input [batch, channels, height, width].`);
  }
  const input = inputs[0]!;
  const ishape = g.shapeOf(input) ?? {};
  const idims = ishape.dims;
  if (!idims || idims.length !== 4) {
    throw unsupported(`${label}: input ${input} has ${idims ? `${idims.length} dimensions` : 'no declared shape'}; vitpath eval needs an image input [batch, channels, height, width].`);
  }
  const inputType = floatType(ishape.dataType, `input ${input}`, label);

  const outputs = g.outputNames;
  let output: string;
  if (opts.output !== undefined) {
    if (!outputs.includes(opts.output)) throw usageError(`${label}: --output ${opts.output} is not an output of the model; its outputs are: ${outputs.join(', ')}.`);
    output = opts.output;
  } else if (outputs.length === 1) {
    output = outputs[0]!;
  } else {
    const rank2 = outputs.filter((o) => g.shapeOf(o)?.dims?.length === 2);
    if (rank2.length !== 1) {
      throw usageError(`${label}: the model has ${outputs.length} outputs (${outputs.join(', ')}) and ${rank2.length === 0 ? 'none' : 'several'} declared [batch, classes]; pick the class scores with --output NAME.`);
    }
    output = rank2[0]!;
  }
  const outputType = floatType(g.shapeOf(output)?.dataType, `output ${output}`, label);
  const b = idims[0];
  return {
    input,
    inputDims: idims.map((d) => (d === undefined ? '?' : d)),
    inputType,
    batch: typeof b === 'number' && b > 0 ? b : 'dynamic',
    output,
    outputType,
    scores: scoreKindOf(g, output),
  };
}
