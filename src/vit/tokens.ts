// Which token rows and blocks a command reads, resolved against a located layout: the token choice
// ('cls', 'mean' over the rows the head averages, or a row index) with its default per model, the
// list of blocks, and the batch dim the image input declares (for the inputs rewrites add).
import type { ViTLayout } from './types.js';
import { usageError } from '../errors.js';

export type TokenChoice = 'cls' | 'mean' | number;

/**
 * The row the head reads: 'cls' for class-token models, 'mean' for mean-pooled ones (even when
 * they join a class token), and the distillation row when a distilled model's readout is that head.
 */
export function defaultToken(layout: ViTLayout): TokenChoice {
  if (layout.readout === 'dist' && layout.distillation) return layout.distillation.row;
  return layout.facts.pooling === 'mean' || !layout.classToken ? 'mean' : 'cls';
}

/** The token choice resolved against the layout: a row index, or 'mean' with its patch rows. */
export type ResolvedToken = { kind: 'row'; row: number } | { kind: 'mean'; rows: number[] };

export function resolveToken(layout: ViTLayout, token: TokenChoice): ResolvedToken {
  const T = layout.facts.tokens;
  if (token === 'cls') {
    if (!layout.classToken) {
      throw usageError(`the model has no class token (it pools by ${layout.facts.pooling}); use token 'mean' or a token index 0..${T - 1}.`);
    }
    return { kind: 'row', row: layout.classToken.row };
  }
  if (token === 'mean') {
    // The rows the head averages; for class-token models the patch rows (every row but the extra tokens).
    if (layout.meanRows) return { kind: 'mean', rows: Array.from({ length: layout.meanRows.end - layout.meanRows.start }, (_, i) => layout.meanRows!.start + i) };
    const extra = new Set([layout.classToken?.row, layout.distillation?.row]);
    const rows = Array.from({ length: T }, (_, i) => i).filter((i) => !extra.has(i));
    return { kind: 'mean', rows };
  }
  if (!Number.isInteger(token) || token < -T || token >= T) throw usageError(`token index ${token} is outside 0..${T - 1} (the model has ${T} tokens).`);
  return { kind: 'row', row: token < 0 ? token + T : token };
}

/** The blocks to act on (all when none are given), checked against the layout and sorted. */
export function checkLayers(layout: ViTLayout, layers: number[] | undefined): number[] {
  const n = layout.blocks.length;
  const ls = layers ?? Array.from({ length: n }, (_, i) => i);
  if (ls.length === 0) throw usageError('no layers chosen; pass at least one block index.');
  for (const l of ls) if (!Number.isInteger(l) || l < 0 || l >= n) throw usageError(`layer ${l} does not exist; the model has ${n} blocks (0..${n - 1}).`);
  if (new Set(ls).size !== ls.length) throw usageError(`layer list ${ls.join(',')} repeats a block.`);
  return [...ls].sort((a, b) => a - b);
}

/** The batch dim of the image input as declared (a number for fixed batch, else a symbol). */
export function batchDim(layout: ViTLayout): number | string {
  const d = layout.inputDims[0];
  return typeof d === 'number' && d > 0 ? d : typeof d === 'string' && d ? d : 'batch';
}
