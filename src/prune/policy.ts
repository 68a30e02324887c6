// Which FFN neurons to remove, from per-block scores: a fraction per block or over all blocks
// (global, scores divided by their block's mean so blocks compare), kept widths rounded to a
// multiple of --round-to (kernels run faster on aligned widths), protected neurons (a class's
// preferred path) never removed, excluded blocks left whole. Pure: scores in, keep lists out.
import { usageError } from '../errors.js';

export type Scope = 'per-block' | 'global';

export interface FfnPolicy {
  /** Fraction of FFN neurons to remove, in [0, 1). */
  fraction: number;
  scope: Scope;
  /** Kept widths are multiples of this (at least this, or the full width when smaller). */
  roundTo: number;
  /** Blocks left whole. */
  exclude?: readonly number[];
  /** Block -> neurons never removed. */
  protect?: ReadonlyMap<number, ReadonlySet<number>>;
}

export interface RemovedNeuron {
  block: number;
  index: number;
  score: number;
}

export interface FfnDecision {
  /** Block -> kept neurons, increasing (every block of the model). */
  keep: Map<number, number[]>;
  removed: RemovedNeuron[];
  /** Neurons before and after, over all blocks. */
  before: number;
  after: number;
}

export function checkPolicy(p: FfnPolicy, blocks: number): void {
  if (!(p.fraction >= 0 && p.fraction < 1)) throw usageError(`--ffn is the fraction of FFN neurons to remove, from 0 up to (not including) 1 (got ${p.fraction})`);
  if (!Number.isInteger(p.roundTo) || p.roundTo < 1) throw usageError(`--round-to must be a positive integer (got ${p.roundTo})`);
  for (const b of p.exclude ?? []) if (!Number.isInteger(b) || b < 0 || b >= blocks) throw usageError(`--exclude ${b}: the model has blocks 0..${blocks - 1}`);
}

/** `k` rounded to the nearest multiple of `r`, at least `min` rounded up, within [r, F] (F itself when F <= r or nothing is removed). */
export function roundWidth(k: number, F: number, r: number, min = 0): number {
  if (F <= r || k >= F) return F;
  let w = Math.round(k / r) * r;
  w = Math.max(w, Math.ceil(min / r) * r, r);
  return Math.min(w, F);
}

/** Indices of `scores` ordered from most to least important (ties: lower index first). */
function ranked(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/** Keep `k` neurons: the protected ones, then the best-scored others. */
function choose(scores: ArrayLike<number>, k: number, protect: ReadonlySet<number> | undefined): number[] {
  const keep = new Set<number>(protect ?? []);
  for (const j of ranked(scores)) {
    if (keep.size >= k) break;
    keep.add(j);
  }
  return [...keep].sort((a, b) => a - b);
}

/** Decide the kept neurons of every block (`scores` has one vector per block, in block order). */
export function planFfn(scores: readonly ArrayLike<number>[], p: FfnPolicy): FfnDecision {
  checkPolicy(p, scores.length);
  const excluded = new Set(p.exclude ?? []);
  const widths = scores.map((s) => s.length);
  const target = new Map<number, number>(); // block -> kept count before rounding
  if (p.scope === 'per-block') {
    scores.forEach((s, l) => target.set(l, s.length - Math.round(s.length * p.fraction)));
  } else {
    // Global: pool the candidates of every non-excluded block, scores relative to their block's mean.
    const pool: { l: number; j: number; v: number }[] = [];
    let total = 0;
    scores.forEach((s, l) => {
      if (excluded.has(l)) return;
      total += s.length;
      let mean = 0;
      for (let j = 0; j < s.length; j++) mean += Math.abs(s[j]!);
      mean /= s.length || 1;
      for (let j = 0; j < s.length; j++) if (!p.protect?.get(l)?.has(j)) pool.push({ l, j, v: mean > 0 ? s[j]! / mean : s[j]! });
    });
    pool.sort((a, b) => a.v - b.v || a.l - b.l || a.j - b.j);
    const removeCount = new Map<number, number>();
    for (const c of pool.slice(0, Math.round(total * p.fraction))) removeCount.set(c.l, (removeCount.get(c.l) ?? 0) + 1);
    scores.forEach((s, l) => target.set(l, s.length - (removeCount.get(l) ?? 0)));
  }
  const keep = new Map<number, number[]>();
  const removed: RemovedNeuron[] = [];
  scores.forEach((s, l) => {
    const F = s.length;
    if (excluded.has(l)) {
      keep.set(l, Array.from({ length: F }, (_, j) => j));
      return;
    }
    const prot = p.protect?.get(l);
    const k = roundWidth(target.get(l)!, F, p.roundTo, prot?.size ?? 0);
    const kept = choose(s, k, prot);
    keep.set(l, kept);
    const set = new Set(kept);
    for (let j = 0; j < F; j++) if (!set.has(j)) removed.push({ block: l, index: j, score: s[j]! });
  });
  const before = widths.reduce((a, b) => a + b, 0);
  return { keep, removed, before, after: before - removed.length };
}

/** Per block, keep all but the round(H·fraction) lowest-scored heads (at least one; ties: lower index kept). */
export function planHeads(scores: ReadonlyMap<number, ArrayLike<number>>, fraction: number): { keep: Map<number, number[]>; removed: RemovedNeuron[] } {
  if (!(fraction >= 0 && fraction < 1)) throw usageError(`--heads is the fraction of attention heads to remove, from 0 up to (not including) 1 (got ${fraction})`);
  const keep = new Map<number, number[]>();
  const removed: RemovedNeuron[] = [];
  for (const [l, s] of scores) {
    const H = s.length;
    const k = Math.max(1, H - Math.round(H * fraction));
    const kept = ranked(s).slice(0, k).sort((a, b) => a - b);
    keep.set(l, kept);
    const set = new Set(kept);
    for (let h = 0; h < H; h++) if (!set.has(h)) removed.push({ block: l, index: h, score: s[h]! });
  }
  return { keep, removed };
}
