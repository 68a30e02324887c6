// Intervention rewrite: replace (or scale) one token's row of chosen blocks' FFN neuron tensors by
// new graph inputs, keeping every other row as computed. Works for [B,T,F] and flat [B*T,F] neuron
// tensors at any batch size, with ops valid at opsets 9..21.
//
// Forms, for the neuron tensor n of block l viewed as [B,T,F] and the input u_l of shape [B,F]:
//   override, token t:  n'[:,t] = u_l                        (a do-intervention: n'[:,t] no longer
//                                                             depends on anything upstream, so no
//                                                             gradient flows through it, as in the
//                                                             paper's `x[:, 0] = tmp_score`)
//   scale,    token t:  n'[:,t] = n[:,t] * u_l
//   override, 'mean':   n'[:,p] = n[:,p] + (u_l - m)  for every patch row p, where m = mean_p n[:,p]
//   scale,    'mean':   n'[:,p] = n[:,p] + (u_l - 1) * m
//   affine,   token t:  n'[:,t] = n[:,t] * s_l + o_l           (two inputs `scale_<l>`, `offset_<l>`;
//                                                             s = 0 is the override form, o = 0 the
//                                                             scale form; dF/do_l = dF/d n'[:,t])
//   affine,   'mean':   n'[:,p] = n[:,p] + (s_l - 1) * m + o_l
// 'mean' is the token for mean-pooled models (whose head reads the average of the patch tokens, or
// of all tokens when a joined class token is averaged too): the intervened quantity is the MEAN
// over the rows the head averages (layout.meanRows; for class-token models, the patch rows). Override sets that mean to u_l
// and keeps each token's deviation from the mean as computed; since d n'/d n = I - (1/P) 1 1^T on
// the patch rows, no gradient flows through the mean either. Scale multiplies the mean by u_l,
// again keeping the deviations. With u_l = m (override) or u_l = 1 (scale) every form reproduces
// the original tensor bit for bit: a token row is split off the token axis, edited on its own
// [B,1,F] and concatenated back (the other rows are copied); the patch mean is combined with exact
// 0/1 masks and exact zeros.
import { DataType, type ModelProto, type NodeProto, type ValueInfoProto } from '../proto.js';
import type { Graph } from '../graph.js';
import { GraphBuilder, tensorValueInfo } from '../builder.js';
import { GraphEditor } from '../edit.js';
import type { ViTLayout } from '../../vit/types.js';
import { batchDim, checkLayers, defaultToken, resolveToken, type ResolvedToken, type TokenChoice } from '../../vit/tokens.js';
import { usageError, unsupported } from '../../errors.js';

export type InterventionMode = 'override' | 'scale' | 'affine';

export interface InterveneOptions {
  /** Blocks to intervene on (0-based); default all. */
  layers?: number[];
  /** Which row: 'cls' (the class token), 'mean' (patch-token mean), or a token index. Default: defaultToken(layout). */
  token?: TokenChoice;
  mode?: InterventionMode;
  /** Also output each block's neuron row as computed before the intervention, as `activation_<l>` [B,F]. */
  exposeActivations?: boolean;
  /**
   * Blocks whose neuron tensor holds only the intervened token's row (its token axis has length 1,
   * after sliceLastBlockRow); the row is then row 0. Only for a single-row token.
   */
  oneRow?: number[];
}

export interface Intervention {
  model: ModelProto;
  /** Block index -> name of the new [batch, ffn] input (the offset input in affine mode). */
  inputs: Record<number, string>;
  /** Affine mode: block index -> name of the [batch, ffn] scale input. */
  scaleInputs: Record<number, string>;
  /** Block index -> name of the exposed pre-intervention row [batch, ffn] (when asked for). */
  activations: Record<number, string>;
  /** Block index -> the intervened neuron tensor (what fc2 now reads), same shape as the original. */
  intervened: Record<number, string>;
  /** The resolved token. */
  token: TokenChoice;
  layers: number[];
}

/** Element type of block l's neuron tensor, taken from its fc2 weight (float32 when unknown). */
export function neuronDataType(model: ModelProto, layout: ViTLayout, l: number): DataType {
  const w = model.graph!.initializer.find((t) => t.name === layout.blocks[l]!.fc2.weight);
  return w && (w.dataType === DataType.FLOAT16 || w.dataType === DataType.DOUBLE) ? (w.dataType as DataType) : DataType.FLOAT;
}

interface RowOps {
  /** The neuron tensor seen as [B,T,F] (T = 1 for a one-row tensor). */
  n3: string;
  /** Rows in the view. */
  T: number;
  /** The row (or patch mean) kept as [B,1,F] for 'mean', undefined for a row. */
  mean3?: string;
  /** 'mean' only: 0/1 masks [T,1]: `sel` marks the patch rows, `keep` the others. */
  sel?: string;
  keep?: string;
}

/**
 * Emit the [B,T,F] view of block l's neuron tensor (and for 'mean' the row masks and the patch
 * mean). Shared by the intervention and by `exposeNeuronRows`, so the clean activations are
 * computed by exactly the same ops.
 */
function rowOps(b: GraphBuilder, layout: ViTLayout, l: number, tokIn: ResolvedToken, dt: DataType, oneRow = false): RowOps {
  const blk = layout.blocks[l]!;
  const T = oneRow ? 1 : layout.facts.tokens;
  const tok: ResolvedToken = oneRow ? { kind: 'row', row: 0 } : tokIn;
  const F = layout.facts.ffnWidth;
  const n3 = blk.neuronLayout === 'flat' ? b.op('Reshape', [blk.neuron, b.constI64([-1, T, F])]) : blk.neuron;
  const ops: RowOps = { n3, T };
  if (tok.kind === 'mean') {
    const selRows = new Set(tok.rows);
    const selV = Array.from({ length: T }, (_, i) => (selRows.has(i) ? 1 : 0));
    ops.sel = b.constFloat(dt, selV, [T, 1], `sel_${l}`);
    ops.keep = b.constFloat(dt, selV.map((v) => 1 - v), [T, 1], `keep_${l}`);
    const inv = b.constFloat(dt, [1 / tok.rows.length], [], `inv_patches_${l}`);
    ops.mean3 = b.op('Mul', [b.reduceSum(b.op('Mul', [n3, ops.sel]), [1], true), inv]);
  }
  return ops;
}

/** The [B,F] row (or patch mean) of a RowOps view. */
function rowOut(b: GraphBuilder, ops: RowOps, tokIn: ResolvedToken, name: string, oneRow = false): string {
  const tok: ResolvedToken = oneRow ? { kind: 'row', row: 0 } : tokIn;
  if (tok.kind === 'mean') return b.op('Squeeze', b.opset >= 13 ? [ops.mean3!, b.constI64([1])] : [ops.mean3!], b.opset >= 13 ? {} : { axes: [1] }, name);
  return b.op('Gather', [ops.n3, b.constI64([tok.row], [])], { axis: 1 }, name);
}

function checkNeuron(graph: Graph, layout: ViTLayout, l: number): NodeProto {
  const blk = layout.blocks[l]!;
  const p = graph.producerOf(blk.neuron);
  if (!p) throw unsupported(`block ${l}: neuron tensor "${blk.neuron}" is not produced by any node of the model; the layout does not match this model.`);
  return p;
}

export function interveneNeurons(model: ModelProto, layout: ViTLayout, opts: InterveneOptions = {}): Intervention {
  const ed = new GraphEditor(model);
  const graph = ed.graph;
  const layers = checkLayers(layout, opts.layers);
  const token = opts.token ?? defaultToken(layout);
  const tok = resolveToken(layout, token);
  const mode = opts.mode ?? 'override';
  const oneRow = new Set(opts.oneRow ?? []);
  if (oneRow.size && tok.kind !== 'row') throw usageError(`a one-row neuron tensor (blocks ${[...oneRow].join(',')}) needs a single token row, not the patch mean.`);
  const bd = batchDim(layout);
  const F = layout.facts.ffnWidth;
  const inputs: Record<number, string> = {};
  const scaleInputs: Record<number, string> = {};
  const activations: Record<number, string> = {};
  const intervened: Record<number, string> = {};
  const newInputs: ValueInfoProto[] = [];
  const newOutputs: ValueInfoProto[] = [];

  for (const l of layers) {
    const blk = layout.blocks[l]!;
    checkNeuron(graph, layout, l);
    const dt = neuronDataType(model, layout, l);
    const b = ed.builder(`intervene/${l}`);
    const u = b.reserve(`${mode === 'affine' ? 'offset' : mode}_${l}`);
    if (graph.inputNames.includes(u)) throw usageError(`the model already has an input named "${u}"; it was intervened on before.`);
    inputs[l] = u;
    newInputs.push(tensorValueInfo(u, dt, [bd, F]));
    if (mode === 'affine') {
      scaleInputs[l] = b.reserve(`scale_${l}`);
      newInputs.push(tensorValueInfo(scaleInputs[l], dt, [bd, F]));
    }
    const one = oneRow.has(l);
    const ops = rowOps(b, layout, l, tok, dt, one);
    if (opts.exposeActivations) {
      activations[l] = rowOut(b, ops, tok, b.reserve(`activation_${l}`), one);
      newOutputs.push(tensorValueInfo(activations[l], dt, [bd, F]));
    }
    const u3 = b.unsqueeze(u, [1]); // [B,1,F]
    let n3x: string;
    const s3 = mode === 'affine' ? b.unsqueeze(scaleInputs[l]!, [1]) : undefined;
    if (tok.kind === 'row') {
      // Row scatter: split the token axis into [before, row, after], edit the [B,1,F] row and
      // concatenate back (copies only; the other rows are untouched, bit for bit).
      const r = one ? 0 : tok.row;
      const sizes = [r, 1, ops.T - r - 1];
      const parts = ops.T === 1 ? [ops.n3] : b.split(ops.n3, 1, sizes.filter((k) => k > 0));
      const at = r > 0 ? 1 : 0;
      const row = parts[at]!;
      const edited = mode === 'override' ? u3 : mode === 'scale' ? b.op('Mul', [row, u3]) : b.op('Add', [b.op('Mul', [row, s3!]), u3]);
      const all = [...parts];
      all[at] = edited;
      n3x = all.length === 1 ? edited : b.op('Concat', all, { axis: 1 });
    } else {
      const one = () => b.constFloat(dt, [1], [], 'one');
      const shift =
        mode === 'override'
          ? b.op('Sub', [u3, ops.mean3!])
          : mode === 'scale'
            ? b.op('Mul', [b.op('Sub', [u3, one()]), ops.mean3!])
            : b.op('Add', [b.op('Mul', [b.op('Sub', [s3!, one()]), ops.mean3!]), u3]);
      n3x = b.op('Add', [ops.n3, b.op('Mul', [shift, ops.sel!])]);
    }
    const out = blk.neuronLayout === 'flat' ? b.op('Reshape', [n3x, b.constI64([-1, F])]) : n3x;
    intervened[l] = out;
    // Every original consumer of the neuron tensor now reads the intervened one.
    ed.insertOnEdge(blk.neuron, b.nodes, out);
  }
  ed.addInputs(newInputs);
  ed.addOutputs(newOutputs);
  return { model: ed.model(), inputs, scaleInputs, activations, intervened, token, layers };
}

/**
 * Add outputs `activation_<l>` [B,F]: block l's neuron row at the token (or the patch mean), for
 * the clean pass. Computed by the same ops the intervention uses, so feeding these values back as
 * overrides reproduces the model exactly.
 */
export function exposeNeuronRows(
  model: ModelProto,
  layout: ViTLayout,
  opts: { layers?: number[]; token?: TokenChoice } = {},
): { model: ModelProto; activations: Record<number, string>; layers: number[] } {
  const ed = new GraphEditor(model);
  const layers = checkLayers(layout, opts.layers);
  const tok = resolveToken(layout, opts.token ?? defaultToken(layout));
  const bd = batchDim(layout);
  const F = layout.facts.ffnWidth;
  const activations: Record<number, string> = {};
  for (const l of layers) {
    checkNeuron(ed.graph, layout, l);
    const dt = neuronDataType(model, layout, l);
    const b = ed.builder(`expose/${l}`);
    const ops = rowOps(b, layout, l, tok, dt);
    activations[l] = rowOut(b, ops, tok, b.reserve(`activation_${l}`));
    ed.addOutputs([tensorValueInfo(activations[l], dt, [bd, F])]);
    ed.insertAfter(layout.blocks[l]!.neuron, b.nodes);
  }
  return { model: ed.model(), activations, layers };
}
