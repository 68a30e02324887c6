// Layer-alone samples start from clean states: a sample whose only edit is at block l's neuron row
// needs nothing of the model below that row but its image's clean tensors there, the same for every
// such sample. At each joined block l (ascending) such samples join the batch: every tensor t of the
// block's state (in a ViT: the residual stream the MLP branch is added to, and the neuron tensor)
//   t'  =  Concat(t, Gather(state_t, join_l))      on the batch axis, for the readers of t given
// state_t: [images_l, ...t's other dims], the clean values (a forward run computes them once per
// image); join_l: int64 [S_l], each joining sample's row in the states. Every tensor downstream then
// holds the rows of the samples fed at the bottom followed by the groups joined so far, in join
// order, so the edit inputs of block l take one row per such sample. A group is empty when its
// join_l is. Nothing downstream of a state depends on an edit below it, so a backward pass through
// the result stops at each group's own row.
import { DataType, type ModelProto, type NodeProto } from '../proto.js';
import { valueInfoShape } from '../graph.js';
import { tensorValueInfo } from '../builder.js';
import { GraphEditor } from '../edit.js';

export interface JoinTensor {
  tensor: string;
  /** Dims after the batch axis. */
  dims: number[];
  /** The readers that take the joined rows (default every reader). */
  readers?: NodeProto[];
}

export interface JoinStatesOptions {
  /** Per joined block (ascending): the tensors joined there. */
  joins: { block: number; tensors: JoinTensor[] }[];
  /** Inputs whose first axis counts the rows at some block: their batch dims get these symbols. */
  rowInputs?: { name: string; dim: string }[];
}

export interface JoinedStates {
  model: ModelProto;
  /** Per joined block: one state input per joined tensor (in the given order), and the join index input. */
  states: Record<number, string[]>;
  indices: Record<number, string>;
  /** The tensors the rewrite added (inputs, gathers, joins): dims with null for the row axis, for shape facts. */
  added: { name: string; dataType: DataType; dims: (number | null)[] }[];
}

/** Null when a joined tensor is not computed by a node or is itself a graph output. */
export function joinStates(model: ModelProto, o: JoinStatesOptions): JoinedStates | null {
  if (o.joins.length === 0) return null;
  const ed = new GraphEditor(model);
  const g = ed.graph;
  const b = ed.builder('join');
  const states: Record<number, string[]> = {};
  const indices: Record<number, string> = {};
  const added: JoinedStates['added'] = [];
  const inputs = [];
  for (const j of o.joins) {
    const index = b.reserve(`join_${j.block}`);
    indices[j.block] = index;
    inputs.push(tensorValueInfo(index, DataType.INT64, [`samples_${j.block}`]));
    added.push({ name: index, dataType: DataType.INT64, dims: [null] });
    states[j.block] = [];
    j.tensors.forEach((t, k) => {
      if (!g.producerOf(t.tensor) || g.outputNames.includes(t.tensor)) return;
      const dt = g.shapeOf(t.tensor)?.dataType ?? DataType.FLOAT;
      const state = b.reserve(`state_${j.block}_${k}`);
      states[j.block]!.push(state);
      inputs.push(tensorValueInfo(state, dt, [`images_${j.block}`, ...t.dims]));
      const before = b.nodes.length;
      const gathered = b.op('Gather', [state, index], { axis: 0 });
      const joined = b.op('Concat', [t.tensor, gathered], { axis: 0 });
      for (const name of [state, gathered, joined]) added.push({ name, dataType: dt, dims: [null, ...t.dims] });
      ed.renameConsumers(t.tensor, joined, t.readers);
      ed.insertAfter(t.tensor, b.nodes.slice(before));
    });
    if (states[j.block]!.length !== j.tensors.length) return null;
  }
  ed.addInputs(inputs);
  const dims = new Map((o.rowInputs ?? []).map((r) => [r.name, r.dim]));
  ed.mapValues((v, where) => {
    if (where !== 'input' || !dims.has(v.name)) return v;
    const sh = valueInfoShape(v);
    if (!sh.dims || sh.dataType === undefined) return v;
    return tensorValueInfo(v.name, sh.dataType, sh.dims.map((d, i) => (i === 0 ? dims.get(v.name)! : d)));
  });
  return { model: ed.model(), states, indices, added };
}

/**
 * Reshapes that infer a static size (-1 where the output's size on that axis is known): ONNX
 * Runtime cannot infer it from an empty input (0 rows: a group with no samples in a joined run),
 * so each such -1 is written out from the probe facts (per node: a shape shared by several
 * Reshapes is forked). Returns how many shapes were pinned.
 */
export function pinReshapes(model: ModelProto, facts: ReadonlyMap<string, { dims: (number | null)[] }>): { model: ModelProto; pinned: number } {
  const ed = new GraphEditor(model);
  let pinned = 0;
  for (const n of ed.graph.nodes) {
    if (n.opType !== 'Reshape' || !n.input[1]) continue;
    const shape = ed.constantValue(n.input[1]);
    const out = facts.get(n.output[0]!)?.dims;
    if (!shape || !out || shape.dims.length !== 1 || shape.dims[0] !== out.length) continue;
    const v = Array.from(shape.data as BigInt64Array, Number);
    const k = v.indexOf(-1);
    if (k < 0 || out[k] === null || out[k] === undefined) continue;
    v[k] = out[k]!;
    ed.forkConstant(n, 1, { data: BigInt64Array.from(v.map(BigInt)), dims: [v.length], dataType: DataType.INT64 });
    pinned++;
  }
  return { model: pinned ? ed.model() : model, pinned };
}
