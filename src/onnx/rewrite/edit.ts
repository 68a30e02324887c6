// A changed copy of a node. Spreading a protobuf message into create() hands back the plain
// object (it carries $typeName), which loses the proto2 defaults held on the prototype (an
// unset domain reads undefined); clone() keeps them.
import { clone, NodeProtoSchema, type NodeProto } from '../proto.js';

export function edited(node: NodeProto, change: Partial<Pick<NodeProto, 'input' | 'output' | 'attribute' | 'name'>>): NodeProto {
  const c = clone(NodeProtoSchema, node);
  if (change.input) c.input = [...change.input];
  if (change.output) c.output = [...change.output];
  if (change.attribute) c.attribute = [...change.attribute];
  if (change.name !== undefined) c.name = change.name;
  return c;
}
