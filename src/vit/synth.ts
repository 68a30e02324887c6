// Synthetic pre-norm Vision Transformers emitted as ONNX, in the export styles real models come
// in (Erf/tanh/native GELU or ReLU, LayerNormalization/decomposed/BatchNorm, MatMul/Gemm, fixed or
// dynamic batch, class-token or mean pooling, opsets 9..21). Used for fixtures, tests and benchmarks.
//
// Names in the emitted graph are generic ('n17' nodes, 't42' tensors, 'w3' initializers) so that
// nothing can locate a part by its name. The returned `names` / `tensors` maps give the ground truth.
//
// Logical weight names (see `synthWeightSpecs`), all float32, torch layout:
//   patch.weight [D,C,p,p]  patch.bias [D]  cls_token [1,1,D] (head 'cls' only)  pos_embed [1,T,D]
//   block.{i}.norm1.weight|bias [D] (+ .running_mean|.running_var [D] when norm = 'batchnorm')
//   block.{i}.attn.{q,k,v,proj}.weight [D,D]  .bias [D]
//   block.{i}.norm2.*  block.{i}.fc1.weight [F,D] .bias [F]  block.{i}.fc2.weight [D,F] .bias [D]
//   norm.weight|bias [D] (+ running stats)   head.weight [classes,D]  head.bias [classes]
// Linear weights are always given [out, in] (nn.Linear layout). The 'gemm' style stores them so
// (Gemm transB=1); the 'matmul' style stores the transpose [in, out] in the initializer.
import type { ModelProto } from '../onnx/proto.js';
import { DataType } from '../onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../onnx/builder.js';
import { usageError } from '../errors.js';
import { mulberry32 } from '../random.js';

export { mulberry32 };

export type SynthGelu = 'erf' | 'tanh' | 'gelu-op' | 'relu';
export type SynthNorm = 'layernorm' | 'decomposed' | 'batchnorm';
export type SynthLinear = 'matmul' | 'gemm';
export type SynthHead = 'cls' | 'mean';
export type SynthExtraOutput = 'attention';

export interface SynthVitConfig {
  /** Square side, or [height, width]. Must be divisible by `patch`. */
  imageSize: number | [number, number];
  channels: number;
  patch: number;
  width: number;
  depth: number;
  heads: number;
  ffn: number;
  classes: number;
  /** ONNX opset, 9..21. LayerNormalization needs >= 17, native Gelu >= 20. */
  opset: number;
  seed: number;
  gelu: SynthGelu;
  norm: SynthNorm;
  /**
   * 'matmul': MatMul [B,T,D]x[D,F] + Add bias. 'gemm': tokens reshaped to [B*T, D] and Gemm(transB=1);
   * attention linears reshape back after each Gemm, the MLP stays flat from fc1 through fc2
   * (so the neuron tensor is [B*T, F]).
   */
  linear: SynthLinear;
  /** 'dynamic' (input dim 'batch') or a fixed batch size. */
  batch: 'dynamic' | number;
  head: SynthHead;
  /** 'attention': the last block's attention probabilities [B,H,T,T] as an extra output, listed FIRST. */
  extraOutputs: SynthExtraOutput[];
  /** Epsilon of every norm. */
  eps: number;
  inputName: string;
  /** Planted weights by logical name (shapes as in `synthWeightSpecs`); the rest are drawn from `seed`. */
  weights?: Record<string, Float32Array>;
}

export const defaultSynthConfig: SynthVitConfig = {
  imageSize: 28,
  channels: 1,
  patch: 7,
  width: 32,
  depth: 2,
  heads: 4,
  ffn: 64,
  classes: 10,
  opset: 17,
  seed: 1,
  gelu: 'erf',
  norm: 'layernorm',
  linear: 'matmul',
  batch: 'dynamic',
  head: 'cls',
  extraOutputs: [],
  eps: 1e-5,
  inputName: 'input',
};

/** A ViT-S/16-sized model (random weights) for benchmarks; generate at run time, never commit. */
export const vitSmall16Config: SynthVitConfig = {
  ...defaultSynthConfig,
  imageSize: 224,
  channels: 3,
  patch: 16,
  width: 384,
  depth: 12,
  heads: 6,
  ffn: 1536,
  classes: 1000,
  opset: 17,
  seed: 16,
};

export interface SynthVit {
  model: ModelProto;
  /** The resolved config (defaults filled in, `weights` omitted). */
  config: Omit<SynthVitConfig, 'weights'>;
  /** Logical weight name -> initializer name in `model`. */
  names: Record<string, string>;
  /** Logical weight name -> values in logical (torch) layout, as used in the model. */
  weights: Record<string, Float32Array>;
  /**
   * Logical tensor name -> tensor name in `model`: 'input', 'tokens' (after pos-embed = block.0.input),
   * 'block.{i}.input|attnNorm|q|k|v|attnSoftmax|attnBranch|attnResidual|mlpNorm|fc1|neuron|fc2|mlpBranch|output',
   * 'finalNorm', 'pooled', 'logits', and 'attention' when requested.
   */
  tensors: Record<string, string>;
  /** Token count T (patches + class token). */
  tokens: number;
  numPatches: number;
}

export interface WeightSpec {
  name: string;
  dims: number[];
  /** 'linear' weights are [out,in]; the rest describe their role for initialisation. */
  kind: 'linear' | 'bias' | 'conv' | 'embed' | 'gamma' | 'beta' | 'mean' | 'var';
  fanIn: number;
}

function resolve(cfg: Partial<SynthVitConfig>): SynthVitConfig {
  return { ...defaultSynthConfig, ...cfg };
}

function imageHW(c: SynthVitConfig): [number, number] {
  return typeof c.imageSize === 'number' ? [c.imageSize, c.imageSize] : c.imageSize;
}

function validate(c: SynthVitConfig): void {
  const [h, w] = imageHW(c);
  const bad = (m: string) => usageError(`synthetic ViT config: ${m}`);
  for (const k of ['channels', 'patch', 'width', 'depth', 'heads', 'ffn', 'classes'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw bad(`${k} must be a positive integer (got ${c[k]})`);
  }
  if (h % c.patch || w % c.patch) throw bad(`image ${h}x${w} is not divisible by patch ${c.patch}`);
  if (c.width % c.heads) throw bad(`width ${c.width} is not divisible by heads ${c.heads}`);
  if (!(c.opset >= 9 && c.opset <= 21)) throw bad(`opset must be 9..21 (got ${c.opset})`);
  if (c.norm === 'layernorm' && c.opset < 17) throw bad(`norm 'layernorm' (LayerNormalization) needs opset >= 17 (got ${c.opset}); use 'decomposed'`);
  if (c.gelu === 'gelu-op' && c.opset < 20) throw bad(`gelu 'gelu-op' (native Gelu) needs opset >= 20 (got ${c.opset})`);
  if (c.batch !== 'dynamic' && !(Number.isInteger(c.batch) && c.batch >= 1)) throw bad(`batch must be 'dynamic' or a positive integer`);
}

/** Every logical weight of the model `cfg` describes, in a fixed order, with its shape. */
export function synthWeightSpecs(cfgIn: Partial<SynthVitConfig> = {}): WeightSpec[] {
  const c = resolve(cfgIn);
  const [h, w] = imageHW(c);
  const D = c.width;
  const F = c.ffn;
  const P = (h / c.patch) * (w / c.patch);
  const T = P + (c.head === 'cls' ? 1 : 0);
  const specs: WeightSpec[] = [];
  const norm = (p: string) => {
    specs.push({ name: `${p}.weight`, dims: [D], kind: 'gamma', fanIn: D }, { name: `${p}.bias`, dims: [D], kind: 'beta', fanIn: D });
    if (c.norm === 'batchnorm') {
      specs.push({ name: `${p}.running_mean`, dims: [D], kind: 'mean', fanIn: D }, { name: `${p}.running_var`, dims: [D], kind: 'var', fanIn: D });
    }
  };
  const lin = (p: string, out: number, inp: number) =>
    specs.push({ name: `${p}.weight`, dims: [out, inp], kind: 'linear', fanIn: inp }, { name: `${p}.bias`, dims: [out], kind: 'bias', fanIn: inp });
  const fanPatch = c.channels * c.patch * c.patch;
  specs.push({ name: 'patch.weight', dims: [D, c.channels, c.patch, c.patch], kind: 'conv', fanIn: fanPatch });
  specs.push({ name: 'patch.bias', dims: [D], kind: 'bias', fanIn: fanPatch });
  if (c.head === 'cls') specs.push({ name: 'cls_token', dims: [1, 1, D], kind: 'embed', fanIn: D });
  specs.push({ name: 'pos_embed', dims: [1, T, D], kind: 'embed', fanIn: D });
  for (let i = 0; i < c.depth; i++) {
    norm(`block.${i}.norm1`);
    for (const x of ['q', 'k', 'v', 'proj']) lin(`block.${i}.attn.${x}`, D, D);
    norm(`block.${i}.norm2`);
    lin(`block.${i}.fc1`, F, D);
    lin(`block.${i}.fc2`, D, F);
  }
  norm('norm');
  lin('head', c.classes, D);
  return specs;
}

// ---- deterministic weights: one PRNG stream per logical name, so styles share values ----

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}


/** Standard normal samples by Box-Muller from a uniform source. */
export function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

function drawWeight(spec: WeightSpec, seed: number): Float32Array {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  const rand = mulberry32((Math.imul(seed, 0x9e3779b1) ^ fnv1a(spec.name)) >>> 0);
  const g = gaussian(rand);
  const out = new Float32Array(n);
  const std = 1 / Math.sqrt(spec.fanIn);
  for (let i = 0; i < n; i++) {
    switch (spec.kind) {
      case 'linear':
      case 'conv':
        out[i] = g() * std;
        break;
      case 'bias':
        out[i] = g() * 0.02;
        break;
      case 'embed':
        out[i] = g() * 0.1;
        break;
      case 'gamma':
        out[i] = 1 + g() * 0.1;
        break;
      case 'beta':
        out[i] = g() * 0.05;
        break;
      case 'mean':
        out[i] = g() * 0.1;
        break;
      case 'var':
        out[i] = 0.5 + rand();
        break;
    }
  }
  return out;
}

/** The logical weights of the model `cfg` describes: planted ones from cfg.weights, the rest seeded. */
export function synthWeights(cfgIn: Partial<SynthVitConfig> = {}): Record<string, Float32Array> {
  const c = resolve(cfgIn);
  validate(c);
  const specs = synthWeightSpecs(c);
  const known = new Set(specs.map((s) => s.name));
  for (const k of Object.keys(c.weights ?? {})) {
    if (!known.has(k)) throw usageError(`synthetic ViT config: planted weight "${k}" is not a weight of this model; see synthWeightSpecs() for the names`);
  }
  const out: Record<string, Float32Array> = {};
  for (const s of specs) {
    const planted = c.weights?.[s.name];
    const n = s.dims.reduce((a, b) => a * b, 1);
    if (planted) {
      if (planted.length !== n) throw usageError(`synthetic ViT config: planted weight "${s.name}" has ${planted.length} values, shape [${s.dims.join(',')}] needs ${n}`);
      out[s.name] = Float32Array.from(planted);
    } else out[s.name] = drawWeight(s, c.seed);
  }
  return out;
}

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) t[k * rows + r] = a[r * cols + k]!;
  return t;
}

/** A GraphBuilder whose fresh names are generic: 'n<k>' nodes, 'w<k>' initializers, 't<k>' tensors. */
class GenericNameBuilder extends GraphBuilder {
  private nNode = 0;
  private nInit = 0;
  private nTensor = 0;
  override fresh(base: string): string {
    let name: string;
    if (base.endsWith('_node')) name = `n${this.nNode++}`;
    else if (base === 'const' || base === 'weight') name = `w${this.nInit++}`;
    else name = `t${this.nTensor++}`;
    return this.reserve(name);
  }
}

/** Build the synthetic ViT. See the file comment for the returned names. */
export function buildSyntheticVit(cfgIn: Partial<SynthVitConfig> = {}): SynthVit {
  const c = resolve(cfgIn);
  validate(c);
  const W = synthWeights(c);
  const specs = synthWeightSpecs(c);
  const dimsOf = new Map(specs.map((s) => [s.name, s.dims]));
  const b = new GenericNameBuilder(c.opset, '');
  const names: Record<string, string> = {};
  const tensors: Record<string, string> = {};
  const [H, Wd] = imageHW(c);
  const D = c.width;
  const F = c.ffn;
  const Dh = D / c.heads;
  const P = (H / c.patch) * (Wd / c.patch);
  const T = P + (c.head === 'cls' ? 1 : 0);
  const batchDim: string | number = c.batch === 'dynamic' ? 'batch' : c.batch;

  // Initializers in logical order so regenerated files are byte-identical.
  const param = (name: string): string => {
    if (names[name]) return names[name]!;
    const dims = dimsOf.get(name)!;
    let data = W[name]!;
    let stored = dims;
    if (c.linear === 'matmul' && dims.length === 2) {
      data = transpose2d(data, dims[0]!, dims[1]!);
      stored = [dims[1]!, dims[0]!];
    }
    names[name] = b.initializer(b.fresh('weight'), data, stored);
    return names[name]!;
  };
  const scalar = (v: number) => b.constF32([v], []);

  const linear3d = (x: string, p: string): string => {
    // x: [B, T, in] -> [B, T, out]
    const wgt = param(`${p}.weight`);
    const bias = param(`${p}.bias`);
    if (c.linear === 'matmul') return b.op('Add', [b.op('MatMul', [x, wgt]), bias]);
    const out = dimsOf.get(`${p}.weight`)![0]!;
    const inp = dimsOf.get(`${p}.weight`)![1]!;
    const flat = b.op('Reshape', [x, b.constI64([-1, inp])]);
    const y = b.op('Gemm', [flat, wgt, bias], { transB: 1 });
    return b.op('Reshape', [y, b.constI64([-1, T, out])]);
  };
  const linear2d = (x: string, p: string): string => {
    const wgt = param(`${p}.weight`);
    const bias = param(`${p}.bias`);
    if (c.linear === 'matmul') return b.op('Add', [b.op('MatMul', [x, wgt]), bias]);
    return b.op('Gemm', [x, wgt, bias], { transB: 1 });
  };

  const norm = (x: string, p: string): string => {
    const g = param(`${p}.weight`);
    const beta = param(`${p}.bias`);
    if (c.norm === 'layernorm') return b.op('LayerNormalization', [x, g, beta], { axis: -1, epsilon: { float: c.eps } });
    if (c.norm === 'decomposed') {
      const mean = b.reduce18('ReduceMean', x, [-1], true);
      const d = b.op('Sub', [x, mean]);
      const sq = b.op('Pow', [d, scalar(2)]);
      const v = b.reduce18('ReduceMean', sq, [-1], true);
      const s = b.op('Sqrt', [b.op('Add', [v, scalar(c.eps)])]);
      const n = b.op('Div', [d, s]);
      return b.op('Add', [b.op('Mul', [n, g]), beta]);
    }
    const rm = param(`${p}.running_mean`);
    const rv = param(`${p}.running_var`);
    const xt = b.op('Transpose', [x], { perm: [0, 2, 1] });
    const y = b.op('BatchNormalization', [xt, g, beta, rm, rv], { epsilon: { float: c.eps } });
    return b.op('Transpose', [y], { perm: [0, 2, 1] });
  };

  const act = (x: string): string => {
    switch (c.gelu) {
      case 'relu':
        return b.op('Relu', [x]);
      case 'gelu-op':
        return b.op('Gelu', [x], { approximate: 'none' });
      case 'erf': {
        const e = b.op('Erf', [b.op('Div', [x, scalar(Math.SQRT2)])]);
        return b.op('Mul', [b.op('Mul', [x, b.op('Add', [e, scalar(1)])]), scalar(0.5)]);
      }
      case 'tanh': {
        const cube = b.op('Pow', [x, scalar(3)]);
        const inner = b.op('Add', [x, b.op('Mul', [cube, scalar(0.044715)])]);
        const th = b.op('Tanh', [b.op('Mul', [inner, scalar(Math.sqrt(2 / Math.PI))])]);
        return b.op('Mul', [b.op('Mul', [x, scalar(0.5)]), b.op('Add', [th, scalar(1)])]);
      }
    }
  };

  // ---- patch embedding ----
  const input = b.reserve(c.inputName);
  tensors.input = input;
  const conv = b.op('Conv', [input, param('patch.weight'), param('patch.bias')], {
    kernel_shape: [c.patch, c.patch],
    strides: [c.patch, c.patch],
  });
  const flat = b.op('Reshape', [conv, b.constI64([0, D, -1])]); // [B, D, P]
  let x = b.op('Transpose', [flat], { perm: [0, 2, 1] }); // [B, P, D]
  if (c.head === 'cls') {
    const cls = param('cls_token');
    let expandShape: string;
    if (c.batch === 'dynamic') {
      const bdim = b.slice(b.op('Shape', [x]), [0], [1], [0]);
      expandShape = b.op('Concat', [bdim, b.constI64([1, 1])], { axis: 0 });
    } else expandShape = b.constI64([c.batch, 1, 1]);
    const clsB = b.op('Expand', [cls, expandShape]);
    x = b.op('Concat', [clsB, x], { axis: 1 });
  }
  x = b.op('Add', [x, param('pos_embed')]);
  tensors.tokens = x;

  let lastSoftmax = '';
  const extraAttention = c.extraOutputs.includes('attention');
  for (let i = 0; i < c.depth; i++) {
    const p = `block.${i}`;
    tensors[`${p}.input`] = x;
    const h1 = norm(x, `${p}.norm1`);
    tensors[`${p}.attnNorm`] = h1;
    const q = linear3d(h1, `${p}.attn.q`);
    const k = linear3d(h1, `${p}.attn.k`);
    const v = linear3d(h1, `${p}.attn.v`);
    tensors[`${p}.q`] = q;
    tensors[`${p}.k`] = k;
    tensors[`${p}.v`] = v;
    const heads = (t: string, perm: number[]) => b.op('Transpose', [b.op('Reshape', [t, b.constI64([0, 0, c.heads, Dh])])], { perm });
    const qh = heads(q, [0, 2, 1, 3]); // [B,H,T,Dh]
    const kh = heads(k, [0, 2, 3, 1]); // [B,H,Dh,T]
    const vh = heads(v, [0, 2, 1, 3]);
    const scores = b.op('Mul', [b.op('MatMul', [qh, kh]), scalar(1 / Math.sqrt(Dh))]);
    const isLast = i === c.depth - 1;
    // Softmax over the last axis: axis -1 from opset 13; before that the input is coerced to 2-D at
    // `axis`, so axis = rank-1 normalises over exactly the last axis too.
    const probs =
      isLast && extraAttention
        ? b.op('Softmax', [scores], { axis: c.opset >= 13 ? -1 : 3 }, 'attention')
        : b.op('Softmax', [scores], { axis: c.opset >= 13 ? -1 : 3 });
    tensors[`${p}.attnSoftmax`] = probs;
    lastSoftmax = probs;
    const ctx = b.op('MatMul', [probs, vh]); // [B,H,T,Dh]
    const merged = b.op('Reshape', [b.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), b.constI64([0, 0, D])]);
    const attnOut = linear3d(merged, `${p}.attn.proj`);
    tensors[`${p}.attnBranch`] = attnOut;
    x = b.op('Add', [x, attnOut]);
    tensors[`${p}.attnResidual`] = x;

    const h2 = norm(x, `${p}.norm2`);
    tensors[`${p}.mlpNorm`] = h2;
    let mlp: string;
    if (c.linear === 'matmul') {
      const f1 = linear3d(h2, `${p}.fc1`);
      tensors[`${p}.fc1`] = f1;
      const a = act(f1);
      tensors[`${p}.neuron`] = a;
      mlp = linear3d(a, `${p}.fc2`);
      tensors[`${p}.fc2`] = mlp;
    } else {
      const flatTok = b.op('Reshape', [h2, b.constI64([-1, D])]); // [B*T, D]
      const f1 = linear2d(flatTok, `${p}.fc1`);
      tensors[`${p}.fc1`] = f1;
      const a = act(f1);
      tensors[`${p}.neuron`] = a;
      const f2 = linear2d(a, `${p}.fc2`);
      tensors[`${p}.fc2`] = f2;
      mlp = b.op('Reshape', [f2, b.constI64([-1, T, D])]);
    }
    tensors[`${p}.mlpBranch`] = mlp;
    x = b.op('Add', [x, mlp]);
    tensors[`${p}.output`] = x;
  }

  const fin = norm(x, 'norm');
  tensors.finalNorm = fin;
  const pooled = c.head === 'cls' ? b.op('Gather', [fin, b.constI64([0], [])], { axis: 1 }) : b.reduce18('ReduceMean', fin, [1], false);
  tensors.pooled = pooled;
  // Head: same op family as the other linears, written straight into 'logits'.
  const hw = param('head.weight');
  const hb = param('head.bias');
  const logits =
    c.linear === 'matmul' ? b.op('Add', [b.op('MatMul', [pooled, hw]), hb], {}, 'logits') : b.op('Gemm', [pooled, hw, hb], { transB: 1 }, 'logits');
  tensors.logits = logits;

  const outputs = [tensorValueInfo('logits', DataType.FLOAT, [batchDim, c.classes])];
  if (extraAttention) {
    outputs.unshift(tensorValueInfo('attention', DataType.FLOAT, [batchDim, c.heads, T, T]));
    tensors.attention = lastSoftmax;
  }
  const graph = makeGraph(
    'g',
    b.nodes,
    [tensorValueInfo(c.inputName, DataType.FLOAT, [batchDim, c.channels, H, Wd])],
    outputs,
    // Weights first in logical order, then shape/scalar constants in creation order.
    b.initializers,
  );
  const model = makeModel({ graph, opset: c.opset, producerName: 'vitpath-synth', producerVersion: '1' });
  const { weights: _omit, ...config } = c;
  return { model, config, names, weights: W, tensors, tokens: T, numPatches: P };
}

/** Just the ModelProto of `buildSyntheticVit(cfg)`. */
export function synthVitModel(cfg: Partial<SynthVitConfig> = {}): ModelProto {
  return buildSyntheticVit(cfg).model;
}
