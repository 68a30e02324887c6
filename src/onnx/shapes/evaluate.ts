// The shape evaluator on concrete tensors: run one node of a shape-manipulating op (Shape, Size,
// Gather, Slice, Concat, Unsqueeze, Squeeze, Reshape, Expand, Range, ConstantOfShape, Cast,
// integer arithmetic, ...) on host tensors exactly as the folder does, per the ONNX spec of the
// given opset. The entry point for checking the folder against ONNX's own operator tests.
import type { NodeProto } from '../proto.js';
import type { HostTensor } from '../tensor.js';
import { shapeRuleFor, type RuleContext } from './rule.js';
import { fromHost, toHost } from './value.js';
import './rules/index.js';

/** Why a node could not be evaluated (unsupported op or type, inconsistent inputs). */
export class ShapeEvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeEvalError';
  }
}

/** Op types the folder evaluates (values, not only dims). */
export const FOLDED_OPS = [
  'Abs', 'Add', 'And', 'Cast', 'CastLike', 'Ceil', 'Clip', 'Concat', 'Constant', 'ConstantOfShape', 'Div', 'Dropout',
  'Equal', 'Exp', 'Expand', 'Flatten', 'Floor', 'Gather', 'Greater', 'GreaterOrEqual', 'Identity', 'Less',
  'LessOrEqual', 'Log', 'Max', 'Mean', 'Min', 'Mod', 'Mul', 'Neg', 'Not', 'Or', 'Pow', 'Range', 'Reciprocal',
  'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'Relu', 'Reshape', 'Round', 'Shape', 'Sign',
  'Size', 'Slice', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Sum', 'Tile', 'Transpose', 'Unsqueeze', 'Where', 'Xor',
] as const;

/**
 * Evaluate `node` (default domain) at `opset` on concrete inputs (undefined for an omitted
 * optional input). Returns one tensor per node output; throws ShapeEvalError when the folder
 * would leave the node computed (unsupported op, element type or input).
 */
export function evaluateNode(node: NodeProto, opset: number, inputs: (HostTensor | undefined)[]): HostTensor[] {
  const rule = shapeRuleFor(node.opType);
  if (!rule || !(FOLDED_OPS as readonly string[]).includes(node.opType)) throw new ShapeEvalError(`${node.opType} is not evaluated by the shape folder`);
  const ins = inputs.map((t, i) => {
    if (!t) return undefined;
    const v = fromHost(t);
    if (!v) throw new ShapeEvalError(`${node.opType} input ${i}: element type ${t.dataType} is not handled`);
    return { dataType: v.dataType, dims: [...v.dims], value: v };
  });
  const problems: string[] = [];
  const ctx: RuleContext = {
    node,
    opset,
    ins,
    valueLimit: Number.MAX_SAFE_INTEGER,
    conflict: (m) => problems.push(m),
    offer: (_c, m) => {
      problems.push(m);
      return undefined;
    },
  };
  const outs = rule(ctx);
  if (problems.length) throw new ShapeEvalError(`${node.opType}: ${problems.join('; ')}`);
  return node.output.map((_, i) => {
    const v = outs[i]?.value;
    if (!v) throw new ShapeEvalError(`${node.opType}: output ${i} not computed`);
    const h = toHost(v);
    if (!h) throw new ShapeEvalError(`${node.opType}: output ${i} has an element type without a typed array`);
    return h;
  });
}
