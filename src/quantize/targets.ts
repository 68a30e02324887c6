// The linear layers quantize can act on, with canonical names (`blocks.N.attn.qkv|q|k|v|proj`,
// `blocks.N.mlp.fc1|fc2`, `patch_embed`, `head`), and the --include / --exclude scope over them.
// The attention linears are found here from the block's attention region until the shared locator
// names them on ViTLayout (branch r1); fc1/fc2, head and patch embedding come from the layout.
import type { Graph } from '../onnx/graph.js';
import { findLinears } from '../vit/linear.js';
import type { LinearRef, ViTLayout } from '../vit/types.js';
import { usageError } from '../errors.js';

export type LinearKind = 'qkv' | 'q' | 'k' | 'v' | 'proj' | 'fc1' | 'fc2' | 'head';

export interface QuantTarget {
  /** Canonical name, e.g. `blocks.3.mlp.fc2`. */
  name: string;
  /** Block index; null for the head. */
  block: number | null;
  kind: LinearKind;
  linear: LinearRef;
}

/** Every linear of the located ViT in block order (attention, then MLP), then the head. */
export function linearTargets(g: Graph, layout: ViTLayout): QuantTarget[] {
  const linears = [...findLinears(g).values()];
  const out: QuantTarget[] = [];
  for (const b of layout.blocks) {
    const region = intersect(g.ancestors([b.attnBranch], new Set([b.input])), g.descendants([b.input]));
    const attn = linears.filter((l) => region.has(l.output) && l.output !== b.input);
    const beforeSoftmax = g.ancestors([b.attnSoftmax], new Set([b.input]));
    const afterSoftmax = g.descendants([b.attnSoftmax]);
    const proj = attn.filter((l) => afterSoftmax.has(l.input));
    const inputs = attn.filter((l) => !afterSoftmax.has(l.input));
    const add = (kind: LinearKind, l: LinearRef) => out.push({ name: `blocks.${b.index}.attn.${kind}`, block: b.index, kind, linear: l });
    if (inputs.length === 1) add('qkv', inputs[0]!);
    else if (inputs.length === 3) {
      const v = inputs.filter((l) => !beforeSoftmax.has(l.output));
      const qk = inputs.filter((l) => beforeSoftmax.has(l.output));
      if (v.length === 1 && qk.length === 2) {
        // q and k in file order (exporters emit q first); the shared locator tells them apart exactly.
        add('q', qk[0]!);
        add('k', qk[1]!);
        add('v', v[0]!);
      }
    }
    if (proj.length === 1) add('proj', proj[0]!);
    out.push({ name: `blocks.${b.index}.mlp.fc1`, block: b.index, kind: 'fc1', linear: b.fc1 });
    out.push({ name: `blocks.${b.index}.mlp.fc2`, block: b.index, kind: 'fc2', linear: b.fc2 });
  }
  out.push({ name: 'head', block: null, kind: 'head', linear: layout.head });
  return out;
}

function intersect<T>(a: Set<T>, b: Set<T>): Set<T> {
  return new Set([...a].filter((x) => b.has(x)));
}

/** Kinds quantized when the user names no scope: every linear of every block. */
export const DEFAULT_KINDS: readonly LinearKind[] = ['qkv', 'q', 'k', 'v', 'proj', 'fc1', 'fc2'];

/**
 * Whether a name matches one pattern: `*` matches within one dotted part (`blocks.*.mlp.fc1`), a
 * pattern without a dot that is a kind matches that kind in every block (`fc2`, `attn`, `mlp`), and a
 * pattern matches every name it is a dotted prefix of (`blocks.3` is all of block 3).
 */
export function matchesPattern(name: string, pattern: string): boolean {
  const p = pattern.trim();
  if (p === '') return false;
  if (!p.includes('.')) {
    const parts = name.split('.');
    if (parts.includes(p)) return true;
  }
  const re = new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*') + '(\\..*)?$');
  return re.test(name);
}

/**
 * The targets in scope: the default kinds (or every target matching --include), minus those matching
 * --exclude. A pattern that matches no target is a usage error naming the available names.
 */
export function selectTargets(targets: readonly QuantTarget[], include?: readonly string[], exclude?: readonly string[]): QuantTarget[] {
  const check = (flag: string, pats: readonly string[] | undefined) => {
    for (const p of pats ?? []) {
      if (!targets.some((t) => matchesPattern(t.name, p))) {
        throw usageError(`${flag} ${p} matches no linear layer; names look like ${targets.slice(0, 4).map((t) => t.name).join(', ')}, ... (kinds: qkv, q, k, v, proj, fc1, fc2, head; or blocks.N)`);
      }
    }
  };
  check('--include', include);
  check('--exclude', exclude);
  const inScope = include && include.length > 0 ? targets.filter((t) => include.some((p) => matchesPattern(t.name, p))) : targets.filter((t) => DEFAULT_KINDS.includes(t.kind));
  return inScope.filter((t) => !(exclude ?? []).some((p) => matchesPattern(t.name, p)));
}
