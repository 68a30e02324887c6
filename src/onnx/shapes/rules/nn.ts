// Shape rules (dims only) of the network ops around the shape arithmetic: MatMul, Gemm, Conv,
// pooling, TopK and (de)quantization. A batch-dependent inner dimension of a product is a
// conflict: the export holds at one batch size only.
import { DataType } from '../../proto.js';
import { attrInt, attrInts, attrString } from '../../attributes.js';
import { registerShapeRule, type RuleContext, type TInfo } from '../rule.js';
import { type Dim, dimEq, dimsText, isLin } from '../sym.js';
import { axisOf, broadcastDims, inDims, inInts, inType } from './util.js';

registerShapeRule(['MatMul', 'MatMulInteger'], (ctx) => {
  const a = inDims(ctx, 0);
  const b = inDims(ctx, 1);
  const dt = ctx.node.opType === 'MatMulInteger' ? DataType.INT32 : inType(ctx, 0);
  if (!a || !b || a.length === 0 || b.length === 0) return [{ dataType: dt }];
  const A = a.length === 1 ? [1, a[0]!] : a;
  const B = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = A[A.length - 1]!;
  const k2 = B[B.length - 2]!;
  if (!dimEq(k1, k2)) {
    ctx.conflict(`MatMul of ${dimsText(a)} and ${dimsText(b)}: inner sizes ${isLin(k1) || isLin(k2) ? 'depend on the batch size differently' : 'differ'}`);
    return [{ dataType: dt }];
  }
  const batch = broadcastDims(ctx, [A.slice(0, -2), B.slice(0, -2)]);
  if (!batch) return [{ dataType: dt }];
  const dims: Dim[] = [...batch, A[A.length - 2]!, B[B.length - 1]!];
  if (a.length === 1) dims.splice(dims.length - 2, 1);
  if (b.length === 1) dims.splice(dims.length - 1, 1);
  return [{ dataType: dt, dims }];
});

registerShapeRule('Gemm', (ctx) => {
  const a = inDims(ctx, 0);
  const b = inDims(ctx, 1);
  const dt = inType(ctx, 0);
  if (!a || !b || a.length !== 2 || b.length !== 2) return [{ dataType: dt }];
  const [m, k1] = attrInt(ctx.node, 'transA', 0) ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [k2, n] = attrInt(ctx.node, 'transB', 0) ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (!dimEq(k1, k2)) {
    ctx.conflict(`Gemm of ${dimsText(a)} and ${dimsText(b)}: inner sizes differ`);
    return [{ dataType: dt }];
  }
  return [{ dataType: dt, dims: [m, n] }];
});

/** Output spatial sizes of a convolution or pooling window (auto_pad, pads, strides, dilations, ceil_mode). */
function windowDims(ctx: RuleContext, spatial: Dim[], kernel: number[]): Dim[] | undefined {
  if (spatial.some((d) => typeof d !== 'number')) return undefined;
  const x = spatial as number[];
  const n = x.length;
  const strides = attrInts(ctx.node, 'strides') ?? new Array<number>(n).fill(1);
  const dil = attrInts(ctx.node, 'dilations') ?? new Array<number>(n).fill(1);
  const pads = attrInts(ctx.node, 'pads') ?? new Array<number>(2 * n).fill(0);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
  return x.map((size, i) => {
    const k = (kernel[i]! - 1) * dil[i]! + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(size / strides[i]!);
    if (autoPad === 'VALID') return Math.floor((size - k) / strides[i]!) + 1;
    const span = size + pads[i]! + pads[i + n]! - k;
    return (ceil ? Math.ceil(span / strides[i]!) : Math.floor(span / strides[i]!)) + 1;
  });
}

registerShapeRule('Conv', (ctx) => {
  const x = inDims(ctx, 0);
  const w = inDims(ctx, 1);
  const dt = inType(ctx, 0);
  if (!x || !w || x.length < 3 || w.length !== x.length || typeof w[0] !== 'number') return [{ dataType: dt }];
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? (w.slice(2) as number[]);
  const sp = windowDims(ctx, x.slice(2), kernel);
  return [{ dataType: dt, dims: sp ? [x[0]!, w[0]!, ...sp] : undefined }];
});

registerShapeRule(['MaxPool', 'AveragePool', 'LpPool'], (ctx) => {
  const x = inDims(ctx, 0);
  const dt = inType(ctx, 0);
  const kernel = attrInts(ctx.node, 'kernel_shape');
  if (!x || !kernel || x.length < 3) return [{ dataType: dt }, { dataType: DataType.INT64 }];
  const sp = windowDims(ctx, x.slice(2), kernel);
  const dims = sp ? [x[0]!, x[1]!, ...sp] : undefined;
  return [{ dataType: dt, dims }, { dataType: DataType.INT64, dims }];
});

registerShapeRule(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool'], (ctx) => {
  const x = inDims(ctx, 0);
  return [{ dataType: inType(ctx, 0), dims: x && x.length >= 2 ? [x[0]!, x[1]!, ...x.slice(2).map(() => 1)] : undefined }];
});

registerShapeRule('TopK', (ctx) => {
  const x = inDims(ctx, 0);
  const k = ctx.opset < 10 ? attrInt(ctx.node, 'k') : inInts(ctx, 1)?.[0];
  const dt = inType(ctx, 0);
  if (!x || k === undefined) return [{ dataType: dt }, { dataType: DataType.INT64 }];
  const axis = axisOf(attrInt(ctx.node, 'axis', -1), x.length);
  if (axis === undefined) return [{ dataType: dt }, { dataType: DataType.INT64 }];
  const dims = x.map((d, i) => (i === axis ? k : d));
  return [{ dataType: dt, dims }, { dataType: DataType.INT64, dims }];
});

registerShapeRule('QuantizeLinear', (ctx): TInfo[] => [{ dataType: inType(ctx, 2) ?? DataType.UINT8, dims: inDims(ctx, 0) }]);
registerShapeRule('DequantizeLinear', (ctx): TInfo[] => [{ dataType: inType(ctx, 1) ?? DataType.FLOAT, dims: inDims(ctx, 0) }]);
