// Shape folding: every shape subgraph (Shape -> Gather -> Div/Mul -> Concat/Unsqueeze -> ...)
// whose value is fixed once the non-batch dims of the inputs are known is replaced by constants,
// leaving only the batch size symbolic. Reshape targets that hold the batch become constants with
// 0 (copy) or -1 (infer) on the batch axis; Slice bounds that run to a batch-dependent end become
// open; other batch-dependent shape values (Expand to the batch, ...) are rebuilt from the image
// input's batch size alone. Graph outputs, data tensors and nodes with unknown shapes are untouched.
import { DataType, type ModelProto, type NodeProto } from '../proto.js';
import type { Graph } from '../graph.js';
import { GraphEditor } from '../edit.js';
import { attrInt } from '../attributes.js';
import { hostToTensor } from '../tensor.js';
import { inferShapes, type InferOptions, type ShapeInference } from '../shapes/infer.js';
import { BATCH, type Dim, type SymInt, dimEq, isLin, symCompare, symEq, symText, toSym } from '../shapes/sym.js';
import { isConcrete, isIntType, toHost, type Val } from '../shapes/value.js';
import { BatchSource } from './batchSource.js';

export interface FoldOptions extends InferOptions {
  /** A shape inference of `model` already made with the same options (saves a pass). */
  inference?: ShapeInference;
}

export interface FoldRefusal {
  /** The node left computed (name, or its first output when unnamed). */
  node: string;
  op: string;
  reason: string;
}

export interface FoldResult {
  model: ModelProto;
  /** Nodes removed because their outputs became constants. */
  removed: number;
  /** Tensors now fed as constants to the nodes that remain. */
  constants: string[];
  /** Batch-dependent shape values and how they are now given (constant with 0/-1, or rebuilt from the batch size). */
  batchShapes: { tensor: string; value: string; consumer: string; as: 'constant' | 'batch-source' }[];
  /** Shape computations left as they were, with the reason (root causes only). */
  refused: FoldRefusal[];
  /** Tensors whose dims hold the batch size B on exactly one axis: that axis. */
  batchAxes: Map<string, number>;
  /** The inference the fold used (of the input model). */
  inference: ShapeInference;
}

const INT64_MAX = 2n ** 63n - 1n;

/** Ops whose integer outputs are shape arithmetic when their inputs are (for refusal reports). */
const SHAPE_ARITH = new Set([
  'Shape', 'Size', 'Gather', 'Slice', 'Concat', 'Unsqueeze', 'Squeeze', 'Reshape', 'Cast', 'Add', 'Sub', 'Mul', 'Div', 'Mod',
  'Equal', 'Where', 'ConstantOfShape', 'Range', 'Expand', 'Tile', 'Max', 'Min', 'Neg', 'Abs', 'ReduceProd', 'ReduceSum',
  'ReduceMax', 'ReduceMin', 'Identity', 'Floor', 'Ceil', 'Sqrt', 'Less', 'Greater', 'Not', 'Split', 'Transpose', 'Flatten',
]);

/** Element types a folded value can be written back as. */
const ENCODABLE = new Set<DataType>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.INT64, DataType.INT32, DataType.INT8, DataType.UINT8, DataType.BOOL]);

function encodable(v: Val | undefined): boolean {
  if (!v || !ENCODABLE.has(v.dataType)) return false;
  return isConcrete(v) || isIntType(v.dataType);
}

function nodeLabel(n: NodeProto): string {
  return n.name || n.output[0] || n.opType;
}

/**
 * A constant Reshape target for output dims `out` of input dims `x`: numbers where fixed, 0 where
 * a batch-dependent dim is copied from the same input axis, -1 for at most one other; undefined
 * when that is not possible.
 */
export function reshapeConstant(x: readonly Dim[] | undefined, out: readonly Dim[], allowzero: boolean): bigint[] | undefined {
  const t: bigint[] = [];
  let minus = 0;
  for (let i = 0; i < out.length; i++) {
    const d = out[i]!;
    if (!isLin(d)) {
      if (d === 0 && !allowzero && !(x && x[i] === 0)) return undefined;
      t.push(BigInt(d));
      continue;
    }
    if (!allowzero && x && i < x.length && dimEq(x[i]!, d)) t.push(0n);
    else {
      minus++;
      t.push(-1n);
    }
  }
  return minus <= 1 ? t : undefined;
}

/** Slice starts/ends as constants when every batch-dependent bound reaches the end of its axis. */
function sliceBoundsConstant(inf: ShapeInference, node: NodeProto, vals: SymInt[]): bigint[] | undefined {
  const x = inf.infos.get(node.input[0]!)?.dims;
  if (!x) return undefined;
  const axesV = node.input[3] ? inf.infos.get(node.input[3])?.value : undefined;
  const stepsV = node.input[4] ? inf.infos.get(node.input[4])?.value : undefined;
  if ((node.input[3] && !axesV) || (node.input[4] && !stepsV)) return undefined;
  const axes = axesV ? axesV.data.map((e) => Number(e as bigint)) : vals.map((_, i) => i);
  const steps = stepsV ? stepsV.data.map((e) => Number(e as bigint)) : vals.map(() => 1);
  const out: bigint[] = [];
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i]!;
    if (!isLin(v)) {
      out.push(v);
      continue;
    }
    const axis = axes[i]! < 0 ? axes[i]! + x.length : axes[i]!;
    const d = x[axis];
    if (d === undefined || steps[i]! <= 0) return undefined;
    const c = symCompare(v, toSym(d));
    if (c === undefined || c < 0) return undefined;
    out.push(INT64_MAX); // at or past the end for every batch size
  }
  return out;
}

/** The graph input whose axis 0 is the batch size, if any. */
function batchInput(inf: ShapeInference, g: Graph): string | undefined {
  return g.inputNames.find((i) => {
    const d = inf.infos.get(i)?.dims;
    return d && d.length > 0 && symEq(d[0]!, BATCH);
  });
}

/** Fold shape subgraphs of `model` (see the file comment). The input model is not modified. */
export function foldShapes(model: ModelProto, opts: FoldOptions = {}): FoldResult {
  const inf = opts.inference ?? inferShapes(model, opts);
  const ed = new GraphEditor(model);
  const g = ed.graph;
  const outputs = new Set(g.outputNames);
  const valueOf = (t: string): Val | undefined => inf.infos.get(t)?.value;

  const folded = new Set<NodeProto>();
  for (const n of g.nodes) {
    if (n.opType === 'Constant') continue;
    const outs = n.output.filter((o) => o);
    if (outs.length === 0 || outs.some((o) => outputs.has(o) || !encodable(valueOf(o)))) continue;
    folded.add(n);
  }
  const producedByFolded = (t: string) => {
    const p = g.producerOf(t);
    return !!p && folded.has(p);
  };

  const b = ed.builder('vp_fold');
  const src = (() => {
    const input = batchInput(inf, g);
    return input ? new BatchSource(b, input) : undefined;
  })();
  const constants: string[] = [];
  const batchShapes: FoldResult['batchShapes'] = [];

  const consumersOf = (t: string) => g.consumersOf(t).filter((c) => !folded.has(c));
  for (const t of new Set([...g.nodes.filter((n) => !folded.has(n)).flatMap((n) => n.input)])) {
    if (!t || !producedByFolded(t)) continue;
    const v = valueOf(t)!;
    if (isConcrete(v)) {
      const h = toHost(v)!;
      ed.addInitializers([hostToTensor(t, h.data, h.dims, h.dataType)]);
      constants.push(t);
      continue;
    }
    const elems = v.data as SymInt[];
    const text = `[${elems.map(symText).join(',')}]`;
    let needsSource = false;
    for (const c of consumersOf(t)) {
      c.input.forEach((inp, j) => {
        if (inp !== t) return;
        let constant: bigint[] | undefined;
        if (c.opType === 'Reshape' && j === 1 && v.dims.length === 1) {
          const out = inf.infos.get(c.output[0]!)?.dims;
          const allowzero = g.opset >= 14 && attrInt(c, 'allowzero', 0) === 1;
          if (out) constant = reshapeConstant(inf.infos.get(c.input[0]!)?.dims, out, allowzero);
        } else if (c.opType === 'Slice' && (j === 1 || j === 2) && g.opset >= 10) {
          constant = sliceBoundsConstant(inf, c, elems);
        }
        if (constant && isIntType(v.dataType)) {
          const name = b.fresh(`${t}_const`);
          const data = BigInt64Array.from(constant);
          const h = toHost({ dataType: v.dataType, dims: [...v.dims], data: [...data] });
          ed.addInitializers([hostToTensor(name, h!.data, h!.dims, h!.dataType)]);
          ed.editNode(c, (cur) => ({ input: cur.input.map((x, k) => (k === j ? name : x)) }));
          batchShapes.push({ tensor: t, value: text, consumer: nodeLabel(c), as: 'constant' });
        } else {
          needsSource = true;
          batchShapes.push({ tensor: t, value: text, consumer: nodeLabel(c), as: 'batch-source' });
        }
      });
    }
    if (needsSource) {
      if (!src) throw new Error(`foldShapes: ${t} depends on the batch size but no input has it`); // B comes from an input
      src.tensor(elems, v.dims, v.dataType, t);
    }
  }
  // Batch-source nodes go first (they read only the input); folded nodes go, and then whatever
  // shape computation or constant nothing reads any more.
  ed.prepend(b.nodes);
  for (const n of folded) ed.removeNode(n);
  const dead = ed.removeDeadNodes((n) => n.opType === 'Constant' || n.opType === 'Shape' || n.opType === 'Size' || n.output.every((o) => !o || inf.infos.get(o)?.value || isIntType(inf.infos.get(o)?.dataType ?? 0)));
  const removed = folded.size + dead;
  const out = ed.model();

  const batchAxes = new Map<string, number>();
  for (const [name, info] of inf.infos) {
    const d = info.dims;
    if (!d) continue;
    const lins = d.flatMap((x, i) => (isLin(x) ? [i] : []));
    if (lins.length === 1 && symEq(d[lins[0]!]!, BATCH)) batchAxes.set(name, lins[0]!);
  }
  return { model: out, removed, constants, batchShapes, refused: refusals(g, inf, folded), batchAxes, inference: inf };
}

/** Shape computations left computed: root causes (an unknown shape value whose inputs are not unknown shape values). */
function refusals(g: Graph, inf: ShapeInference, folded: Set<NodeProto>): FoldRefusal[] {
  const shapeDerived = new Set<string>();
  for (const n of inf.order) {
    const fromShape = n.opType === 'Shape' || n.opType === 'Size' || (SHAPE_ARITH.has(n.opType) && n.input.some((i) => shapeDerived.has(i)) && !['Reshape', 'Expand', 'Tile', 'Slice', 'Gather'].includes(n.opType)) || (['Reshape', 'Expand', 'Tile', 'Slice', 'Gather'].includes(n.opType) && shapeDerived.has(n.input[0] ?? ''));
    if (fromShape) for (const o of n.output) if (o) shapeDerived.add(o);
  }
  const out: FoldRefusal[] = [];
  for (const n of inf.order) {
    if (folded.has(n) || !n.output.some((o) => shapeDerived.has(o))) continue;
    if (n.output.every((o) => !o || inf.infos.get(o)?.value)) continue; // known (kept as a graph output)
    const unknownShapeInput = n.input.some((i) => i && shapeDerived.has(i) && !inf.infos.get(i)?.value);
    if (unknownShapeInput) continue;
    let reason: string;
    if (n.opType === 'Shape' || n.opType === 'Size') {
      const producer = g.producerOf(n.input[0]!);
      reason = `the dims of ${n.input[0]} are not known${producer ? ` (from ${producer.opType} "${nodeLabel(producer)}")` : ''}`;
    } else {
      const ins = n.input.map((i) => (i ? inf.infos.get(i)?.value : undefined));
      reason = ins.some((v) => v && !isConcrete(v)) ? 'its value would not be linear in the batch size' : `${n.opType} of these inputs is not evaluated`;
    }
    out.push({ node: nodeLabel(n), op: n.opType, reason });
  }
  return out;
}
