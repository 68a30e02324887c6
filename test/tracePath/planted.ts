// A hand-built ViT with a planted neuron path, for proving trace-path correct: per block one
// neuron (PLANTED[l]) reads the class evidence (the image's mean brightness, which block 0's
// attention copies into the class token) and writes it into the residual direction the head
// reads as class 0's logit; a decoy neuron (DECOYS[l]) reads the same evidence 1.5x as strongly
// (a LARGER activation) but its fc2 column is zero, so it has no path to the logits. Every other
// neuron has zero weights (ReLU(0) = 0, no effect). Blocks 1.. have zero attention.
//
// Residual layout (width 8): dim 0 = +B and dim 1 = -B constants (they dominate LayerNorm's
// variance, so the norms act almost linearly), dim 2 = evidence, dim 3 = class-0 logit accumulator.
import { buildSyntheticVit, synthWeightSpecs, type SynthVit, type SynthVitConfig } from '../../src/vit/synth.js';

export const PLANTED = [5, 2, 6];
export const DECOYS = [1, 7, 3];
export const PLANTED_CONFIG: Partial<SynthVitConfig> = {
  imageSize: 8,
  channels: 1,
  patch: 4,
  width: 8,
  depth: 3,
  heads: 2,
  ffn: 8,
  classes: 2,
  opset: 17,
  seed: 7,
  gelu: 'relu',
  norm: 'layernorm',
  linear: 'matmul',
  head: 'cls',
};

const B = 8; // constant dims
const EVIDENCE = 2;
const LOGIT = 3;

export function plantedWeights(head: 'cls' | 'mean' = 'cls'): Record<string, Float32Array> {
  const specs = synthWeightSpecs({ ...PLANTED_CONFIG, head });
  const w: Record<string, Float32Array> = {};
  for (const s of specs) {
    const n = s.dims.reduce((a, b) => a * b, 1);
    w[s.name] = new Float32Array(n).fill(s.kind === 'gamma' ? 1 : 0);
  }
  const D = 8;
  const F = 8;
  // Patch embedding: evidence dim = mean pixel of the 4x4 patch; constants in dims 0/1.
  w['patch.weight']!.fill(1 / 16, EVIDENCE * 16, (EVIDENCE + 1) * 16);
  w['patch.bias']![0] = B;
  w['patch.bias']![1] = -B;
  if (head === 'cls') {
    w['cls_token']![0] = B;
    w['cls_token']![1] = -B;
  }
  // Block 0 attention: q = k = 0 (uniform attention), v copies the evidence dim, proj amplifies it
  // back into the evidence dim of every token (the class token gets the patch average).
  w['block.0.attn.v.weight']![EVIDENCE * D + EVIDENCE] = 1;
  w['block.0.attn.proj.weight']![EVIDENCE * D + EVIDENCE] = 20;
  for (let l = 0; l < PLANTED.length; l++) {
    const fc1 = w[`block.${l}.fc1.weight`]!; // [F, D]
    const fc2 = w[`block.${l}.fc2.weight`]!; // [D, F]
    fc1[PLANTED[l]! * D + EVIDENCE] = 1;
    fc1[DECOYS[l]! * D + EVIDENCE] = 1.5;
    fc2[LOGIT * F + PLANTED[l]!] = 1;
  }
  // Head: class 0 reads the logit accumulator; class 1 wins by a margin when it is empty.
  w['head.weight']![0 * D + LOGIT] = 12;
  w['head.bias']![1] = 3;
  return w;
}

/** The planted model; head 'mean' drops the class token and mean-pools the patch tokens. */
export function buildPlantedVit(head: 'cls' | 'mean' = 'cls'): SynthVit {
  return buildSyntheticVit({ ...PLANTED_CONFIG, head, weights: plantedWeights(head) });
}

/** An 8x8 gray image (bytes) of constant brightness v plus a small deterministic texture. */
export function plantedImage(v: number, seed: number): Uint8Array {
  const out = new Uint8Array(64);
  for (let i = 0; i < 64; i++) out[i] = v === 0 ? 0 : Math.max(0, Math.min(255, Math.round(v + 20 * Math.sin(i * 0.9 + seed))));
  return out;
}
