// Element kernels of the shape evaluator over Val (row-major element lists): data movement
// (transpose, concat, slice, gather, expand, tile, split) and numpy broadcasting. They never look
// at element values, so they work for floats, integers and batch-dependent integers alike.
import type { Elem, Val } from './value.js';
import { strides } from './value.js';
import { numel } from '../tensor.js';

/** Normalize an axis in [-rank, rank) to [0, rank); undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

export function transposeVal(v: Val, perm: number[]): Val {
  const dims = perm.map((p) => v.dims[p]!);
  const inS = strides(v.dims);
  const n = v.data.length;
  const data: Elem[] = new Array(n);
  const idx = new Array<number>(dims.length).fill(0);
  for (let o = 0; o < n; o++) {
    let src = 0;
    for (let k = 0; k < dims.length; k++) src += idx[k]! * inS[perm[k]!]!;
    data[o] = v.data[src]!;
    for (let k = dims.length - 1; k >= 0; k--) {
      if (++idx[k]! < dims[k]!) break;
      idx[k] = 0;
    }
  }
  return { dataType: v.dataType, dims, data };
}

export function concatVal(vals: Val[], axis: number): Val {
  const first = vals[0]!;
  const dims = [...first.dims];
  dims[axis] = vals.reduce((s, v) => s + v.dims[axis]!, 0);
  const outer = numel(first.dims.slice(0, axis));
  const data: Elem[] = [];
  for (let o = 0; o < outer; o++) {
    for (const v of vals) {
      const block = numel(v.dims.slice(axis));
      for (let i = 0; i < block; i++) data.push(v.data[o * block + i]!);
    }
  }
  return { dataType: first.dataType, dims, data };
}

/** The indices a slice selects along an axis of size d (ONNX clamping rules). */
export function sliceRange(start: number, end: number, step: number, d: number): number[] {
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
  } else {
    s = Math.min(Math.max(s, 0), d - 1);
    e = Math.min(Math.max(e, -1), d - 1);
  }
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

/** Select, along each axis, the listed indices (a general gather over all axes). */
export function pickVal(v: Val, picks: number[][]): Val {
  const dims = picks.map((p) => p.length);
  const inS = strides(v.dims);
  const n = numel(dims);
  const data: Elem[] = new Array(n);
  const idx = new Array<number>(dims.length).fill(0);
  for (let o = 0; o < n; o++) {
    let src = 0;
    for (let k = 0; k < dims.length; k++) src += picks[k]![idx[k]!]! * inS[k]!;
    data[o] = v.data[src]!;
    for (let k = dims.length - 1; k >= 0; k--) {
      if (++idx[k]! < dims[k]!) break;
      idx[k] = 0;
    }
  }
  return { dataType: v.dataType, dims, data };
}

/** Gather along `axis` with integer indices (already normalized to [0, d)). */
export function gatherVal(v: Val, indices: number[], indexDims: number[], axis: number): Val {
  const outer = numel(v.dims.slice(0, axis));
  const inner = numel(v.dims.slice(axis + 1));
  const d = v.dims[axis]!;
  const data: Elem[] = [];
  for (let o = 0; o < outer; o++) {
    for (const ix of indices) {
      const base = (o * d + ix) * inner;
      for (let i = 0; i < inner; i++) data.push(v.data[base + i]!);
    }
  }
  return { dataType: v.dataType, dims: [...v.dims.slice(0, axis), ...indexDims, ...v.dims.slice(axis + 1)], data };
}

/** Numpy broadcast of two known shapes; undefined when incompatible. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[i - (n - a.length)] ?? 1;
    const y = b[i - (n - b.length)] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else return undefined;
  }
  return out;
}

/** `v` broadcast to `dims` (which must be a broadcast of v's dims). */
export function expandVal(v: Val, dims: number[]): Val {
  const n = numel(dims);
  const rank = dims.length;
  const lead = rank - v.dims.length;
  const inS = strides(v.dims);
  const data: Elem[] = new Array(n);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < n; o++) {
    let src = 0;
    for (let k = lead; k < rank; k++) if (v.dims[k - lead] !== 1) src += idx[k]! * inS[k - lead]!;
    data[o] = v.data[src]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < dims[k]!) break;
      idx[k] = 0;
    }
  }
  return { dataType: v.dataType, dims: [...dims], data };
}

/** Elementwise map over broadcast inputs. */
export function mapBroadcast(vals: Val[], dataType: Val['dataType'], f: (xs: Elem[]) => Elem | undefined): Val | undefined {
  let dims: number[] | undefined = [];
  for (const v of vals) {
    dims = broadcastShape(dims, v.dims);
    if (!dims) return undefined;
  }
  const ex = vals.map((v) => (v.dims.length === dims!.length && v.dims.every((d, i) => d === dims![i]) ? v : expandVal(v, dims!)));
  const n = numel(dims);
  const data: Elem[] = new Array(n);
  const xs: Elem[] = new Array(vals.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < ex.length; k++) xs[k] = ex[k]!.data[i]!;
    const r = f(xs);
    if (r === undefined) return undefined;
    data[i] = r;
  }
  return { dataType, dims, data };
}

export function tileVal(v: Val, repeats: number[]): Val {
  const picks = v.dims.map((d, k) => {
    const p: number[] = [];
    for (let r = 0; r < repeats[k]!; r++) for (let i = 0; i < d; i++) p.push(i);
    return p;
  });
  return pickVal(v, picks);
}

/** Reduce over `axes` (normalized) with a fold function; keepdims keeps them as 1. */
export function reduceVal(v: Val, axes: number[], keepdims: boolean, dataType: Val['dataType'], f: (xs: Elem[]) => Elem | undefined): Val | undefined {
  const rank = v.dims.length;
  const red = new Set(axes);
  const outFull = v.dims.map((d, k) => (red.has(k) ? 1 : d));
  const outN = numel(outFull);
  const groups: Elem[][] = Array.from({ length: outN }, () => []);
  const outS = strides(outFull);
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < v.data.length; i++) {
    let o = 0;
    for (let k = 0; k < rank; k++) if (!red.has(k)) o += idx[k]! * outS[k]!;
    groups[o]!.push(v.data[i]!);
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < v.dims[k]!) break;
      idx[k] = 0;
    }
  }
  const data: Elem[] = [];
  for (const g of groups) {
    const r = f(g);
    if (r === undefined) return undefined;
    data.push(r);
  }
  return { dataType, dims: keepdims ? outFull : v.dims.filter((_, k) => !red.has(k)), data };
}
