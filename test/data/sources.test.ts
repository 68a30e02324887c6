// Discovery of images and labels: ImageFolder order, flat folders, lists, CSV labels, single
// files, IDX pairs, and every bad-input case (exit code 2, the message names the file).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodePng } from '../../src/data/png.js';
import { applyLabelsCsv, checkLabelRange, describeSource, discoverImages, readLabelsCsv } from '../../src/data/sources.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { buildIdx } from './idxFixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-src-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const png = encodePng(2, 2, 1, new Uint8Array([1, 2, 3, 4]));
function put(rel: string, content: string | Buffer = png): string {
  const p = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
}

function expectBad(f: () => unknown, ...mentions: string[]): VitpathError {
  let err: unknown = null;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a bad-input error').toBeInstanceOf(VitpathError);
  const e = err as VitpathError;
  expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
  for (const m of mentions) expect(e.message).toContain(m);
  expect(e.message).not.toContain('\n');
  return e;
}

describe('class-subfolder tree (torchvision ImageFolder)', () => {
  // classes: sorted folder names; files: sorted(os.walk(class_dir)) then sorted names
  put('tree/dog/b.png');
  put('tree/dog/a.JPG', png);
  put('tree/dog/sub/z.png');
  put('tree/dog/Sub2/c.png');
  put('tree/cat/x.png');
  put('tree/cat/notes.txt', 'not an image');
  put('tree/Zebra/q.png');
  fs.mkdirSync(path.join(tmp, 'tree/empty'), { recursive: true });
  put('tree/loose.png');

  it('labels are the sorted folder indices; order follows os.walk sorting; loose files and non-images ignored', () => {
    const src = discoverImages(path.join(tmp, 'tree'));
    expect(src.kind).toBe('class-folders');
    expect(src.classes).toEqual(['Zebra', 'cat', 'dog', 'empty']);
    expect(src.items.map((i) => [i.id, i.label])).toEqual([
      ['Zebra/q.png', 0],
      ['cat/x.png', 1],
      ['dog/a.JPG', 2],
      ['dog/b.png', 2],
      ['dog/Sub2/c.png', 2],
      ['dog/sub/z.png', 2],
    ]);
    expect(src.items.every((i) => i.path && path.isAbsolute(i.path))).toBe(true);
    expect(describeSource(src)).toMatchObject({ kind: 'class-folders', count: 6, labelled: 6, classes: ['Zebra', 'cat', 'dog', 'empty'] });
  });

  it('more class folders than model classes is bad input naming the folder', () => {
    const src = discoverImages(path.join(tmp, 'tree'));
    checkLabelRange(src, 4);
    expectBad(() => checkLabelRange(src, 3), path.join(tmp, 'tree'), 'empty');
  });
});

describe('flat folder + labels CSV', () => {
  put('flat/b.png');
  put('flat/a.png');
  put('flat/c.jpeg');
  put('flat/readme.md', 'x');

  it('sorted file names, unlabelled without a CSV', () => {
    const src = discoverImages(path.join(tmp, 'flat'));
    expect(src.kind).toBe('folder');
    expect(src.items.map((i) => i.id)).toEqual(['a.png', 'b.png', 'c.jpeg']);
    expect(src.items.every((i) => i.label === undefined)).toBe(true);
  });

  it('CSV with a header, names relative to the CSV or to the image folder', () => {
    const csv = put('labels.csv', 'file,label\nflat/a.png,3\n\n# comment\nb.png, 7\n');
    const src = discoverImages(path.join(tmp, 'flat'), { labels: csv });
    expect(src.items.map((i) => i.label)).toEqual([3, 7, undefined]);
    expect(src.labelsFrom).toBe(csv);
  });

  it('CSV without a header; quoted fields', () => {
    const csv = put('flat/labels2.csv', '"a.png",1\nc.jpeg,"0"\n');
    expect(readLabelsCsv(csv).map((r) => [r.file, r.label])).toEqual([
      ['a.png', 1],
      ['c.jpeg', 0],
    ]);
    const src = discoverImages(path.join(tmp, 'flat'), { labels: csv });
    expect(src.items.map((i) => i.label)).toEqual([1, undefined, 0]);
  });

  it('a labels file naming a missing image is bad input naming the labels file and the line', () => {
    const csv = put('bad-missing.csv', 'a.png,1\nghost.png,2\n');
    expectBad(() => discoverImages(path.join(tmp, 'flat'), { labels: csv }), csv, 'line 2', 'ghost.png');
  });

  it('a non-integer label is bad input naming the labels file', () => {
    const csv = put('bad-label.csv', 'file,label\na.png,1\nb.png,cat\n');
    expectBad(() => discoverImages(path.join(tmp, 'flat'), { labels: csv }), csv, 'line 3', '"cat"');
    const csv2 = put('bad-label2.csv', 'a.png,1.5\n');
    expectBad(() => readLabelsCsv(csv2), csv2);
    const csv3 = put('bad-label3.csv', 'a.png\n');
    expectBad(() => readLabelsCsv(csv3), csv3);
  });

  it('conflicting duplicate labels are bad input', () => {
    const csv = put('dup.csv', 'a.png,1\nflat/a.png,2\n');
    expectBad(() => discoverImages(path.join(tmp, 'flat'), { labels: csv }), csv);
  });

  it('a label outside the model classes is bad input naming the labels file', () => {
    const csv = put('range.csv', 'a.png,1\nb.png,10\n');
    const src = discoverImages(path.join(tmp, 'flat'), { labels: csv });
    checkLabelRange(src, 11);
    expectBad(() => checkLabelRange(src, 10), csv, 'b.png', '0..9');
    const neg = discoverImages(path.join(tmp, 'flat'), { labels: put('neg.csv', 'a.png,-1\n') });
    expectBad(() => checkLabelRange(neg, 10), 'neg.csv');
  });
});

describe('lists, CSV input, single files', () => {
  put('list/imgs/one.png');
  put('list/imgs/two.png');

  it('.txt list: paths relative to the list, in list order', () => {
    const list = put('list/files.txt', '# my images\nimgs/two.png\n\nimgs/one.png\n');
    const src = discoverImages(list);
    expect(src.kind).toBe('list');
    expect(src.items.map((i) => i.id)).toEqual(['imgs/two.png', 'imgs/one.png']);
  });

  it('.txt list naming a missing file, or repeating one, is bad input naming the list', () => {
    const list = put('list/bad.txt', 'imgs/one.png\nimgs/three.png\n');
    expectBad(() => discoverImages(list), list, 'line 2', 'imgs/three.png');
    const rep = put('list/rep.txt', 'imgs/one.png\n./imgs/one.png\n');
    expectBad(() => discoverImages(rep), rep, 'line 2');
  });

  it('.csv input is both the list and the labels', () => {
    const csv = put('list/set.csv', 'file,label\nimgs/one.png,4\nimgs/two.png,2\n');
    const src = discoverImages(csv);
    expect(src.items.map((i) => [i.id, i.label])).toEqual([
      ['imgs/one.png', 4],
      ['imgs/two.png', 2],
    ]);
    expectBad(() => discoverImages(put('list/set-bad.csv', 'imgs/four.png,1\n')), 'set-bad.csv', 'imgs/four.png');
  });

  it('a single image file, with an optional CSV label', () => {
    const f = path.join(tmp, 'list/imgs/one.png');
    const src = discoverImages(f);
    expect(src.kind).toBe('file');
    expect(src.items).toEqual([{ id: 'one.png', path: f }]);
    const labelled = discoverImages(f, { labels: put('list/one.csv', 'imgs/one.png,5\n') });
    expect(labelled.items[0]!.label).toBe(5);
  });
});

describe('empty or missing input', () => {
  it('a folder with no images is bad input naming the folder', () => {
    const d = path.join(tmp, 'nothing');
    fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(d, 'a.txt'), 'x');
    expectBad(() => discoverImages(d), d, 'no images');
  });
  it('an empty list is bad input naming the list', () => {
    const l = put('empty.txt', '# nothing\n\n');
    expectBad(() => discoverImages(l), l, 'no images');
  });
  it('a missing path is bad input', () => {
    expectBad(() => discoverImages(path.join(tmp, 'nowhere')), 'nowhere');
  });
});

describe('IDX pairs', () => {
  const imgs = buildIdx(0x08, [3, 2, 2], Array.from({ length: 12 }, (_, i) => i * 20));
  const labs = buildIdx(0x08, [3], [7, 0, 9]);

  it('a folder holding an images-idx3 / labels-idx1 pair (gzip)', () => {
    put('mn/t10k-images-idx3-ubyte.gz', gzipSync(imgs));
    put('mn/t10k-labels-idx1-ubyte.gz', gzipSync(labs));
    const src = discoverImages(path.join(tmp, 'mn'));
    expect(src.kind).toBe('idx');
    expect(src.items.map((i) => [i.id, i.idx!.index, i.label])).toEqual([
      ['t10k-images-idx3-ubyte.gz#0', 0, 7],
      ['t10k-images-idx3-ubyte.gz#1', 1, 0],
      ['t10k-images-idx3-ubyte.gz#2', 2, 9],
    ]);
    expect(src.idx).toMatchObject({ height: 2, width: 2, channels: 1 });
    expectBad(() => checkLabelRange(src, 9), 't10k-labels-idx1-ubyte.gz', 'label 9');
  });

  it('an images file directly (plain), with the sibling labels found by name', () => {
    const f = put('mn2/train-images-idx3-ubyte', imgs);
    put('mn2/train-labels-idx1-ubyte', labs);
    const src = discoverImages(f);
    expect(src.items.map((i) => i.label)).toEqual([7, 0, 9]);
  });

  it('an explicit labels file; a count mismatch is bad input naming both files', () => {
    const f = put('mn3/images-idx3-ubyte', imgs);
    const other = put('mn3/other-labels', buildIdx(0x08, [2], [1, 2]));
    expectBad(() => discoverImages(f, { labels: other }), other, f);
    const ok = put('mn3/ok-labels', buildIdx(0x08, [3], [1, 2, 3]));
    expect(discoverImages(f, { labels: ok }).items.map((i) => i.label)).toEqual([1, 2, 3]);
  });

  it('without a labels file the images are unlabelled', () => {
    const f = put('mn4/images-idx3-ubyte', imgs);
    expect(discoverImages(f).items.every((i) => i.label === undefined)).toBe(true);
  });

  it('CSV labels keyed by the item id also work for IDX', () => {
    const f = put('mn5/images-idx3-ubyte', imgs);
    const src = discoverImages(f);
    applyLabelsCsv(src, put('mn5/l.csv', 'images-idx3-ubyte#1,4\n'));
    expect(src.items.map((i) => i.label)).toEqual([undefined, 4, undefined]);
  });
});
