// The architecture view of a ViT: tensor and node names of every part vitpath acts on.
// Produced by the locator (locate.ts) from graph structure and weight shapes alone.

export type Dim = number | string;

/** A linear layer: MatMul (+ Add) or Gemm. */
export interface LinearRef {
  kind: 'matmul' | 'gemm';
  /** Name of the MatMul/Gemm node (may be '' if the export left it unnamed; then use `output`). */
  node: string;
  /** Input activation tensor. */
  input: string;
  /** Output tensor after the bias (the Add output for MatMul+Add, the Gemm output otherwise). */
  output: string;
  /** Weight initializer name; for MatMul stored [in, out], for Gemm with transB stored [out, in]. */
  weight: string;
  bias?: string;
  /** Gemm only: whether B is transposed (weight stored [out, in]). */
  transB?: boolean;
  inFeatures: number;
  outFeatures: number;
}

export type ActivationKind = 'gelu-erf' | 'gelu-tanh' | 'gelu-op' | 'relu';
export type NormKind = 'layernorm' | 'layernorm-decomposed' | 'batchnorm';

export interface NormRef {
  kind: NormKind;
  input: string;
  output: string;
  /** Scale and shift initializers (gamma/beta) where present. */
  scale?: string;
  bias?: string;
}

export interface BlockLayout {
  index: number;
  /** Residual stream entering the block, [batch, tokens, width]. */
  input: string;
  /** Residual stream after the attention sub-block (x + attn). */
  attnResidual: string;
  /** Residual stream leaving the block (x + attn + mlp). */
  output: string;
  attnNorm?: NormRef;
  /** The attention branch output added to the residual stream. */
  attnBranch: string;
  /** Output tensor of the attention Softmax. */
  attnSoftmax: string;
  mlpNorm?: NormRef;
  /** The MLP branch output added to the residual stream (fc2 output). */
  mlpBranch: string;
  fc1: LinearRef;
  activation: { kind: ActivationKind; input: string; output: string };
  /**
   * The neuron tensor: the input of fc2 (= activation output). Shape [batch, tokens, ffn] when
   * `neuronLayout` is 'btf', or [batch*tokens, ffn] when the export flattened tokens for Gemm.
   */
  neuron: string;
  neuronLayout: 'btf' | 'flat';
  fc2: LinearRef;
}

export interface ViTFacts {
  numBlocks: number;
  width: number;
  ffnWidth: number;
  heads: number | null;
  tokens: number;
  numPatches: number;
  patchSize: number | null;
  imageSize: [number, number];
  channels: number;
  numClasses: number;
  batch: 'dynamic' | number;
  opset: number;
  irVersion: number;
  producer: string;
  pooling: 'cls' | 'mean';
}

/** The readout of a model with a class and a distillation head: their average (the model's output) or one of them. */
export type HeadChoice = 'avg' | 'cls' | 'dist';

export interface ViTLayout {
  facts: ViTFacts;
  /** The image input of the model, [batch, channels, height, width]. */
  input: string;
  inputDims: Dim[];
  /**
   * The input's dims as the model declares them, when they differ from `inputDims`: symbolic
   * channel/height/width that vitpath reads at the located sizes (the batch stays symbolic).
   */
  declaredInputDims?: Dim[];
  /** The logits output chosen ([batch, classes]). */
  logits: string;
  /** Other graph outputs, left as they are. */
  extraOutputs: string[];
  patchEmbed: { node: string; weight: string; bias?: string; output: string };
  /**
   * Class-token initializer and its row index in the token axis: the first extra token joined to
   * the patches (present for mean-pooled models that concatenate one, too).
   */
  classToken?: { initializer: string; row: number };
  /** Mean pooling: the token rows [start, end) the head averages (all tokens, or the patches after the extra tokens). */
  meanRows?: { start: number; end: number };
  /**
   * A distillation token (DeiT): a second head reads its row, and the model's output is the
   * average of the class-token head and this one. `logits` is that average unless `readout` picks one head.
   */
  distillation?: {
    row: number;
    initializer?: string;
    /** The class-token head and its logits tensor. */
    clsHead: LinearRef;
    clsLogits: string;
    /** The distillation-token head and its logits tensor. */
    distHead: LinearRef;
    distLogits: string;
    /** The averaged logits (the graph output). */
    averaged: string;
  };
  /** Which logits `logits` holds for a distilled model: 'avg' (the model's output), or one head's. */
  readout?: HeadChoice;
  /**
   * Set when the stored model is not float32: its float type, and that vitpath analyses it in
   * float32 (the weights upcast exactly, see onnx/rewrite/upcast.ts).
   */
  precision?: { stored: 'float16'; analysed: 'float32' };
  blocks: BlockLayout[];
  finalNorm?: NormRef;
  /** Tensor the head reads: [batch, width] after pooling (and final norm). */
  pooled: string;
  head: LinearRef;
}
