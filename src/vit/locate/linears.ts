// Stable names for every linear layer of a located ViT (blocks.N.attn.qkv, blocks.N.mlp.fc1, head,
// ...), as one list in graph order: what inspect --layers shows and quantize/prune select by.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import type { LinearRef, LinearRole, NamedLinear, ViTLayout } from '../types.js';
import { constDims } from '../linear.js';

function named(name: string, role: LinearRole, block: number | null, l: LinearRef): NamedLinear {
  const out: NamedLinear = { name, role, block, kind: l.kind, node: l.node, input: l.input, output: l.output, weight: l.weight, inFeatures: l.inFeatures, outFeatures: l.outFeatures };
  if (l.bias) out.bias = l.bias;
  if (l.transB !== undefined) out.transB = l.transB;
  return out;
}

/** The named linears of `layout`: patch_embed, then per block the attention and MLP linears, then the head(s). */
export function namedLinears(layout: Omit<ViTLayout, 'linears'>, conv: NodeProto, g: Graph): NamedLinear[] {
  const list: NamedLinear[] = [];
  const w = constDims(g, conv.input[1]!)!;
  const pe: NamedLinear = {
    name: 'patch_embed',
    role: 'patch_embed',
    block: null,
    kind: 'conv',
    node: conv.name,
    input: conv.input[0]!,
    output: layout.patchEmbed.output,
    weight: conv.input[1]!,
    inFeatures: w[1]! * (w[2] ?? 1) * (w[3] ?? 1),
    outFeatures: w[0]!,
  };
  if (layout.patchEmbed.bias) pe.bias = layout.patchEmbed.bias;
  list.push(pe);
  for (const b of layout.blocks) {
    const a = b.attention;
    const p = `blocks.${b.index}`;
    if (a?.qkv) list.push(named(`${p}.attn.qkv`, 'qkv', b.index, a.qkv));
    for (const r of ['q', 'k', 'v'] as const) {
      const l = a?.[r];
      if (l) list.push(named(`${p}.attn.${r}`, r, b.index, l));
    }
    if (a) list.push(named(`${p}.attn.proj`, 'proj', b.index, a.proj));
    list.push(named(`${p}.mlp.fc1`, 'fc1', b.index, b.fc1));
    list.push(named(`${p}.mlp.fc2`, 'fc2', b.index, b.fc2));
  }
  const d = layout.distillation;
  list.push(named('head', 'head', null, d ? d.clsHead : layout.head));
  if (d) list.push(named('head_dist', 'head_dist', null, d.distHead));
  return list;
}
