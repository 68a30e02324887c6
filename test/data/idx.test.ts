// IDX reader: hand-built files (plain and gzip), element types, and malformed files (exit code 2).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { idxImages, idxLabels, looksLikeIdx, parseIdx, readIdx } from '../../src/data/idx.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { buildIdx } from './idxFixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-idx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function expectBad(f: () => unknown, file: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    expect((e as VitpathError).exitCode).toBe(ExitCode.BAD_INPUT);
    expect((e as VitpathError).message).toContain(file);
    return;
  }
  throw new Error('expected a bad-input error');
}

describe('IDX', () => {
  const pixels = Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 11) % 256);

  it('parses uint8 images [N,H,W], plain and gzip (detected by magic, not name)', () => {
    const raw = buildIdx(0x08, [2, 3, 4], pixels);
    const plainFile = path.join(tmp, 'imgs.bin');
    const gzFile = path.join(tmp, 'imgs-no-gz-suffix');
    fs.writeFileSync(plainFile, raw);
    fs.writeFileSync(gzFile, gzipSync(raw));
    for (const f of [plainFile, gzFile]) {
      const a = readIdx(f);
      expect(a.dims).toEqual([2, 3, 4]);
      expect(a.dtype).toBe('uint8');
      expect(Array.from(a.data)).toEqual(pixels);
      expect(looksLikeIdx(f)).toBe(true);
      const im = idxImages(a);
      expect([im.count, im.height, im.width, im.channels]).toEqual([2, 3, 4, 1]);
    }
  });

  it('reads the other element types big-endian', () => {
    expect(Array.from(parseIdx(buildIdx(0x09, [3], [-1, 0, 7])).data)).toEqual([-1, 0, 7]);
    expect(Array.from(parseIdx(buildIdx(0x0b, [2], [-300, 300])).data)).toEqual([-300, 300]);
    expect(Array.from(parseIdx(buildIdx(0x0c, [2], [-70000, 5])).data)).toEqual([-70000, 5]);
    expect(Array.from(parseIdx(buildIdx(0x0d, [2], [0.5, -2.25])).data)).toEqual([0.5, -2.25]);
    expect(Array.from(parseIdx(buildIdx(0x0e, [1], [Math.PI])).data)).toEqual([Math.PI]);
    expect(Array.from(idxLabels(parseIdx(buildIdx(0x0c, [3], [9, 0, 4]))))).toEqual([9, 0, 4]);
  });

  it('rejects non-IDX, unknown types, truncated data and wrong shapes as bad input naming the file', () => {
    const f = path.join(tmp, 'bad.idx');
    expectBad(() => parseIdx(Buffer.from('hello world'), f), f);
    const unknown = buildIdx(0x08, [1], [1]);
    unknown[2] = 0x42;
    expectBad(() => parseIdx(unknown, f), f);
    expectBad(() => parseIdx(buildIdx(0x08, [2, 3, 4], pixels).subarray(0, 20), f), f);
    expectBad(() => parseIdx(Buffer.from([0x1f, 0x8b, 1, 2, 3]), f), f);
    expectBad(() => idxImages(parseIdx(buildIdx(0x08, [4], [1, 2, 3, 4]), f)), f);
    expectBad(() => idxLabels(parseIdx(buildIdx(0x0d, [1], [1]), f)), f);
    expectBad(() => readIdx(path.join(tmp, 'missing-idx3-ubyte')), 'missing-idx3-ubyte');
    fs.writeFileSync(f, 'hello');
    expect(looksLikeIdx(f)).toBe(false);
  });
});
