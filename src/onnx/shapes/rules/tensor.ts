// Shape rules of the ops that make, read or move tensors: Constant, Shape, Size, ConstantOfShape,
// Range, Identity, Cast, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Slice,
// Gather, Expand, Tile, Pad. Dims follow the ONNX spec of each opset; values are computed for
// small tensors (shape arithmetic), batch-dependent integers included.
import { DataType } from '../../proto.js';
import { attrInt, attrInts, attrTensor, getAttr } from '../../attributes.js';
import { tensorToHost, numel } from '../../tensor.js';
import { registerShapeRule, type Repair, type RuleContext, type TInfo } from '../rule.js';
import {
  type Dim,
  type SymInt,
  dimEq,
  dimProduct,
  dimsText,
  isLin,
  symAdd,
  symCompare,
  symDiv,
  symEq,
  symMul,
  symNeg,
  symRange,
  symSub,
  symAt,
  symAlways,
  toDim,
  toSym,
} from '../sym.js';
import { castElem, clampNumber, fromHost, isFloatType, isIntType, scalarVal, type Elem, type Val } from '../value.js';
import { concatVal, expandVal, gatherVal, pickVal, sliceRange, tileVal, transposeVal } from '../kernels.js';
import { axisOf, broadcastDims, hasInput, inDims, inInts, inSyms, inType, inVal, intsParam, outInfo, sameAsInput, valueFits } from './util.js';

/** Slice bounds at or beyond this read as "to the end" of a batch-dependent axis. */
const OPEN = 2 ** 31 - 1;

// ---- Constant ----
registerShapeRule('Constant', (ctx) => {
  const n = ctx.node;
  const t = attrTensor(n, 'value');
  if (t) {
    let v: Val | undefined;
    try {
      v = fromHost(tensorToHost(t));
    } catch {
      v = undefined;
    }
    return [outInfo(ctx, t.dataType as DataType, t.dims.map(Number), v)];
  }
  const a = n.attribute[0];
  if (!a) return [undefined];
  switch (a.name) {
    case 'value_float':
      return [outInfo(ctx, DataType.FLOAT, [], scalarVal(DataType.FLOAT, Math.fround(a.f)))];
    case 'value_floats':
      return [outInfo(ctx, DataType.FLOAT, [a.floats.length], { dataType: DataType.FLOAT, dims: [a.floats.length], data: a.floats.map((f) => Math.fround(f)) })];
    case 'value_int':
      return [outInfo(ctx, DataType.INT64, [], scalarVal(DataType.INT64, a.i))];
    case 'value_ints':
      return [outInfo(ctx, DataType.INT64, [a.ints.length], { dataType: DataType.INT64, dims: [a.ints.length], data: [...a.ints] })];
    default:
      return [undefined];
  }
});

// ---- Shape, Size ----
registerShapeRule('Shape', (ctx) => {
  const d = inDims(ctx, 0);
  if (!d) return [{ dataType: DataType.INT64 }];
  const r = d.length;
  let start = ctx.opset >= 15 ? attrInt(ctx.node, 'start', 0) : 0;
  let end = ctx.opset >= 15 ? attrInt(ctx.node, 'end', r) : r;
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = Math.min(Math.max(start, 0), r);
  end = Math.min(Math.max(end, 0), r);
  const part = d.slice(start, Math.max(start, end));
  return [outInfo(ctx, DataType.INT64, [part.length], { dataType: DataType.INT64, dims: [part.length], data: part.map(toSym) })];
});

registerShapeRule('Size', (ctx) => {
  const d = inDims(ctx, 0);
  const p = d ? dimProduct(d) : undefined;
  return [p === undefined ? { dataType: DataType.INT64, dims: [] } : outInfo(ctx, DataType.INT64, [], scalarVal(DataType.INT64, p))];
});

// ---- ConstantOfShape ----
registerShapeRule('ConstantOfShape', (ctx) => {
  const t = attrTensor(ctx.node, 'value');
  let fill: Val = scalarVal(DataType.FLOAT, 0);
  if (t) {
    const v = fromHost(tensorToHost(t));
    if (!v || v.data.length !== 1) return [{ dataType: t.dataType as DataType }];
    fill = v;
  }
  const shape = inSyms(ctx, 0);
  if (!shape) return [{ dataType: fill.dataType }];
  const dims = shape.map(toDim);
  if (dims.some((x) => typeof x === 'number' && x < 0)) {
    ctx.conflict(`ConstantOfShape gets a negative dim ${dimsText(dims)}`);
    return [{ dataType: fill.dataType }];
  }
  if (!valueFits(ctx, dims)) return [{ dataType: fill.dataType, dims }];
  const n = numel(dims as number[]);
  return [outInfo(ctx, fill.dataType, dims, { dataType: fill.dataType, dims: dims as number[], data: new Array<Elem>(n).fill(fill.data[0]!) })];
});

// ---- Range ----
registerShapeRule('Range', (ctx) => {
  const dt = inType(ctx, 0);
  const [s, l, d] = [inVal(ctx, 0), inVal(ctx, 1), inVal(ctx, 2)];
  if (!s || !l || !d || s.data.length !== 1 || l.data.length !== 1 || d.data.length !== 1 || dt === undefined) return [{ dataType: dt, dims: undefined }];
  const [start, limit, delta] = [s.data[0]!, l.data[0]!, d.data[0]!];
  if (isFloatType(dt)) {
    const [a, b, c] = [start, limit, delta].map(Number) as [number, number, number];
    if (c === 0) return [{ dataType: dt }];
    const n = Math.max(Math.ceil((b - a) / c), 0);
    const dims = [n];
    if (!valueFits(ctx, dims)) return [{ dataType: dt, dims }];
    // Accumulated in the element type (value += delta), as ONNX Runtime computes it; the spec's
    // start + i * delta gives the same values whenever they are exact.
    const data: Elem[] = [];
    const step = castElem(dt, c) as number;
    let value = castElem(dt, a) as number;
    for (let i = 0; i < n; i++) {
      data.push(value);
      value = castElem(dt, value + step) as number;
    }
    return [outInfo(ctx, dt, dims, { dataType: dt, dims, data })];
  }
  if (isLin(delta) || delta === 0n || typeof delta === 'number') return [{ dataType: dt }];
  const diff = symSub(toSym(limit as SymInt), toSym(start as SymInt));
  if (isLin(diff) || isLin(start)) {
    // Batch-dependent bounds: the length is known for a unit step only (and must be >= 0 for every B).
    if (delta !== 1n && delta !== -1n) return [{ dataType: dt }];
    const len = delta === 1n ? diff : symNeg(diff);
    if (!isLin(len)) return [{ dataType: dt, dims: [Number(len > 0n ? len : 0n)] }];
    const lo = symRange(len)[0];
    return [{ dataType: dt, dims: lo !== null && lo >= 0n ? [len] : undefined }];
  }
  const dv = delta as bigint;
  const num = diff as bigint;
  let n = num / dv;
  if (n * dv !== num && (num > 0n) === (dv > 0n)) n += 1n; // ceil for the positive quotient
  if (n < 0n) n = 0n;
  const dims = [Number(n)];
  if (!valueFits(ctx, dims)) return [{ dataType: dt, dims }];
  const data: Elem[] = [];
  for (let i = 0n; i < n; i++) data.push(castElem(dt, (start as bigint) + i * dv));
  return [outInfo(ctx, dt, dims, { dataType: dt, dims, data })];
});

// ---- Identity-like ----
registerShapeRule('Identity', (ctx) => [ctx.ins[0] ? { ...ctx.ins[0] } : undefined]);
registerShapeRule('Dropout', (ctx) => {
  const x = ctx.ins[0];
  const mask: TInfo = { dataType: DataType.BOOL, dims: inDims(ctx, 0) };
  // Inference: output = input (a training_mode input set to true is not folded).
  if (hasInput(ctx, 2) && !(inInts(ctx, 2)?.[0] === 0)) return [{ dataType: inType(ctx, 0), dims: inDims(ctx, 0) }, mask];
  return [x ? { ...x } : undefined, mask];
});

// ---- Cast, CastLike ----
function castInfo(ctx: RuleContext, to: DataType): TInfo {
  const v = inVal(ctx, 0);
  if (!v) return sameAsInput(ctx, to);
  const data: Elem[] = [];
  for (const e of v.data) {
    if (isLin(e)) {
      if (isIntType(to) && isIntType(v.dataType)) data.push(e);
      else if (to === DataType.BOOL && symCompare(e, 0n) !== undefined) data.push(symCompare(e, 0n) === 0 ? 0n : 1n);
      else return sameAsInput(ctx, to);
    } else data.push(castElem(to, e));
  }
  return outInfo(ctx, to, undefined, { dataType: to, dims: [...v.dims], data });
}
registerShapeRule('Cast', (ctx) => {
  const to = attrInt(ctx.node, 'to');
  if (to === undefined) return [undefined];
  return [castInfo(ctx, to as DataType)];
});
registerShapeRule('CastLike', (ctx) => {
  const to = inType(ctx, 1);
  return [to === undefined ? sameAsInput(ctx) : castInfo(ctx, to)];
});

// ---- Reshape ----

/** Candidate fixes of a target baked at batch 1 (see Repair); the preferred first. */
function reshapeCandidates(ctx: RuleContext, inDimsList: Dim[], target: number[]): Repair[] {
  const j = inDimsList.findIndex((d) => isLin(d));
  if (j < 0 || inDimsList.some((d, k) => k !== j && isLin(d))) return [];
  const L = inDimsList[j] as { a: bigint; c: bigint };
  if (L.c !== 0n || L.a <= 0n) return [];
  const A = (inDimsList.slice(0, j) as number[]).reduce((p, x) => p * x, 1);
  const a = Number(L.a);
  // B sits somewhere inside input dim j: a = f * g with f elements of that dim outside of B.
  const outside: number[] = [];
  for (let f = 1; f <= a; f++) if (a % f === 0) outside.push(A * f);
  const cands: { axis: number; rank: number }[] = [];
  let pre = 1;
  for (let i = 0; i < target.length; i++) {
    const t = target[i]!;
    if (t > 0 && outside.some((Af) => Af % pre === 0 && t % (Af / pre) === 0)) {
      const rank = t === 1 && i === j ? 0 : t === 1 ? 1 : i === j ? 2 : 3;
      cands.push({ axis: i, rank });
    }
    pre *= t;
  }
  cands.sort((x, y) => x.rank - y.rank || x.axis - y.axis);
  return cands.map((c) => ({ kind: 'reshape', node: ctx.node, target: target.map((t, i) => (i === c.axis ? -1n : BigInt(t))), axis: c.axis }));
}

/** Output dims of Reshape(x: dims, target) per the spec (0 copies unless allowzero, one -1 inferred). */
export function reshapeDims(dims: Dim[], target: SymInt[], allowzero: boolean): { dims?: Dim[]; mismatch?: boolean } {
  const out: (Dim | undefined)[] = [];
  let infer = -1;
  for (let i = 0; i < target.length; i++) {
    const t = target[i]!;
    if (isLin(t)) out.push(t);
    else if (t === 0n && !allowzero) {
      if (i >= dims.length) return {};
      out.push(dims[i]!);
    } else if (t === -1n) {
      if (infer >= 0) return {};
      infer = i;
      out.push(undefined);
    } else if (t < -1n) return {};
    else out.push(Number(t));
  }
  const total = dimProduct(dims);
  if (total === undefined) return {};
  const known = dimProduct(out.filter((d): d is Dim => d !== undefined));
  if (known === undefined) return {};
  if (infer >= 0) {
    let q = symDiv(total, known);
    if (q === undefined && isLin(total) && isLin(known) && total.c === 0n && known.c === 0n && total.a % known.a === 0n) q = total.a / known.a;
    if (q === undefined) return { mismatch: true };
    if (!symEq(symMul(q, known) ?? -1n, total)) return { mismatch: true };
    out[infer] = toDim(q);
    return { dims: out as Dim[] };
  }
  if (!symEq(known, total)) return { mismatch: true };
  return { dims: out as Dim[] };
}

registerShapeRule('Reshape', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const target: SymInt[] | undefined = ctx.opset < 5 ? attrInts(ctx.node, 'shape')?.map(BigInt) : inSyms(ctx, 1);
  if (!x || !target) return [{ dataType: dt, dims: target && !x ? undefined : undefined }];
  const allowzero = ctx.opset >= 14 && attrInt(ctx.node, 'allowzero', 0) === 1;
  const r = reshapeDims(x, target, allowzero);
  if (r.dims) {
    const v = inVal(ctx, 0);
    return [outInfo(ctx, dt, r.dims, v && r.dims.every((d) => typeof d === 'number') ? { ...v, dims: r.dims as number[] } : undefined)];
  }
  if (!r.mismatch) return [{ dataType: dt }];
  // The target holds fixed sizes while the input's size depends on the batch: baked at batch 1?
  const at1 = reshapeDims(x.map((d) => Number(symAt(d, 1))), target.map((t) => (isLin(t) ? symAt(t, 1) : t)), allowzero);
  if (!at1.dims) {
    ctx.conflict(`Reshape of ${dimsText(x)} to ${dimsText(target.map(toDim))} does not fit`);
    return [{ dataType: dt }];
  }
  const fixed = at1.dims as number[];
  const msg = `Reshape of ${dimsText(x)} to a fixed [${fixed.join(',')}] holds only at batch 1`;
  const pick = ctx.offer(reshapeCandidates(ctx, x, fixed), msg);
  if (pick?.kind === 'reshape') {
    const again = reshapeDims(x, pick.target, false);
    if (again.dims) return [{ dataType: dt, dims: again.dims }];
  }
  return [{ dataType: dt, dims: fixed }];
});

// ---- Flatten ----
registerShapeRule('Flatten', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [{ dataType: dt }];
  let axis = attrInt(ctx.node, 'axis', 1);
  if (axis < 0) axis += x.length;
  if (axis < 0 || axis > x.length) return [{ dataType: dt }];
  const a = dimProduct(x.slice(0, axis));
  const b = dimProduct(x.slice(axis));
  if (a === undefined || b === undefined) return [{ dataType: dt }];
  const dims = [toDim(a), toDim(b)];
  const v = inVal(ctx, 0);
  return [outInfo(ctx, dt, dims, v ? { ...v, dims: dims as number[] } : undefined)];
});

// ---- Transpose ----
registerShapeRule('Transpose', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [{ dataType: dt }];
  const perm = attrInts(ctx.node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
  if (perm.length !== x.length) return [{ dataType: dt }];
  const dims = perm.map((p) => x[p]!);
  const v = inVal(ctx, 0);
  return [outInfo(ctx, dt, dims, v ? transposeVal(v, perm) : undefined)];
});

// ---- Squeeze, Unsqueeze ----
registerShapeRule('Unsqueeze', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const axes = intsParam(ctx, 'axes', 1, 13).values;
  if (!x || !axes) return [{ dataType: dt }];
  const r = x.length + axes.length;
  const norm = axes.map((a) => axisOf(a, r));
  if (norm.some((a) => a === undefined) || new Set(norm).size !== norm.length) return [{ dataType: dt }];
  const set = new Set(norm as number[]);
  const dims: Dim[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) dims.push(set.has(i) ? 1 : x[k++]!);
  const v = inVal(ctx, 0);
  return [outInfo(ctx, dt, dims, v ? { ...v, dims: dims as number[] } : undefined)];
});

registerShapeRule('Squeeze', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const p = intsParam(ctx, 'axes', 1, 13);
  if (!x || (p.present && !p.values)) return [{ dataType: dt }];
  let drop: Set<number>;
  if (p.values && p.values.length) {
    const norm = p.values.map((a) => axisOf(a, x.length));
    if (norm.some((a) => a === undefined)) return [{ dataType: dt }];
    drop = new Set(norm as number[]);
    for (const a of drop) {
      if (isLin(x[a]!)) ctx.conflict(`Squeeze of axis ${a} of ${dimsText(x)}: that axis depends on the batch size (1 only at batch 1)`);
      else if (x[a] !== 1) return [{ dataType: dt }];
    }
  } else {
    drop = new Set();
    x.forEach((d, i) => {
      if (d === 1) drop.add(i);
      else if (isLin(d) && symAt(d, 1) === 1n) ctx.conflict(`Squeeze without axes of ${dimsText(x)}: the batch-dependent axis ${i} is 1 at batch 1`);
    });
  }
  const dims = x.filter((_, i) => !drop.has(i));
  const v = inVal(ctx, 0);
  return [outInfo(ctx, dt, dims, v ? { ...v, dims: dims as number[] } : undefined)];
});

// ---- Concat ----
registerShapeRule('Concat', (ctx) => {
  const dt = inType(ctx, 0);
  const list = ctx.node.input.map((_, i) => inDims(ctx, i));
  if (list.some((d) => !d) || list.length === 0) return [{ dataType: dt }];
  const rank = list[0]!.length;
  if (list.some((d) => d!.length !== rank)) {
    ctx.conflict(`Concat of inputs with different ranks ${list.map(dimsText).join(', ')}`);
    return [{ dataType: dt }];
  }
  const axis = axisOf(attrInt(ctx.node, 'axis', ctx.opset < 4 ? 1 : 0), rank);
  if (axis === undefined) return [{ dataType: dt }];
  const dims = [...list[0]!] as Dim[];
  for (let k = 0; k < rank; k++) {
    if (k === axis) continue;
    const lin = list.map((d) => d![k]!).find((d) => isLin(d));
    for (const [i, d] of list.entries()) {
      const dk = d![k]!;
      if (dimEq(dk, lin ?? dims[k]!)) continue;
      if (lin && dk === 1 && list.every((e) => isLin(e![k]!) || e![k] === 1)) {
        // One input fixed at 1 where the others follow the batch: a batch-1 constant joined to the stream.
        const to = [...d!];
        to[k] = lin;
        const pick = ctx.offer([{ kind: 'concat-expand', node: ctx.node, input: i, dims: to }], `Concat input ${i} ${dimsText(d)} is fixed at 1 on axis ${k}, which depends on the batch size in the others`);
        if (!pick) dims[k] = 1;
        else dims[k] = lin;
        continue;
      }
      ctx.conflict(`Concat along axis ${axis} of ${list.map(dimsText).join(', ')}: axis ${k} differs`);
      return [{ dataType: dt }];
    }
    if (lin && dims[k] !== 1) dims[k] = lin;
  }
  let total: SymInt = 0n;
  for (const d of list) total = symAdd(total, toSym(d![axis]!));
  dims[axis] = toDim(total);
  const vals = ctx.node.input.map((_, i) => inVal(ctx, i));
  const value = vals.every((v) => v) ? concatVal(vals as Val[], axis) : undefined;
  return [outInfo(ctx, dt, dims, value)];
});

// ---- Split ----
registerShapeRule('Split', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const nOut = ctx.node.output.length;
  const unknown = ctx.node.output.map(() => ({ dataType: dt }) as TInfo);
  if (!x) return unknown;
  const axis = axisOf(attrInt(ctx.node, 'axis', 0), x.length);
  if (axis === undefined) return unknown;
  const d = x[axis]!;
  let sizes: number[] | undefined;
  const p = intsParam(ctx, 'split', 1, 13);
  if (p.present) sizes = p.values;
  else if (typeof d === 'number') {
    const numOut = ctx.opset >= 18 ? attrInt(ctx.node, 'num_outputs', nOut) : nOut;
    if (ctx.opset >= 18 && getAttr(ctx.node, 'num_outputs')) {
      const chunk = Math.ceil(d / numOut);
      sizes = Array.from({ length: numOut }, (_, i) => Math.max(0, Math.min(chunk, d - i * chunk)));
    } else if (d % nOut === 0) sizes = new Array<number>(nOut).fill(d / nOut);
  } else if (isLin(d) && !p.present) {
    const q = symDiv(d, BigInt(nOut));
    if (q !== undefined) return ctx.node.output.map(() => ({ dataType: dt, dims: x.map((e, k) => (k === axis ? toDim(q) : e)) }));
    return unknown;
  }
  if (!sizes || sizes.length !== nOut) return unknown;
  if (isLin(d)) {
    ctx.conflict(`Split of the batch-dependent axis ${axis} of ${dimsText(x)} into fixed sizes [${sizes.join(',')}]`);
    return unknown;
  }
  const v = inVal(ctx, 0);
  let off = 0;
  return sizes.map((s) => {
    const dims = x.map((e, k) => (k === axis ? s : e));
    const range = Array.from({ length: s }, (_, i) => off + i);
    off += s;
    const value = v ? pickVal(v, v.dims.map((n, k) => (k === axis ? range : Array.from({ length: n }, (_, i) => i)))) : undefined;
    return outInfo(ctx, dt, dims, value);
  });
});

// ---- Slice ----
function sliceParams(ctx: RuleContext, rank: number): { starts: SymInt[]; ends: SymInt[]; axes: number[]; steps: number[] } | undefined {
  let starts: SymInt[] | undefined;
  let ends: SymInt[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(ctx.node, 'starts')?.map(BigInt);
    ends = attrInts(ctx.node, 'ends')?.map(BigInt);
    axes = attrInts(ctx.node, 'axes');
  } else {
    starts = inSyms(ctx, 1);
    ends = inSyms(ctx, 2);
    if (hasInput(ctx, 3)) {
      axes = inInts(ctx, 3);
      if (!axes) return undefined;
    }
    if (hasInput(ctx, 4)) {
      steps = inInts(ctx, 4);
      if (!steps) return undefined;
    }
  }
  if (!starts || !ends || starts.length !== ends.length) return undefined;
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  const norm = axes.map((a) => axisOf(a, rank));
  if (norm.some((a) => a === undefined) || axes.length !== starts.length || steps.length !== starts.length || steps.some((s) => s === 0)) return undefined;
  return { starts, ends, axes: norm as number[], steps };
}

/** Length of a slice of a batch-dependent axis, when it does not depend on B in an unknown way. */
function sliceLinLength(d: Dim, start: SymInt, end: SymInt, step: number): Dim | undefined {
  const D = toSym(d);
  const resolve = (v: SymInt): SymInt | undefined => {
    if (isLin(v)) return v;
    if (v >= BigInt(OPEN)) return D; // to the end
    if (v < 0n) return symAdd(D, v);
    return v;
  };
  if (step !== 1) return undefined;
  const s = resolve(start);
  const e = resolve(end);
  if (s === undefined || e === undefined) return undefined;
  // Clamp s and e to [0, D] where the comparison holds for every batch size.
  const clamp = (v: SymInt): SymInt | undefined => {
    if (symAlways(v, '<=', 0n)) return 0n;
    if (!symAlways(v, '>=', 0n)) return undefined;
    if (symAlways(v, '<=', D)) return v;
    return symAlways(v, '>=', D) ? D : undefined;
  };
  const cs = clamp(s);
  const ce = clamp(e);
  if (cs === undefined || ce === undefined) return undefined;
  const len = symSub(ce, cs);
  if (symAlways(len, '<=', 0n)) return 0;
  return symAlways(len, '>=', 0n) ? toDim(len) : undefined;
}

registerShapeRule('Slice', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [{ dataType: dt }];
  const p = sliceParams(ctx, x.length);
  if (!p) return [{ dataType: dt }];
  const dims = [...x];
  const picks: (number[] | undefined)[] = x.map(() => undefined);
  let concrete = true;
  for (let i = 0; i < p.axes.length; i++) {
    const axis = p.axes[i]!;
    const d = x[axis]!;
    const [s, e, st] = [p.starts[i]!, p.ends[i]!, p.steps[i]!];
    if (typeof d === 'number' && !isLin(s) && !isLin(e)) {
      const idx = sliceRange(clampNumber(s), clampNumber(e), st, d);
      dims[axis] = idx.length;
      picks[axis] = idx;
      continue;
    }
    concrete = false;
    const len = sliceLinLength(d, s, e, st);
    if (len === undefined) return [{ dataType: dt }];
    dims[axis] = len;
  }
  const v = inVal(ctx, 0);
  if (v && concrete) {
    const full = picks.map((pk, k) => pk ?? Array.from({ length: v.dims[k]! }, (_, i) => i));
    return [outInfo(ctx, dt, dims, pickVal(v, full))];
  }
  return [{ dataType: dt, dims }];
});

// ---- Gather ----
registerShapeRule('Gather', (ctx) => {
  const x = inDims(ctx, 0);
  const idxDims = inDims(ctx, 1);
  const dt = inType(ctx, 0);
  if (!x || !idxDims) return [{ dataType: dt }];
  const axis = axisOf(attrInt(ctx.node, 'axis', 0), x.length);
  if (axis === undefined) return [{ dataType: dt }];
  const dims = [...x.slice(0, axis), ...idxDims, ...x.slice(axis + 1)];
  const v = inVal(ctx, 0);
  const idx = inInts(ctx, 1);
  const d = x[axis]!;
  if (v && idx && typeof d === 'number' && idxDims.every((k) => typeof k === 'number')) {
    if (idx.some((i) => i < -d || i >= d)) {
      ctx.conflict(`Gather index out of range for axis ${axis} of size ${d}`);
      return [{ dataType: dt, dims }];
    }
    return [outInfo(ctx, dt, dims, gatherVal(v, idx.map((i) => (i < 0 ? i + d : i)), idxDims as number[], axis))];
  }
  return [{ dataType: dt, dims }];
});

// ---- Expand ----
registerShapeRule('Expand', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const shape = inSyms(ctx, 1);
  if (!x || !shape) return [{ dataType: dt }];
  const dims = broadcastDims(ctx, [x, shape.map(toDim)]);
  if (!dims) return [{ dataType: dt }];
  const v = inVal(ctx, 0);
  return [outInfo(ctx, dt, dims, v && valueFits(ctx, dims) ? expandVal(v, dims as number[]) : undefined)];
});

// ---- Tile ----
registerShapeRule('Tile', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const reps = inSyms(ctx, 1);
  if (!x || !reps || reps.length !== x.length) return [{ dataType: dt }];
  const dims: Dim[] = [];
  for (let k = 0; k < x.length; k++) {
    const m = symMul(toSym(x[k]!), reps[k]!);
    if (m === undefined) return [{ dataType: dt }];
    dims.push(toDim(m));
  }
  const v = inVal(ctx, 0);
  const r = inInts(ctx, 1);
  return [outInfo(ctx, dt, dims, v && r && valueFits(ctx, dims) ? tileVal(v, r) : undefined)];
});

// ---- Pad (dims only) ----
registerShapeRule('Pad', (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [{ dataType: dt }];
  const pads = ctx.opset < 11 ? attrInts(ctx.node, 'pads') : inInts(ctx, 1);
  if (!pads) return [{ dataType: dt }];
  let axes = x.map((_, i) => i);
  if (ctx.opset >= 18 && hasInput(ctx, 3)) {
    const a = inInts(ctx, 3);
    if (!a) return [{ dataType: dt }];
    const n = a.map((k) => axisOf(k, x.length));
    if (n.some((k) => k === undefined)) return [{ dataType: dt }];
    axes = n as number[];
  }
  if (pads.length !== 2 * axes.length) return [{ dataType: dt }];
  const dims = [...x];
  axes.forEach((ax, i) => {
    dims[ax] = toDim(symAdd(toSym(x[ax]!), BigInt(pads[i]! + pads[i + axes.length]!)));
  });
  return [{ dataType: dt, dims }];
});
