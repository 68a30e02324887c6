// The linear layers quantize can act on, with the layout's stable names (`blocks.N.attn.qkv|q|k|v|proj`,
// `blocks.N.mlp.fc1|fc2`, `head`, `head_dist`; vit/locate's named linears, as `inspect --layers`
// lists them), and the --include / --exclude scope over them. The patch embedding (a Conv) is not
// a target: it stays float.
import type { LinearRef, LinearRole, ViTLayout } from '../vit/types.js';
import { usageError } from '../errors.js';

export type LinearKind = Exclude<LinearRole, 'patch_embed'>;

export interface QuantTarget {
  /** Canonical name, e.g. `blocks.3.mlp.fc2`. */
  name: string;
  /** Block index; null for the head. */
  block: number | null;
  kind: LinearKind;
  linear: LinearRef;
}

/** Every linear of the located ViT in graph order (per block attention, then MLP; then the head or heads). */
export function linearTargets(layout: ViTLayout): QuantTarget[] {
  const out: QuantTarget[] = [];
  for (const l of layout.linears) {
    if (l.kind === 'conv' || l.role === 'patch_embed') continue;
    const { name, role, block, ...ref } = l;
    out.push({ name, block, kind: role as LinearKind, linear: { ...ref, kind: l.kind } as LinearRef });
  }
  return out;
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
        throw usageError(`${flag} ${p} matches no linear layer; names look like ${targets.slice(0, 4).map((t) => t.name).join(', ')}, ... (kinds: qkv, q, k, v, proj, fc1, fc2, head; or blocks.N; see vitpath inspect --layers)`);
      }
    }
  };
  check('--include', include);
  check('--exclude', exclude);
  const inScope = include && include.length > 0 ? targets.filter((t) => include.some((p) => matchesPattern(t.name, p))) : targets.filter((t) => DEFAULT_KINDS.includes(t.kind));
  return inScope.filter((t) => !(exclude ?? []).some((p) => matchesPattern(t.name, p)));
}
