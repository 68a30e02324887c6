// Shape rules of elementwise and reducing ops: broadcast arithmetic, comparisons, logic, Where,
// unary maths, Reduce*, ArgMax/ArgMin. Values follow the ONNX element semantics (integer Div
// truncates, Mod follows the divisor's sign unless fmod=1, results wrap or round to the type);
// batch-dependent integers go through sym.ts where the result stays linear in the batch size.
import { DataType } from '../../proto.js';
import { attrFloat, attrInt, attrInts } from '../../attributes.js';
import { registerShapeRule, type RuleContext, type TInfo } from '../rule.js';
import { type SymInt, isLin, symAdd, symCompare, symDiv, symMul, symNeg, symSub } from '../sym.js';
import { castElem, isFloatType, roundFloat, wrapInt, type Elem, type Val } from '../value.js';
import { mapBroadcast, reduceVal } from '../kernels.js';
import { axisOf, broadcastDims, hasInput, inDims, inInts, inType, inVal, outInfo, sameAsInput } from './util.js';

type ElemFn = (xs: Elem[], dt: DataType) => Elem | undefined;

function num(e: Elem): number {
  return typeof e === 'bigint' ? Number(e) : (e as number);
}

/** Binary integer/float arithmetic with ONNX semantics; Lin handled where linear. */
function arith(op: string, node: RuleContext['node']): ElemFn {
  return ([x, y], dt) => {
    if (isFloatType(dt)) {
      const a = num(x!);
      const b = num(y!);
      let r: number;
      switch (op) {
        case 'Add': r = a + b; break;
        case 'Sub': r = a - b; break;
        case 'Mul': r = a * b; break;
        case 'Div': r = a / b; break;
        case 'Pow': r = Math.pow(a, b); break;
        case 'Mod': r = a % b; break; // fmod (the spec requires fmod=1 for floats)
        case 'Max': r = Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b); break;
        case 'Min': r = Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b); break;
        default: return undefined;
      }
      return roundFloat(dt, r);
    }
    if (typeof x === 'number' || typeof y === 'number') return undefined;
    const a = x as SymInt;
    const b = y as SymInt;
    if (isLin(a) || isLin(b)) {
      switch (op) {
        case 'Add': return symAdd(a, b);
        case 'Sub': return symSub(a, b);
        case 'Mul': return symMul(a, b);
        case 'Div': return symDiv(a, b);
        case 'Max': case 'Min': {
          const c = symCompare(a, b);
          if (c === undefined) return undefined;
          return (op === 'Max') === (c >= 0) ? a : b;
        }
        case 'Pow': return !isLin(b) && b === 1n ? a : undefined;
        default: return undefined;
      }
    }
    switch (op) {
      case 'Add': return wrapInt(dt, a + b);
      case 'Sub': return wrapInt(dt, a - b);
      case 'Mul': return wrapInt(dt, a * b);
      case 'Div': return b === 0n ? undefined : wrapInt(dt, a / b);
      case 'Mod': {
        if (b === 0n) return undefined;
        const r = a % b; // sign of the dividend (C fmod)
        if (attrInt(node, 'fmod', 0) === 1) return r;
        return r !== 0n && (r < 0n) !== (b < 0n) ? r + b : r; // sign of the divisor (Python %)
      }
      case 'Pow': {
        if (b < 0n) return a === 1n ? 1n : a === -1n ? (b % 2n === 0n ? 1n : -1n) : 0n;
        return wrapInt(dt, a ** b);
      }
      case 'Max': return a > b ? a : b;
      case 'Min': return a < b ? a : b;
      default: return undefined;
    }
  };
}

function compare(op: string): ElemFn {
  return ([x, y]) => {
    let c: -1 | 0 | 1 | undefined;
    if (isLin(x) || isLin(y)) {
      if (typeof x === 'number' || typeof y === 'number') return undefined;
      c = symCompare(x as SymInt, y as SymInt);
      if (c === undefined) {
        // Equal is decidable when x - y can never be 0 for any batch size.
        if (op === 'Equal') {
          const d = symSub(x as SymInt, y as SymInt);
          if (isLin(d) && (-d.c % d.a !== 0n || -d.c / d.a < 1n)) return 0n;
        }
        return undefined;
      }
    } else {
      const a = x as number | bigint;
      const b = y as number | bigint;
      if (typeof a === 'number' || typeof b === 'number') {
        const p = Number(a);
        const q = Number(b);
        if (Number.isNaN(p) || Number.isNaN(q)) return op === 'Equal' ? 0n : 0n;
        c = p < q ? -1 : p > q ? 1 : 0;
      } else c = a < b ? -1 : a > b ? 1 : 0;
    }
    switch (op) {
      case 'Equal': return c === 0 ? 1n : 0n;
      case 'Less': return c < 0 ? 1n : 0n;
      case 'LessOrEqual': return c <= 0 ? 1n : 0n;
      case 'Greater': return c > 0 ? 1n : 0n;
      case 'GreaterOrEqual': return c >= 0 ? 1n : 0n;
      default: return undefined;
    }
  };
}

function logic(op: string): ElemFn {
  return ([x, y]) => {
    if (typeof x !== 'bigint' || typeof y !== 'bigint') return undefined;
    const a = x !== 0n;
    const b = y !== 0n;
    const r = op === 'And' ? a && b : op === 'Or' ? a || b : a !== b;
    return r ? 1n : 0n;
  };
}

function elementwise(ctx: RuleContext, outType: DataType | undefined, fn: ElemFn | undefined, inputs?: number[]): TInfo {
  const idx = inputs ?? ctx.node.input.map((_, i) => i);
  const dims = broadcastDims(ctx, idx.map((i) => inDims(ctx, i)));
  const vals = idx.map((i) => inVal(ctx, i));
  if (!fn || !dims || vals.some((v) => !v) || outType === undefined) return { dataType: outType, dims };
  const inT = inType(ctx, idx[0]!)!;
  const value = mapBroadcast(vals as Val[], outType, (xs) => fn(xs, inT));
  return outInfo(ctx, outType, dims, value);
}

for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod']) {
  registerShapeRule(op, (ctx) => [elementwise(ctx, inType(ctx, 0), arith(op, ctx.node))]);
}

// Variadic: Max, Min, Sum, Mean fold pairwise (Mean divides the sum at the end).
for (const op of ['Max', 'Min', 'Sum', 'Mean']) {
  registerShapeRule(op, (ctx) => {
    const dt = inType(ctx, 0);
    const pair = arith(op === 'Sum' || op === 'Mean' ? 'Add' : op, ctx.node);
    const n = ctx.node.input.length;
    const fn: ElemFn = (xs, t) => {
      let acc: Elem | undefined = xs[0]!;
      for (let i = 1; i < xs.length && acc !== undefined; i++) acc = pair([acc, xs[i]!], t);
      if (acc === undefined) return undefined;
      if (op !== 'Mean') return acc;
      if (!isFloatType(t)) return undefined;
      return roundFloat(t, num(acc) / n);
    };
    return [elementwise(ctx, dt, fn)];
  });
}

for (const op of ['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual']) {
  registerShapeRule(op, (ctx) => [elementwise(ctx, DataType.BOOL, compare(op))]);
}
for (const op of ['And', 'Or', 'Xor']) registerShapeRule(op, (ctx) => [elementwise(ctx, DataType.BOOL, logic(op))]);
registerShapeRule('BitShift', (ctx) => [elementwise(ctx, inType(ctx, 0), undefined)]);
registerShapeRule('PRelu', (ctx) => [elementwise(ctx, inType(ctx, 0), undefined)]);

registerShapeRule('Where', (ctx) =>
  [elementwise(ctx, inType(ctx, 1) ?? inType(ctx, 2), ([c, x, y]) => (typeof c === 'bigint' ? (c !== 0n ? x : y) : undefined))],
);

// ---- unary ----
function unaryValue(op: string): ElemFn {
  return ([x], dt) => {
    if (isLin(x)) {
      const sign = symCompare(x, 0n);
      switch (op) {
        case 'Neg': return symNeg(x);
        case 'Abs': return sign === undefined ? undefined : sign < 0 ? symNeg(x) : x;
        case 'Relu': return sign === undefined ? undefined : sign < 0 ? 0n : x;
        case 'Sign': return sign === undefined ? undefined : BigInt(sign);
        default: return undefined;
      }
    }
    if (typeof x === 'bigint') {
      switch (op) {
        case 'Neg': return wrapInt(dt, -x);
        case 'Abs': return wrapInt(dt, x < 0n ? -x : x);
        case 'Sign': return x < 0n ? -1n : x > 0n ? 1n : 0n;
        case 'Relu': return x < 0n ? 0n : x;
        case 'Not': return x === 0n ? 1n : 0n;
        case 'Floor': case 'Ceil': case 'Round': return x;
        default: return undefined;
      }
    }
    const v = x as number;
    let r: number;
    switch (op) {
      case 'Neg': r = -v; break;
      case 'Abs': r = Math.abs(v); break;
      case 'Sign': r = Number.isNaN(v) ? NaN : Math.sign(v); break;
      case 'Relu': r = Math.max(v, 0); break;
      case 'Sqrt': r = Math.sqrt(v); break;
      case 'Exp': r = Math.exp(v); break;
      case 'Log': r = Math.log(v); break;
      case 'Floor': r = Math.floor(v); break;
      case 'Ceil': r = Math.ceil(v); break;
      case 'Reciprocal': r = 1 / v; break;
      case 'Round': {
        // Round half to even.
        const f = Math.floor(v);
        const d = v - f;
        r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
        break;
      }
      default: return undefined;
    }
    return roundFloat(dt, r);
  };
}

for (const op of ['Neg', 'Abs', 'Sign', 'Relu', 'Not', 'Sqrt', 'Exp', 'Log', 'Floor', 'Ceil', 'Reciprocal', 'Round']) {
  registerShapeRule(op, (ctx) => [elementwise(ctx, inType(ctx, 0), unaryValue(op), [0])]);
}

/** Same dims and type as input 0, no value. */
const SAME = [
  'Erf', 'Tanh', 'Sigmoid', 'Gelu', 'Softmax', 'LogSoftmax', 'Hardmax', 'Softplus', 'Softsign', 'Elu', 'Selu', 'Celu',
  'LeakyRelu', 'HardSigmoid', 'HardSwish', 'Mish', 'ThresholdedRelu', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan',
  'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'LRN', 'CumSum', 'Trilu', 'LpNormalization', 'MeanVarianceNormalization',
  'InstanceNormalization', 'GroupNormalization', 'BatchNormalization', 'Shrink',
];
registerShapeRule(SAME, (ctx) => [sameAsInput(ctx), ...ctx.node.output.slice(1).map(() => undefined)]);
registerShapeRule(['IsNaN', 'IsInf'], (ctx) => [sameAsInput(ctx, DataType.BOOL)]);

registerShapeRule('Clip', (ctx) => {
  const v = inVal(ctx, 0);
  const dt = inType(ctx, 0);
  let lo: Elem | undefined;
  let hi: Elem | undefined;
  if (ctx.opset < 11) {
    lo = attrFloat(ctx.node, 'min');
    hi = attrFloat(ctx.node, 'max');
  } else {
    if (hasInput(ctx, 1)) {
      const m = inVal(ctx, 1);
      if (!m) return [sameAsInput(ctx)];
      lo = m.data[0];
    }
    if (hasInput(ctx, 2)) {
      const m = inVal(ctx, 2);
      if (!m) return [sameAsInput(ctx)];
      hi = m.data[0];
    }
  }
  if (!v || dt === undefined || v.data.some((e) => isLin(e)) || isLin(lo) || isLin(hi)) return [sameAsInput(ctx)];
  const data = v.data.map((e) => {
    let r = e as number | bigint;
    if (lo !== undefined && Number(r) < Number(lo)) r = castElem(dt, lo as number | bigint);
    if (hi !== undefined && Number(r) > Number(hi)) r = castElem(dt, hi as number | bigint);
    return r;
  });
  return [outInfo(ctx, dt, undefined, { dataType: dt, dims: [...v.dims], data })];
});

// LayerNormalization: Y like X; Mean and InvStdDev keep the axes before `axis` and are 1 after.
registerShapeRule('LayerNormalization', (ctx) => {
  const x = inDims(ctx, 0);
  const y = sameAsInput(ctx);
  if (!x) return [y, undefined, undefined];
  const axis = axisOf(attrInt(ctx.node, 'axis', -1), x.length);
  if (axis === undefined) return [y, undefined, undefined];
  const stat: TInfo = { dataType: DataType.FLOAT, dims: x.map((d, i) => (i < axis ? d : 1)) };
  return [y, stat, stat];
});

// ---- Reduce ----
const REDUCE = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];

function reduceFold(op: string, n: number): ElemFn | undefined {
  switch (op) {
    case 'ReduceSum':
      return (xs, dt) => {
        let acc: SymInt | number = isFloatType(dt) ? 0 : 0n;
        for (const x of xs) {
          if (typeof acc === 'number') acc += num(x);
          else if (typeof x === 'number') return undefined;
          else acc = symAdd(acc, x);
        }
        return typeof acc === 'number' ? roundFloat(dt, acc) : isLin(acc) ? acc : wrapInt(dt, acc);
      };
    case 'ReduceProd':
      return (xs, dt) => {
        let acc: SymInt | number | undefined = isFloatType(dt) ? 1 : 1n;
        for (const x of xs) {
          if (typeof acc === 'number') acc *= num(x);
          else if (typeof x === 'number' || acc === undefined) return undefined;
          else acc = symMul(acc, x);
        }
        if (acc === undefined) return undefined;
        return typeof acc === 'number' ? roundFloat(dt, acc) : isLin(acc) ? acc : wrapInt(dt, acc);
      };
    case 'ReduceMax':
    case 'ReduceMin':
      return (xs) => {
        if (xs.length === 0) return undefined;
        let acc = xs[0]!;
        for (const x of xs.slice(1)) {
          if (isLin(acc) || isLin(x)) {
            if (typeof acc === 'number' || typeof x === 'number') return undefined;
            const c = symCompare(acc, x);
            if (c === undefined) return undefined;
            if ((op === 'ReduceMax') === c < 0) acc = x;
          } else if ((op === 'ReduceMax') === Number(x) > Number(acc) || Number.isNaN(Number(x))) acc = x;
        }
        return acc;
      };
    case 'ReduceMean':
      return (xs, dt) => (isFloatType(dt) && n >= 0 ? roundFloat(dt, xs.reduce((s: number, x) => s + num(x), 0) / xs.length) : undefined);
    default:
      return undefined;
  }
}

registerShapeRule(REDUCE, (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [{ dataType: dt }];
  const sinceInput = ctx.node.opType === 'ReduceSum' ? 13 : 18;
  let axes: number[] | undefined;
  if (ctx.opset < sinceInput) axes = attrInts(ctx.node, 'axes');
  else if (hasInput(ctx, 1)) {
    axes = inInts(ctx, 1);
    if (!axes) return [{ dataType: dt }];
  }
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  if (!axes || axes.length === 0) {
    if (ctx.opset >= sinceInput && attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return [{ ...ctx.ins[0]! }];
    axes = x.map((_, i) => i);
  }
  const norm = axes.map((a) => axisOf(a, x.length));
  if (norm.some((a) => a === undefined)) return [{ dataType: dt }];
  const set = new Set(norm as number[]);
  const dims = keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i));
  const v = inVal(ctx, 0);
  const fold = reduceFold(ctx.node.opType, 0);
  if (!v || !fold || dt === undefined) return [{ dataType: dt, dims }];
  return [outInfo(ctx, dt, dims, reduceVal(v, [...set], keep, dt, (xs) => fold(xs, dt)))];
});

registerShapeRule(['ArgMax', 'ArgMin'], (ctx) => {
  const x = inDims(ctx, 0);
  if (!x) return [{ dataType: DataType.INT64 }];
  const axis = axisOf(attrInt(ctx.node, 'axis', 0), x.length);
  if (axis === undefined) return [{ dataType: DataType.INT64 }];
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  return [{ dataType: DataType.INT64, dims: keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis) }];
});

