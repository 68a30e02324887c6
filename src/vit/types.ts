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
  /** The attention sub-block's linears and head split (absent when its linears do not form q/k/v and a projection). */
  attention?: AttentionLayout;
}

/**
 * One element of a constant that encodes the head count, in a Reshape target, Split sizes or Slice
 * bounds on the attention path: its value is `perHead` x heads (so a pruner keeping h heads writes
 * perHead x h there).
 */
export interface HeadConstant {
  /** The node reading the constant, by its first output. */
  reader: string;
  /** The constant is input `input` of `reader`: an initializer or a Constant node's output, named `tensor`. */
  input?: number;
  tensor?: string;
  /** Or an attribute of `reader` (Split 'split', Slice 'starts'/'ends' before opset 10). */
  attribute?: string;
  /** Element index in the constant. */
  index: number;
  value: number;
  perHead: number;
  /** What the value counts: 'heads', 'heads*headDim', '3*heads*headDim', 'batch*heads', ... */
  counts: string;
}

/** A head-count-dependent element of a shape input computed at run time (fold shapes to make it a constant). */
export interface ComputedHeadShape {
  reader: string;
  input: number;
  index: number;
  counts: string;
}

/**
 * A block's attention: the q/k/v linears (three, or one fused qkv linear), the output projection,
 * and the head split. Head h owns output features [h*headDim, (h+1)*headDim) of q, k and v (of
 * each of the three chunks of a fused qkv, chunk c being features [c*dim, (c+1)*dim)) and the
 * same input features of the projection.
 */
export interface AttentionLayout {
  form: 'fused' | 'separate';
  /** form 'fused': the one linear writing q, k and v. */
  qkv?: LinearRef;
  /** form 'separate': the three linears. */
  q?: LinearRef;
  k?: LinearRef;
  v?: LinearRef;
  /** form 'fused': which of q, k, v each chunk of qkv's output is, as the graph reads them (null when the graph does not tell). */
  qkvOrder?: ('q' | 'k' | 'v')[] | null;
  proj: LinearRef;
  heads: number | null;
  headDim: number | null;
  /** Width of q, k and v (= heads * headDim = the projection's input width). */
  dim: number;
  /** Output tensor of the attention Softmax. */
  softmax: string;
  /** Every constant element on the attention path that encodes the head count. */
  headConstants: HeadConstant[];
  /** Head-count-dependent shape elements computed at run time (empty on shape-folded graphs). */
  computedShapes: ComputedHeadShape[];
  /** Nodes (by first output) on the attention path whose shapes vitpath could not follow: empty when headConstants is complete. */
  untraced: string[];
}

/** Where a linear layer sits: the names `inspect --layers`, quantize and prune use. */
export type LinearRole = 'qkv' | 'q' | 'k' | 'v' | 'proj' | 'fc1' | 'fc2' | 'patch_embed' | 'head' | 'head_dist';

/**
 * A linear layer (or the patch-embedding Conv) with its stable name. For the Conv, `weight` is
 * [out, in/group, kh, kw] and inFeatures = in/group*kh*kw.
 */
export interface NamedLinear extends Omit<LinearRef, 'kind'> {
  /** blocks.N.attn.qkv | blocks.N.attn.q|k|v | blocks.N.attn.proj | blocks.N.mlp.fc1|fc2 | patch_embed | head | head_dist */
  name: string;
  role: LinearRole;
  /** Block index; null for patch_embed and the head(s). */
  block: number | null;
  kind: LinearRef['kind'] | 'conv';
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
  /** Every linear layer by its stable name, in graph order: patch_embed, per block attention then MLP, head(s). */
  linears: NamedLinear[];
}
