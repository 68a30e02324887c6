// Expose intermediate tensors as extra graph outputs, or keep only a chosen set of outputs,
// without touching the computation (ONNX Runtime accepts outputs that carry only a name).
import type { ModelProto, ValueInfoProto } from '../proto.js';
import { GraphEditor } from '../edit.js';
import { badInput } from '../../errors.js';

/** An editor of `model` after checking that every name is a tensor of the graph (node output, input or initializer). */
function editorFor(model: ModelProto, names: readonly string[]): GraphEditor {
  const ed = new GraphEditor(model);
  const g = ed.graph;
  for (const n of names) {
    if (!g.producer.has(n) && !g.inputNames.includes(n) && !g.initializers.has(n)) {
      throw badInput(`expose: the model has no tensor named "${n}"; pick a node output (see \`vitpath inspect\`).`);
    }
  }
  return ed;
}

/** A copy of `model` whose outputs are its own outputs followed by `names` (duplicates skipped). */
export function exposeOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  const ed = editorFor(model, names);
  const have = new Set(model.graph!.output.map((v) => v.name));
  const extra: ValueInfoProto[] = [];
  for (const n of names) {
    if (have.has(n)) continue;
    have.add(n);
    extra.push(ed.declared(n));
  }
  ed.addOutputs(extra);
  return ed.model();
}

/** A copy of `model` whose outputs are exactly `names`, in that order. */
export function selectOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  const ed = editorFor(model, names);
  ed.setOutputs([...new Set(names)].map((n) => ed.declared(n)));
  return ed.model();
}
