// An op with no gradient rule on the path from a differentiated tensor to the loss is exit 3,
// naming the op and the node; the same op off that path is fine.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { ruleFor } from '../../src/onnx/autodiff/registry.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import type { TensorFacts } from '../../src/onnx/autodiff/types.js';

function model(sinOnPath: boolean) {
  const b = new GraphBuilder(17, 't');
  // y = sum(sin(x) * w) when on the path; else y = sum(x * w) + sum(sin(w))
  const s = sinOnPath ? b.op('Sin', ['x'], {}, 'sx') : b.op('Sin', ['w'], {}, 'sw');
  const prod = b.op('Mul', [sinOnPath ? s : 'x', 'w'], {}, 'p');
  const sum = b.reduceSum(prod, [0], false);
  const y = sinOnPath ? b.op('Identity', [sum], {}, 'y') : b.op('Add', [sum, b.reduceSum(s, [0], false)], {}, 'y');
  const f32 = DataType.FLOAT;
  return {
    proto: makeModel({ opset: 17, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', f32, [3]), tensorValueInfo('w', f32, [3])], [tensorValueInfo(y, f32, [])], b.initializers) }),
    facts: new Map<string, TensorFacts>(
      [...b.nodes.flatMap((n) => n.output), 'x', 'w'].map((n) => [n, { dataType: f32, dims: n === 'y' || n.includes('ReduceSum') ? [] : [3] }]),
    ),
  };
}

describe('unsupported operators on the gradient path', () => {
  it('Sin has no rule (the premise of this test)', () => {
    expect(ruleFor('Sin')).toBeUndefined();
  });
  it('exits 3 naming the op and the node, and lists what is supported', () => {
    const m = model(true);
    let err: unknown;
    try {
      buildGradientGraph(m.proto, { loss: 'y', wrt: ['x'], facts: m.facts });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(ExitCode.UNSUPPORTED);
    expect((err as VitpathError).message).toMatch(/operator Sin \(node "t\/Sin_node"\)/);
    expect((err as VitpathError).message).toMatch(/MatMul/);
  });
  it('the same op off the path (only feeding a constant branch) does not stop the gradient', () => {
    const m = model(false);
    const g = buildGradientGraph(m.proto, { loss: 'y', wrt: ['x'], facts: m.facts });
    expect(g.gradOutputs.x).toBe('grad/x');
  });
});
