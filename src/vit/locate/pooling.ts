// The pooling locator: between the last block and each head, the token pooling (one row: class or
// distillation token; or a mean over all rows or a range of them) and the final norm on the main
// head's path. Checks that averaged heads each read their own token row.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import { attrInt, attrInts } from '../../onnx/attributes.js';
import { unsupported } from '../../errors.js';
import type { LinearRef, NormRef } from '../types.js';
import { normAfter } from '../patterns.js';
import { constInts, rankOf } from '../shapes.js';
import { dataDescendants, intersect } from './walk.js';

/** Token pooling: one row (cls), or the mean over rows [start, end) (end may be huge or negative, as Slice allows). */
export interface Pooling {
  kind: 'cls' | 'mean';
  row: number;
  start: number;
  end: number;
}

/** Whether node `n` pools tokens: a Gather/Slice of one token (cls) or a ReduceMean over tokens (of all rows, or of a Slice of them). */
function poolingOf(g: Graph, n: NodeProto, label = 'model'): Pooling | undefined {
  const rank = rankOf(g, n.input[0] ?? '');
  const tokenAxis = (axis: number) => axis === 1 || (rank !== undefined && rank >= 3 && axis === rank - 2) || (rank === 3 && axis === -2);
  /** The token rows a Slice keeps: undefined when it leaves the token axis whole, 'unreadable' when it is not a plain range of it. */
  const tokenSlice = (s: NodeProto): { start: number; end: number } | 'unreadable' | undefined => {
    const starts = attrInts(s, 'starts') ?? constInts(g, s.input[1]);
    const ends = attrInts(s, 'ends') ?? constInts(g, s.input[2]);
    const axes = attrInts(s, 'axes') ?? constInts(g, s.input[3]) ?? starts?.map((_, i) => i);
    const steps = !attrInts(s, 'starts') && s.input[4] ? constInts(g, s.input[4]) : undefined;
    if (!starts || !ends || !axes) return 'unreadable';
    const k = axes.findIndex((a) => tokenAxis(a));
    if (k < 0) return undefined;
    if (steps && steps[k] !== 1) return 'unreadable';
    return { start: starts[k]!, end: ends[k]! };
  };
  if (n.opType === 'Gather') {
    const idx = constInts(g, n.input[1]);
    if (idx && idx.length === 1 && tokenAxis(attrInt(n, 'axis', 0))) return { kind: 'cls', row: idx[0]!, start: idx[0]!, end: idx[0]! + 1 };
  }
  if (n.opType === 'Slice') {
    const sl = tokenSlice(n);
    if (sl && sl !== 'unreadable' && sl.end - sl.start === 1) return { kind: 'cls', row: sl.start, start: sl.start, end: sl.end };
  }
  if (n.opType === 'ReduceMean') {
    const axes = attrInts(n, 'axes') ?? constInts(g, n.input[1]);
    if (axes && axes.length === 1 && tokenAxis(axes[0]!)) {
      const p = g.producerOf(n.input[0] ?? '');
      const sl = p?.opType === 'Slice' ? tokenSlice(p) : undefined;
      if (sl === 'unreadable') {
        throw unsupported(`${label}: the head averages tokens after a Slice that is not a plain range of token rows (node "${p!.name || p!.output[0]}"); vitpath reads a mean over all tokens or over rows start..end.`);
      }
      return { kind: 'mean', row: 0, start: sl?.start ?? 0, end: sl?.end ?? Number.MAX_SAFE_INTEGER };
    }
  }
  return undefined;
}

export interface HeadPooling {
  head: LinearRef;
  /** Tensors after the blocks that the head reads. */
  headPath: Set<string>;
  pathNodes: NodeProto[];
  pool: Pooling;
}

/**
 * Each head's pooling, sorted by the row it reads (the class head first), and the final norm on
 * the main (first) head's path.
 */
export function locatePooling(
  g: Graph,
  order: NodeProto[],
  lastOutput: string,
  heads: LinearRef[],
  afterBlocks: Set<string>,
  opts: { label: string; numBlocks: number },
  fail: (why: string) => never,
): { pools: HeadPooling[]; finalNorm?: NormRef } {
  const { label } = opts;
  const tokenData = dataDescendants(g, lastOutput);
  const found = heads.map((h) => {
    const headPath = intersect(g.ancestors([h.input]), afterBlocks);
    const pathNodes = order.filter((n) => n.output.some((o) => headPath.has(o)));
    let pool: Pooling | undefined;
    for (const n of pathNodes.filter((x) => tokenData.has(x.input[0] ?? ''))) {
      pool = poolingOf(g, n, label);
      if (pool) break;
    }
    return { head: h, headPath, pathNodes, pool };
  });
  if (found.some((p) => !p.pool)) fail(`${opts.numBlocks} transformer block(s) and a head, but no token pooling between them (a Gather/Slice of one token or a ReduceMean over tokens)`);
  const pools = found as HeadPooling[];
  if (pools.length > 1 && !pools.every((p) => p.pool.kind === 'cls')) {
    throw unsupported(`${label}: the logits average ${pools.length} heads pooled by ${pools.map((p) => (p.pool.kind === 'cls' ? `token row ${p.pool.row}` : 'mean')).join(' and ')}; vitpath reads a class-token head averaged with a distillation-token head (DeiT), each reading one token row.`);
  }
  const rowsRead = new Set(pools.map((p) => p.pool.row));
  if (rowsRead.size !== pools.length) throw unsupported(`${label}: the logits average ${pools.length} heads that read the same token row ${[...rowsRead].join(', ')}; vitpath reads a class-token head averaged with a distillation-token head (DeiT).`);
  // The class head reads the lowest row (DeiT joins [class, distillation, patches]).
  pools.sort((a, b) => a.pool.row - b.pool.row);
  const main = pools[0]!;
  let finalNorm: NormRef | undefined;
  for (const t of [lastOutput, ...main.pathNodes.flatMap((n) => n.output)]) {
    if (!main.headPath.has(t)) continue;
    finalNorm = normAfter(g, t, (o) => main.headPath.has(o));
    if (finalNorm) break;
  }
  return finalNorm ? { pools, finalNorm } : { pools };
}
