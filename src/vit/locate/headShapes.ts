// Where an attention sub-block encodes its head count: follow the data from the block input
// through q/k/v (or the fused qkv) to the projection, tracking what every axis holds (batch,
// tokens, heads, head dim, the q/k/v split), and read each Reshape target, Split size and Slice
// bound on the way. Elements whose axis holds the heads are the constants a head pruner rewrites;
// the same walk tells which chunk of a fused qkv the graph reads as q, k and v.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import { attrInt, attrInts } from '../../onnx/attributes.js';
import type { ComputedHeadShape, HeadConstant, LinearRef } from '../types.js';
import { constInts, rankOf } from '../shapes.js';

/** What an axis factor is: batch, tokens, another fixed size, heads, head dim, or the q/k/v split (3). */
type AtomKind = 'B' | 'T' | 'X' | 'H' | 'D' | 'S';
interface Atom {
  k: AtomKind;
  /** Size; undefined while unknown (a symbolic batch). */
  n: number | undefined;
}
type Axis = Atom[];
interface Tracked {
  axes: Axis[];
  /** Which chunk of a fused qkv this tensor holds (after the split). */
  chunk?: number;
}

export interface HeadShapeInput {
  /** Residual stream entering the block and the model width. */
  input: string;
  width: number;
  tokens: number;
  /** Fixed batch size, when the input declares one. */
  batch?: number;
  heads: number;
  headDim: number;
  /** The linears writing q/k/v (one fused, or three) and the projection (where the walk ends). */
  qkv: LinearRef[];
  fused: boolean;
  proj: LinearRef;
  /** The attention region's nodes in topological order. */
  nodes: NodeProto[];
  softmax: NodeProto;
  /** Tensors of the sub-block before the Softmax's input (inclusive) and after its output (inclusive). */
  beforeSoftmax: Set<string>;
  afterSoftmax: Set<string>;
}

export interface HeadShapes {
  headConstants: HeadConstant[];
  computedShapes: ComputedHeadShape[];
  /** Nodes (by first output) on the attention path whose shape handling vitpath could not follow. */
  untraced: string[];
  /** Fused qkv: the role of each chunk, when the graph tells. */
  qkvOrder: ('q' | 'k' | 'v')[] | null;
}

const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Erf', 'Tanh', 'Relu', 'Gelu', 'Sigmoid', 'Softmax', 'LogSoftmax', 'Cast', 'Identity', 'Dropout',
  'Neg', 'Exp', 'Log', 'Abs', 'Clip', 'Max', 'Min', 'LayerNormalization', 'BatchNormalization', 'Reciprocal',
]);
const SHAPE_ONLY = new Set(['Shape', 'Size']);

const sizeOf = (axis: Axis): number | undefined => axis.reduce<number | undefined>((p, a) => (p === undefined || a.n === undefined ? undefined : p * a.n), 1);
const normAxis = (a: number, rank: number) => (a < 0 ? a + rank : a);

/** Right-aligned broadcast of tracked shapes: per axis, the operand's axis that is not size 1. */
function broadcast(shapes: Axis[][]): Axis[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Axis[] = [];
  for (let i = 0; i < rank; i++) {
    const cands = shapes.map((s) => s[s.length - rank + i]).filter((x): x is Axis => x !== undefined);
    out.push(cands.find((c) => sizeOf(c) !== 1) ?? cands[0] ?? []);
  }
  return out;
}

/**
 * Take atoms from `atoms` (starting at `at`, walking by `step`) whose product is `size`; splits a
 * fixed-size atom where the size falls inside it, and binds one unknown atom (a batch baked in a
 * constant). Returns the atoms (in axis order) and the next position, or undefined.
 */
function consume(atoms: Atom[], at: number, step: 1 | -1, size: number): { taken: Atom[]; next: number } | undefined {
  const taken: Atom[] = [];
  let i = at;
  const inRange = () => i >= 0 && i < atoms.length;
  if (size === 1) {
    while (inRange() && atoms[i]!.n === 1) {
      taken.push(atoms[i]!);
      i += step;
    }
    return { taken: step === 1 ? taken : taken.reverse(), next: i };
  }
  let prod = 1;
  let unknown: Atom | undefined;
  while (inRange()) {
    const a = atoms[i]!;
    if (a.n === undefined) {
      if (unknown) break;
      unknown = a;
    } else if (unknown) {
      if (size % (prod * a.n) !== 0) break;
      prod *= a.n;
    } else if (prod * a.n > size) {
      const part = size / prod;
      if (!Number.isInteger(part) || a.n % part !== 0 || (a.k !== 'X' && a.k !== 'T' && a.k !== 'B')) return undefined;
      // Split the atom: `part` goes to this dim, the rest stays for the next.
      const first: Atom = { k: a.k, n: part };
      const rest: Atom = { k: a.k, n: a.n / part };
      atoms.splice(i, 1, ...(step === 1 ? [first, rest] : [rest, first]));
      if (step === -1) i += 1;
      taken.push(first);
      i += step;
      prod = size;
      break;
    } else prod *= a.n;
    taken.push(a);
    i += step;
    if (!unknown && prod === size) break;
  }
  if (unknown) {
    if (size % prod !== 0) return undefined;
    unknown.n = size / prod;
  } else if (prod !== size) return undefined;
  return { taken: step === 1 ? taken : taken.reverse(), next: i };
}

/** The axes a Reshape to `target` gives (0 copies an axis, -1 or undefined is inferred); undefined when they cannot be matched. */
function reshapeAxes(inAxes: Axis[], target: (number | undefined)[], allowzero: boolean): Axis[] | undefined {
  const atoms = inAxes.flat();
  const starts: number[] = [];
  let acc = 0;
  for (const ax of inAxes) {
    starts.push(acc);
    acc += ax.length;
  }
  const out: (Axis | undefined)[] = target.map(() => undefined);
  const known = (j: number) => target[j] !== undefined && target[j] !== -1;
  let p = 0;
  let j = 0;
  for (; j < target.length && known(j); j++) {
    const t = target[j]!;
    if (t === 0 && !allowzero) {
      const src = inAxes[j];
      if (!src || starts[j] !== p) return undefined;
      out[j] = src;
      p += src.length;
      continue;
    }
    const r = consume(atoms, p, 1, t);
    if (!r) return undefined;
    out[j] = r.taken;
    p = r.next;
  }
  let q = atoms.length - 1;
  let k = target.length - 1;
  for (; k > j && known(k); k--) {
    const t = target[k]!;
    if (t === 0 && !allowzero) return undefined;
    const r = consume(atoms, q, -1, t);
    if (!r) return undefined;
    out[k] = r.taken;
    q = r.next;
  }
  if (j < target.length) {
    if (k !== j) return undefined; // two inferred dims
    out[j] = atoms.slice(p, q + 1);
  } else if (p <= q && atoms.slice(p, q + 1).some((a) => a.n !== 1)) return undefined;
  return out as Axis[];
}

/** The factors of an axis in words ('heads*headDim'), times `times` (Slice bounds of a later chunk). */
function describe(axis: Axis, times = 1): string {
  const name = (a: Atom) => (a.k === 'B' ? 'batch' : a.k === 'T' ? 'tokens' : a.k === 'H' ? 'heads' : a.k === 'D' ? 'headDim' : String(a.n));
  const words = axis.filter((a) => a.k === 'H' || a.n !== 1).map(name);
  return (times === 1 ? words : [String(times), ...words]).join('*');
}

/** Find the head-count constants and the fused qkv chunk roles of one attention sub-block. */
export function traceHeadShapes(g: Graph, s: HeadShapeInput): HeadShapes {
  const tracked = new Map<string, Tracked>();
  const constants = new Map<string, HeadConstant>();
  const computed = new Map<string, ComputedHeadShape>();
  const untraced: string[] = [];
  const roles: Partial<Record<'q' | 'k' | 'v', number>> = {};
  const result = (): HeadShapes => {
    let qkvOrder: HeadShapes['qkvOrder'] = null;
    if (s.fused && roles.q !== undefined && roles.k !== undefined && roles.v !== undefined && new Set([roles.q, roles.k, roles.v]).size === 3) {
      qkvOrder = [];
      for (const r of ['q', 'k', 'v'] as const) qkvOrder[roles[r]!] = r;
    }
    return { headConstants: [...constants.values()], computedShapes: [...computed.values()], untraced, qkvOrder };
  };

  const B: Atom = { k: 'B', n: s.batch };
  // The residual stream is [B, T, D] unless the graph says it is flat ([B*T, D]).
  const rank = rankOf(g, s.input) ?? 3;
  const X = (): Atom => ({ k: 'X', n: s.width });
  const T = (): Atom => ({ k: 'T', n: s.tokens });
  if (rank === 3) tracked.set(s.input, { axes: [[B], [T()], [X()]] });
  else if (rank === 2) tracked.set(s.input, { axes: [[B, T()], [X()]] });
  else {
    untraced.push(s.input);
    return result();
  }
  const { beforeSoftmax, afterSoftmax } = s;

  /** Integer values of a shape tensor: constants, and shape arithmetic over tracked tensors (undefined where unknown). */
  const evalInts = (name: string | undefined, depth = 0): (number | undefined)[] | undefined => {
    if (!name) return undefined;
    const c = constInts(g, name);
    if (c) return c;
    const p = g.producerOf(name);
    if (!p || depth > 32) return undefined;
    const at = (i: number) => evalInts(p.input[i], depth + 1);
    switch (p.opType) {
      case 'Shape': {
        const t = tracked.get(p.input[0]!);
        const dims = t ? t.axes.map(sizeOf) : g.shapeOf(p.input[0]!)?.dims?.map((d) => (typeof d === 'number' ? d : undefined));
        if (!dims) return undefined;
        const r = dims.length;
        const st = normAxis(attrInt(p, 'start', 0), r);
        const en = p.attribute.some((a) => a.name === 'end') ? normAxis(attrInt(p, 'end', r), r) : r;
        return dims.slice(Math.max(0, st), Math.min(r, en));
      }
      case 'Gather': {
        const data = at(0);
        const idx = constInts(g, p.input[1]);
        if (!data || !idx) return undefined;
        return idx.map((i) => data[i < 0 ? i + data.length : i]);
      }
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Cast':
      case 'Identity':
      case 'Reshape':
      case 'Floor':
      case 'Ceil':
        return at(0);
      case 'Concat': {
        const parts = p.input.map((_, i) => at(i));
        return parts.every((x) => x) ? parts.flatMap((x) => x!) : undefined;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Mod': {
        const a = at(0);
        const b = at(1);
        if (!a || !b) return undefined;
        const n = Math.max(a.length, b.length);
        const f = (x: number, y: number) => (p.opType === 'Add' ? x + y : p.opType === 'Sub' ? x - y : p.opType === 'Mul' ? x * y : p.opType === 'Mod' ? x - y * Math.floor(x / y) : Math.trunc(x / y));
        return Array.from({ length: n }, (_, i) => {
          const x = a[a.length === 1 ? 0 : i];
          const y = b[b.length === 1 ? 0 : i];
          return x === undefined || y === undefined ? undefined : f(x, y);
        });
      }
      case 'Slice': {
        const data = at(0);
        const st = g.opset < 10 ? attrInts(p, 'starts') : at(1);
        const en = g.opset < 10 ? attrInts(p, 'ends') : at(2);
        if (!data || !st || !en || st[0] === undefined || en[0] === undefined || (p.input[4] && constInts(g, p.input[4])?.[0] !== 1)) return undefined;
        const clamp = (v: number) => Math.max(0, Math.min(data.length, v < 0 ? v + data.length : v));
        return data.slice(clamp(st[0]), clamp(en[0]));
      }
      default:
        return undefined;
    }
  };

  /** Where element `index` of a node's shape input comes from: a constant element, or a computed one. */
  type Source = { const: true; tensor: string; reader: string; input: number; index: number } | { const: false; reader: string; input: number; index: number; tensor: string };
  const sourcesOf = (reader: NodeProto, input: number): { values: (number | undefined)[]; sources: Source[] } | undefined => {
    const name = reader.input[input];
    if (!name) return undefined;
    const c = constInts(g, name);
    if (c) return { values: c, sources: c.map((_, index) => ({ const: true, tensor: name, reader: reader.output[0]!, input, index })) };
    const cat = g.producerOf(name);
    if (cat?.opType === 'Concat' && attrInt(cat, 'axis', 0) === 0) {
      const values: (number | undefined)[] = [];
      const sources: Source[] = [];
      for (const [m, part] of cat.input.entries()) {
        const pc = constInts(g, part);
        const vals = pc ?? evalInts(part) ?? [undefined];
        vals.forEach((v, index) => {
          values.push(v);
          sources.push({ const: !!pc, tensor: part, reader: cat.output[0]!, input: m, index });
        });
      }
      return { values, sources };
    }
    const vals = evalInts(name);
    if (!vals) return undefined;
    return { values: vals, sources: vals.map((_, index) => ({ const: false, tensor: name, reader: reader.output[0]!, input, index })) };
  };

  /** A computed element that is (an Unsqueeze/Cast of) x * heads with `heads` a constant: that constant. */
  const headFactor = (tensor: string): { reader: string; input: number; tensor: string } | undefined => {
    let t = tensor;
    for (let k = 0; k < 6; k++) {
      const p = g.producerOf(t);
      if (!p) return undefined;
      if (['Unsqueeze', 'Squeeze', 'Cast', 'Identity'].includes(p.opType)) {
        t = p.input[0]!;
        continue;
      }
      if (p.opType !== 'Mul') return undefined;
      const m = p.input.findIndex((i) => {
        const v = constInts(g, i);
        return v?.length === 1 && v[0] === s.heads;
      });
      return m >= 0 ? { reader: p.output[0]!, input: m, tensor: p.input[m]! } : undefined;
    }
    return undefined;
  };

  const record = (axis: Axis, value: number | undefined, src: Source, times = 1) => {
    if (!axis.some((a) => a.k === 'H')) return;
    const counts = describe(axis, times);
    if (src.const) {
      if (value === undefined || value <= 0) return; // 0 copies, -1 infers: nothing encoded
      const key = `${src.reader}\u0000${src.input}\u0000${src.index}`;
      constants.set(key, { reader: src.reader, input: src.input, tensor: src.tensor, index: src.index, value, perHead: value / s.heads, counts });
      return;
    }
    // batch*heads computed as Mul(batch, heads): the heads factor is that constant.
    const others = axis.filter((a) => a.k !== 'H');
    const f = axis.filter((a) => a.k === 'H').length === 1 && others.length === 1 && others[0]!.n === undefined ? headFactor(src.tensor) : undefined;
    if (f) {
      constants.set(`${f.reader}\u0000${f.input}\u00000`, { reader: f.reader, input: f.input, tensor: f.tensor, index: 0, value: s.heads, perHead: 1, counts: 'heads' });
      return;
    }
    computed.set(`${src.reader}\u0000${src.input}\u0000${src.index}`, { reader: src.reader, input: src.input, index: src.index, counts });
  };
  const recordAttr = (n: NodeProto, attribute: string, index: number, value: number, axis: Axis, times = 1) => {
    if (value <= 0) return;
    constants.set(`${n.output[0]}\u0000${attribute}\u0000${index}`, { reader: n.output[0]!, attribute, index, value, perHead: value / s.heads, counts: describe(axis, times) });
  };

  /** The q/k/v split of a fused axis: chunk size, when `axis` starts with the split atom. */
  const chunkOf = (axis: Axis | undefined) => (axis && axis[0]?.k === 'S' ? sizeOf(axis)! / 3 : undefined);

  for (const n of s.nodes) {
    const ins = n.input.map((i) => (i ? tracked.get(i) : undefined));
    const isLinear = n.opType === 'MatMul' || n.opType === 'Gemm';
    if (isLinear && s.qkv.some((l) => n.input[0] === l.input && n.input[1] === l.weight)) {
      const x = ins[0];
      if (!x) {
        untraced.push(n.output[0]!);
        continue;
      }
      const last: Axis = s.fused ? [{ k: 'S', n: 3 }, { k: 'H', n: s.heads }, { k: 'D', n: s.headDim }] : [{ k: 'H', n: s.heads }, { k: 'D', n: s.headDim }];
      tracked.set(n.output[0]!, { axes: [...x.axes.slice(0, -1), last] });
      continue;
    }
    if (isLinear && n.input[1] === s.proj.weight) continue; // the projection ends the walk
    if (!ins.some((t) => t) || SHAPE_ONLY.has(n.opType)) continue;
    const fail = () => untraced.push(n.output[0] || n.opType);
    // Every op but the elementwise ones and MatMul follows its data input 0.
    if (!ins[0] && !ELEMENTWISE.has(n.opType) && n.opType !== 'MatMul') {
      fail();
      continue;
    }
    const x = ins[0] as Tracked;
    const set = (axes: Axis[], chunk = x?.chunk) => tracked.set(n.output[0]!, chunk === undefined ? { axes } : { axes, chunk });
    switch (n.opType) {
      case 'Transpose': {
        const r = x.axes.length;
        const perm = attrInts(n, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
        set(perm.map((a) => x.axes[a]!));
        break;
      }
      case 'Reshape': {
        const src = sourcesOf(n, 1);
        const axes = src ? reshapeAxes(x.axes, src.values, attrInt(n, 'allowzero', 0) === 1) : undefined;
        if (!axes || !src) {
          fail();
          break;
        }
        axes.forEach((ax, j) => record(ax, src.values[j], src.sources[j]!));
        set(axes);
        break;
      }
      case 'Flatten': {
        const a = normAxis(attrInt(n, 'axis', 1), x.axes.length);
        set([x.axes.slice(0, a).flat(), x.axes.slice(a).flat()]);
        break;
      }
      case 'Squeeze':
      case 'Unsqueeze': {
        const axesIn = attrInts(n, 'axes') ?? constInts(g, n.input[1]);
        if (n.opType === 'Squeeze') {
          const r = x.axes.length;
          const drop = new Set((axesIn ?? x.axes.map((ax, i) => (sizeOf(ax) === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => normAxis(a, r)));
          set(x.axes.filter((_, i) => !drop.has(i)));
        } else {
          if (!axesIn) {
            fail();
            break;
          }
          const r = x.axes.length + axesIn.length;
          const add = new Set(axesIn.map((a) => normAxis(a, r)));
          const out: Axis[] = [];
          let k = 0;
          for (let i = 0; i < r; i++) out.push(add.has(i) ? [] : x.axes[k++]!);
          set(out);
        }
        break;
      }
      case 'Gather': {
        const idx = constInts(g, n.input[1]);
        if (!idx || idx.length !== 1) {
          fail();
          break;
        }
        const a = normAxis(attrInt(n, 'axis', 0), x.axes.length);
        const scalar = (rankOf(g, n.input[1]!) ?? 0) === 0;
        const ax = x.axes[a]!;
        const chunk = ax.length === 1 && ax[0]!.k === 'S' ? (idx[0]! < 0 ? idx[0]! + 3 : idx[0]!) : x.chunk;
        const axes = scalar ? x.axes.filter((_, i) => i !== a) : x.axes.map((v, i) => (i === a ? [] : v));
        set(axes, chunk);
        break;
      }
      case 'Slice': {
        const old = g.opset < 10;
        const starts = old ? attrInts(n, 'starts') : evalInts(n.input[1]);
        const ends = old ? attrInts(n, 'ends') : evalInts(n.input[2]);
        const axesAt = old ? attrInts(n, 'axes') : n.input[3] ? constInts(g, n.input[3]) : undefined;
        if (!starts || !ends) {
          fail();
          break;
        }
        const axesList = axesAt ?? starts.map((_, i) => i);
        const axes = [...x.axes];
        let chunk = x.chunk;
        let ok = true;
        axesList.forEach((a0, i) => {
          const a = normAxis(a0, axes.length);
          const ax = axes[a]!;
          const size = sizeOf(ax);
          const st = starts[i];
          const en = ends[i];
          if (st === 0 && en !== undefined && size !== undefined && en >= size) return; // the whole axis
          const c = chunkOf(ax);
          if (c === undefined || st === undefined || en === undefined || en - st !== c || st % c !== 0) {
            ok = false;
            return;
          }
          chunk = st / c;
          const rest = ax.slice(1);
          axes[a] = rest;
          // The bounds are multiples of heads*headDim.
          for (const [k, v] of [[1, st], [2, en]] as const) {
            if (size !== undefined && v >= size) continue; // an open end stays valid
            if (old) recordAttr(n, k === 1 ? 'starts' : 'ends', i, v, rest, v / c);
            else {
              const src = sourcesOf(n, k);
              if (src) record(rest, v, src.sources[i]!, v / c);
            }
          }
        });
        if (!ok) {
          fail();
          break;
        }
        set(axes, chunk);
        break;
      }
      case 'Split': {
        const a = normAxis(attrInt(n, 'axis', 0), x.axes.length);
        const ax = x.axes[a]!;
        const c = chunkOf(ax);
        const parts = n.input[1] ? evalInts(n.input[1]) : attrInts(n, 'split');
        if (c === undefined || n.output.length !== 3 || (parts && !parts.every((v) => v === c))) {
          fail();
          break;
        }
        const rest = ax.slice(1);
        if (parts && !n.input[1]) parts.forEach((v, i) => recordAttr(n, 'split', i, v!, rest));
        else if (parts) {
          const src = sourcesOf(n, 1)!;
          parts.forEach((v, i) => record(rest, v, src.sources[i]!));
        }
        n.output.forEach((o, i) => tracked.set(o, { axes: x.axes.map((v, j) => (j === a ? rest : v)), chunk: i }));
        break;
      }
      case 'MatMul': {
        const [a, b] = ins;
        if (!a || !b || a.axes.length < 2 || b.axes.length < 2) {
          fail();
          break;
        }
        const lead = broadcast([a.axes.slice(0, -2), b.axes.slice(0, -2)]);
        // The scores read q (left) and k (right); the context reads the probabilities and v (right).
        if (beforeSoftmax.has(n.output[0]!)) {
          if (a.chunk !== undefined) roles.q = a.chunk;
          if (b.chunk !== undefined) roles.k = b.chunk;
        } else if (afterSoftmax.has(n.input[0]!) && b.chunk !== undefined) roles.v = b.chunk;
        tracked.set(n.output[0]!, { axes: [...lead, a.axes[a.axes.length - 2]!, b.axes[b.axes.length - 1]!] });
        break;
      }
      case 'ReduceMean':
      case 'ReduceSum':
      case 'ReduceMax': {
        const r = x.axes.length;
        const axesIn = (attrInts(n, 'axes') ?? constInts(g, n.input[1]) ?? x.axes.map((_, i) => i)).map((a) => normAxis(a, r));
        const keep = attrInt(n, 'keepdims', 1) === 1;
        set(keep ? x.axes.map((v, i) => (axesIn.includes(i) ? [] : v)) : x.axes.filter((_, i) => !axesIn.includes(i)));
        break;
      }
      default:
        if (ELEMENTWISE.has(n.opType)) {
          set(broadcast(ins.filter((t): t is Tracked => !!t).map((t) => t.axes)), ins.find((t) => t?.chunk !== undefined)?.chunk);
        } else fail();
    }
  }
  return result();
}
