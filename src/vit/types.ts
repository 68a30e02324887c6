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

export interface ViTLayout {
  facts: ViTFacts;
  /** The image input of the model, [batch, channels, height, width]. */
  input: string;
  inputDims: Dim[];
  /** The logits output chosen ([batch, classes]). */
  logits: string;
  /** Other graph outputs, left as they are. */
  extraOutputs: string[];
  patchEmbed: { node: string; weight: string; bias?: string; output: string };
  /** Class-token initializer and its row index in the token axis (cls pooling only). */
  classToken?: { initializer: string; row: number };
  blocks: BlockLayout[];
  finalNorm?: NormRef;
  /** Tensor the head reads: [batch, width] after pooling (and final norm). */
  pooled: string;
  head: LinearRef;
}
