// Helpers shared by the shape rules: reading inputs and attributes, building output infos within
// the value limit, and numpy broadcasting of dims where the batch size is symbolic.
import { DataType } from '../../proto.js';
import { attrInts } from '../../attributes.js';
import type { RuleContext, TInfo } from '../rule.js';
import { type Dim, dimEq, dimsText, isLin, symText } from '../sym.js';
import { intsOf, symInts, type Val } from '../value.js';
import type { SymInt } from '../sym.js';
import { numel } from '../../tensor.js';

export function inDims(ctx: RuleContext, i: number): Dim[] | undefined {
  return ctx.ins[i]?.value?.dims ?? ctx.ins[i]?.dims;
}
export function inVal(ctx: RuleContext, i: number): Val | undefined {
  return ctx.ins[i]?.value;
}
export function inType(ctx: RuleContext, i: number): DataType | undefined {
  return ctx.ins[i]?.value?.dataType ?? ctx.ins[i]?.dataType;
}
/** Concrete integer values of input i (undefined if unknown or batch-dependent). */
export function inInts(ctx: RuleContext, i: number): number[] | undefined {
  return intsOf(ctx.ins[i]?.value);
}
/** Integer values of input i, batch-dependent ones included. */
export function inSyms(ctx: RuleContext, i: number): SymInt[] | undefined {
  const v = ctx.ins[i]?.value;
  return v ? symInts(v) : undefined;
}
/** Whether input i is present in the node (not an omitted optional input). */
export function hasInput(ctx: RuleContext, i: number): boolean {
  return !!ctx.node.input[i];
}

/** An int-list parameter that moved from an attribute to an input at `sinceOpset`. */
export function intsParam(ctx: RuleContext, attr: string, input: number, sinceOpset: number): { present: boolean; values?: number[] } {
  if (ctx.opset < sinceOpset) {
    const a = attrInts(ctx.node, attr);
    return { present: a !== undefined, values: a };
  }
  if (!hasInput(ctx, input)) return { present: false };
  return { present: true, values: inInts(ctx, input) };
}

/** An output info from a value (dims follow it) or from dims; drops values above the limit. */
export function outInfo(ctx: RuleContext, dataType: DataType | undefined, dims: Dim[] | undefined, value?: Val): TInfo {
  if (value && value.data.length <= ctx.valueLimit) return { dataType: value.dataType, dims: [...value.dims], value };
  return { dataType, dims: value ? [...value.dims] : dims };
}

export function valueFits(ctx: RuleContext, dims: readonly Dim[]): boolean {
  return dims.every((d) => typeof d === 'number') && numel(dims as number[]) <= ctx.valueLimit;
}

/** Normalize an axis against a rank; undefined when out of range. */
export function axisOf(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/**
 * Numpy broadcast of dims lists with the batch size symbolic. A batch-dependent dim against a
 * fixed dim other than 1 holds only at one batch size: a conflict (the result takes the fixed dim).
 */
export function broadcastDims(ctx: RuleContext, list: (Dim[] | undefined)[]): Dim[] | undefined {
  if (list.some((d) => d === undefined)) return undefined;
  const n = Math.max(0, ...list.map((d) => d!.length));
  const out: Dim[] = [];
  for (let k = 0; k < n; k++) {
    let cur: Dim = 1;
    for (const dims of list) {
      const x = dims![k - (n - dims!.length)] ?? 1;
      if (dimEq(x, cur) || x === 1) continue;
      if (cur === 1) {
        cur = x;
        continue;
      }
      if (isLin(cur) !== isLin(x)) {
        // A batch-dependent size against a fixed one (not 1): consistent at one batch size only.
        ctx.conflict(`broadcasts ${list.map(dimsText).join(' with ')}: axis ${k} depends on the batch size on one side and is ${isLin(cur) ? symText(x) : symText(cur)} on the other`);
        cur = isLin(cur) ? x : cur;
        continue;
      }
      ctx.conflict(`cannot broadcast ${list.map(dimsText).join(' with ')}`);
      return undefined;
    }
    out.push(cur);
  }
  return out;
}

export function sameAsInput(ctx: RuleContext, dataType?: DataType): TInfo {
  return { dataType: dataType ?? inType(ctx, 0), dims: inDims(ctx, 0) };
}
