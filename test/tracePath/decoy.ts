// A hand-built 2-block GELU ViT where the paper's greedy search with the product form of JAS misses a
// planted path because of a negative-activation decoy (built on planted.ts's residual layout).
//
// Block 0: one neuron (NEG_PLANTED) reads −evidence and sits on GELU's negative side (≈ −0.17); its
//   fc2 column writes −V0 into the class-0 logit, so removing it (→ 0) lowers the class-0 logit: a real
//   path neuron with a negative activation and a negative gradient (a·g > 0: both JAS forms pick it).
// Block 1: the planted neuron (POS_PLANTED) has a small positive activation and writes +V1 (> V0) into
//   the logit; the decoy (NEG_DECOY) also sits at GELU's minimum but its fc2 column is zero: removing it
//   changes nothing. Product JAS at block 1 is (Σw)(Σg): for the planted neuron (a0 + a1)(g0 + g1) < 0
//   (Σw < 0, Σg > 0), for the decoy (a0 + a_d)(g0 + 0) > 0 (both sums negative) — the product form
//   picks the decoy; the sum form, and the removal effect, pick the planted neuron.
import { buildSyntheticVit, synthWeightSpecs, type SynthVit, type SynthVitConfig } from '../../src/vit/synth.js';

export const NEG_PLANTED = 4;
export const POS_PLANTED = 6;
export const NEG_DECOY = 1;
/** The path a correct search finds, and the one greedy + product finds. */
export const DECOY_PLANTED = [NEG_PLANTED, POS_PLANTED];
export const DECOY_GREEDY = [NEG_PLANTED, NEG_DECOY];

export const DECOY_CONFIG: Partial<SynthVitConfig> = {
  imageSize: 8,
  channels: 1,
  patch: 4,
  width: 8,
  depth: 2,
  heads: 2,
  ffn: 8,
  classes: 2,
  opset: 17,
  seed: 7,
  gelu: 'erf',
  norm: 'layernorm',
  linear: 'matmul',
  head: 'cls',
};

const B = 8;
const EVIDENCE = 2;
const LOGIT = 3;
const V0 = 4;
const V1 = 8;

export function decoyWeights(): Record<string, Float32Array> {
  const w: Record<string, Float32Array> = {};
  for (const s of synthWeightSpecs(DECOY_CONFIG)) w[s.name] = new Float32Array(s.dims.reduce((a, b) => a * b, 1)).fill(s.kind === 'gamma' ? 1 : 0);
  const D = 8;
  const F = 8;
  w['patch.weight']!.fill(1 / 16, EVIDENCE * 16, (EVIDENCE + 1) * 16);
  w['patch.bias']![0] = B;
  w['patch.bias']![1] = -B;
  w['cls_token']![0] = B;
  w['cls_token']![1] = -B;
  w['block.0.attn.v.weight']![EVIDENCE * D + EVIDENCE] = 1;
  w['block.0.attn.proj.weight']![EVIDENCE * D + EVIDENCE] = 20;
  // Block 0: the negative-side planted neuron.
  w['block.0.fc1.weight']![NEG_PLANTED * D + EVIDENCE] = -0.55;
  w['block.0.fc2.weight']![LOGIT * F + NEG_PLANTED] = -V0;
  // Block 1: a small positive planted neuron and a negative-side decoy with no way out.
  w['block.1.fc1.weight']![POS_PLANTED * D + EVIDENCE] = 0.1;
  w['block.1.fc2.weight']![LOGIT * F + POS_PLANTED] = V1;
  w['block.1.fc1.weight']![NEG_DECOY * D + EVIDENCE] = -0.55;
  w['head.weight']![0 * D + LOGIT] = 12;
  w['head.bias']![1] = 0;
  return w;
}

export function buildDecoyVit(): SynthVit {
  return buildSyntheticVit({ ...DECOY_CONFIG, weights: decoyWeights() });
}
