// Expose intermediate tensors as extra graph outputs, or keep only a chosen set of outputs,
// without touching the computation (ONNX Runtime accepts outputs that carry only a name).
import { create, GraphProtoSchema, ModelProtoSchema, type ModelProto, type ValueInfoProto } from '../proto.js';
import { Graph } from '../graph.js';
import { namedValueInfo } from '../builder.js';
import { badInput } from '../../errors.js';

/** Check that every name is a tensor of the graph (node output, input or initializer). */
function assertTensors(model: ModelProto, names: readonly string[]): void {
  const g = new Graph(model);
  for (const n of names) {
    if (!g.producer.has(n) && !g.inputNames.includes(n) && !g.initializers.has(n)) {
      throw badInput(`expose: the model has no tensor named "${n}"; pick a node output (see \`vitpath inspect\`).`);
    }
  }
}

/** Value info for an output: the declared one when the graph has it, else a bare name. */
function outputInfo(model: ModelProto, name: string): ValueInfoProto {
  const g = model.graph!;
  return g.output.find((v) => v.name === name) ?? g.valueInfo.find((v) => v.name === name) ?? g.input.find((v) => v.name === name) ?? namedValueInfo(name);
}

/** A copy of `model` whose outputs are its own outputs followed by `names` (duplicates skipped). */
export function exposeOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  assertTensors(model, names);
  const have = new Set(model.graph!.output.map((v) => v.name));
  const extra: ValueInfoProto[] = [];
  for (const n of names) {
    if (have.has(n)) continue;
    have.add(n);
    extra.push(outputInfo(model, n));
  }
  return create(ModelProtoSchema, { ...model, graph: create(GraphProtoSchema, { ...model.graph!, output: [...model.graph!.output, ...extra] }) });
}

/** A copy of `model` whose outputs are exactly `names`, in that order. */
export function selectOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  assertTensors(model, names);
  const uniq = [...new Set(names)];
  return create(ModelProtoSchema, { ...model, graph: create(GraphProtoSchema, { ...model.graph!, output: uniq.map((n) => outputInfo(model, n)) }) });
}
