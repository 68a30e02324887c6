// The merge service's pure parts: how many images shard K of N holds, and where each shard's
// images (and skipped images) go in the merged list: the j-th item of shard K is item K + j*N of
// the whole list, as trace-path's selectItems picks them.
import { describe, expect, it } from 'vitest';
import { mergeImages, shardImageCount, type ShardRun } from '../../src/services/merge.js';
import { selectItems } from '../../src/services/tracePath.js';
import type { ImageResult } from '../../src/services/traceCore.js';
import { VitpathError } from '../../src/errors.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `img-${String(i).padStart(2, '0')}`);

/** A shard report holding `items` of shard k/n, where the ids in `bad` were skipped. */
function shardOf(all: string[], k: number, n: number, bad: Set<string> = new Set()): ShardRun {
  const mine = selectItems(all, { index: k, count: n }, undefined);
  const images = mine.map((id, index) => ({ id, index }) as unknown as ImageResult).filter((im) => !bad.has(im.id));
  const skipped = mine.filter((id) => bad.has(id)).map((id) => ({ id, reason: `cannot decode ${id}` }));
  return {
    dir: `shard-${k}`,
    shard: { index: k, count: n },
    report: { options: {}, results: { data: { count: all.length }, images, skipped } } as never,
  };
}

describe('shardImageCount', () => {
  it('equals what selectItems gives every shard, for many list sizes and splits', () => {
    for (let total = 0; total <= 23; total++) {
      for (let n = 1; n <= 7; n++) {
        for (let k = 0; k < n; k++) expect(shardImageCount(total, k, n), `${total} ${k}/${n}`).toBe(selectItems(ids(total), { index: k, count: n }, undefined).length);
      }
    }
  });
});

describe('mergeImages', () => {
  it('puts every image back at its position in the whole list', () => {
    const all = ids(11);
    const { images, skipped } = mergeImages([0, 1, 2, 3].map((k) => shardOf(all, k, 4)));
    expect(images.map((im) => im.id)).toEqual(all);
    expect(images.map((im) => im.index)).toEqual(all.map((_, i) => i));
    expect(skipped).toEqual([]);
  });

  it('skipped images take the positions no result has, in input order', () => {
    const all = ids(13);
    const bad = new Set(['img-00', 'img-04', 'img-05', 'img-12']);
    const { images, skipped } = mergeImages([0, 1, 2].map((k) => shardOf(all, k, 3, bad)));
    expect(images.map((im) => im.id)).toEqual(all.filter((id) => !bad.has(id)));
    expect(images.map((im) => im.index)).toEqual(all.map((id, i) => (bad.has(id) ? -1 : i)).filter((i) => i >= 0));
    expect(skipped.map((s) => s.id)).toEqual(['img-00', 'img-04', 'img-05', 'img-12']);
  });

  it('refuses a shard short of its share and an image in two shards (exit 2)', () => {
    const all = ids(9);
    const short = shardOf(all, 1, 3);
    (short.report.results.images as ImageResult[]).pop();
    expect(() => mergeImages([shardOf(all, 0, 3), short, shardOf(all, 2, 3)])).toThrow(/shard 1\/3 holds 2 images but its share of the 9 images is 3/);
    const dup = shardOf(all, 2, 3);
    (dup.report.results.images as ImageResult[])[0]!.id = 'img-00';
    try {
      mergeImages([shardOf(all, 0, 3), shardOf(all, 1, 3), dup]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(VitpathError);
      expect((e as VitpathError).exitCode).toBe(2);
      expect((e as Error).message).toMatch(/overlapping images: img-00 is in both shard-0 and shard-2/);
    }
  });
});
