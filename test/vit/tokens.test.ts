// The token and layer helpers on located synthetic models: the layer list checked against the
// block count (sorted, no repeats), the batch dim the image input declares, and token indices.
import { describe, expect, it } from 'vitest';
import { usageMessage } from '../helpers/errors.js';
import { locateVit } from '../../src/vit/locate.js';
import { synthVitModel } from '../../src/vit/synth.js';
import { batchDim, checkLayers, defaultToken, resolveToken } from '../../src/vit/tokens.js';

const small = { imageSize: 8, channels: 2, patch: 4, width: 12, depth: 3, heads: 3, ffn: 20, classes: 5 };

describe('vit/tokens', () => {
  const layout = locateVit(synthVitModel(small));

  it('checkLayers: all blocks by default, sorted, and rejects empty, out-of-range and repeated lists', () => {
    expect(checkLayers(layout, undefined)).toEqual([0, 1, 2]);
    expect(checkLayers(layout, [2, 0])).toEqual([0, 2]);
    expect(usageMessage(() => checkLayers(layout, []))).toMatch(/no layers chosen/);
    expect(usageMessage(() => checkLayers(layout, [3]))).toMatch(/layer 3 does not exist; the model has 3 blocks \(0\.\.2\)/);
    expect(usageMessage(() => checkLayers(layout, [-1]))).toMatch(/layer -1 does not exist/);
    expect(usageMessage(() => checkLayers(layout, [1, 1]))).toMatch(/repeats a block/);
  });

  it('batchDim: the declared symbol for a dynamic batch, the number for a fixed one', () => {
    expect(batchDim(layout)).toBe('batch');
    expect(batchDim(locateVit(synthVitModel({ ...small, batch: 2 })))).toBe(2);
  });

  it('resolveToken: cls is row 0, indices count from the end when negative, and must exist', () => {
    const T = layout.facts.tokens;
    expect(T).toBe(5);
    expect(defaultToken(layout)).toBe('cls');
    expect(resolveToken(layout, 'cls')).toEqual({ kind: 'row', row: 0 });
    expect(resolveToken(layout, -1)).toEqual({ kind: 'row', row: T - 1 });
    expect(resolveToken(layout, 'mean')).toEqual({ kind: 'mean', rows: [1, 2, 3, 4] });
    expect(usageMessage(() => resolveToken(layout, T))).toMatch(/outside 0\.\.4/);
    const meanPooled = locateVit(synthVitModel({ ...small, head: 'mean' }));
    expect(defaultToken(meanPooled)).toBe('mean');
  });
});
