// Decoding: channel layouts sharp returns, PIL-style mode conversion, ICC profiles left unapplied,
// and the bad-input errors (exit code 2, message names the file).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { lcgBytes } from './lcg.js';
import { convertChannels, decodeImage, decodeRaw, isImagePath, rgbToL } from '../../src/data/decode.js';
import { crc32, encodePng } from '../../src/data/png.js';
import { ExitCode, VitpathError } from '../../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-decode-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


async function expectBadInput(p: Promise<unknown>, file: string): Promise<VitpathError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(VitpathError);
  expect((e as VitpathError).exitCode).toBe(ExitCode.BAD_INPUT);
  expect((e as VitpathError).message).toContain(file);
  expect((e as VitpathError).message).not.toContain('\n');
  return e as VitpathError;
}

/** Insert an iCCP chunk (profile name "test") right after IHDR. */
function withIccp(png: Buffer, profile: Buffer): Buffer {
  const data = Buffer.concat([Buffer.from('test\0\0', 'latin1'), deflateSync(profile)]);
  const ch = Buffer.alloc(12 + data.length);
  ch.writeUInt32BE(data.length, 0);
  ch.write('iCCP', 4, 'ascii');
  data.copy(ch, 8);
  ch.writeUInt32BE(crc32(ch.subarray(4, 8 + data.length)), 8 + data.length);
  const ihdrEnd = 8 + 12 + 13;
  return Buffer.concat([png.subarray(0, ihdrEnd), ch, png.subarray(ihdrEnd)]);
}

describe('decodeRaw / decodeImage', () => {
  it('returns the stored pixels of gray and RGB PNGs with their channel count', async () => {
    const g = lcgBytes(5 * 4, 7);
    const rgb = lcgBytes(5 * 4 * 3, 8);
    const gRaw = await decodeRaw(encodePng(5, 4, 1, g));
    const cRaw = await decodeRaw(encodePng(5, 4, 3, rgb));
    expect([gRaw.width, gRaw.height, gRaw.channels, gRaw.format]).toEqual([5, 4, 1, 'png']);
    expect(Array.from(gRaw.data)).toEqual(Array.from(g));
    expect(cRaw.channels).toBe(3);
    expect(Array.from(cRaw.data)).toEqual(Array.from(rgb));
  });

  it('gray -> RGB replicates; RGB -> L uses Pillow\'s fixed-point weights', async () => {
    const g = lcgBytes(6, 9);
    const asRgb = await decodeImage(encodePng(3, 2, 1, g), 3);
    expect(Array.from(asRgb.data)).toEqual(Array.from(g).flatMap((v) => [v, v, v]));
    const rgb = lcgBytes(18, 10);
    const asL = await decodeImage(encodePng(3, 2, 3, rgb), 1);
    for (let i = 0; i < 6; i++) expect(asL.data[i]).toBe(rgbToL(rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!));
    // the weights sum to 65536: gray pixels stay themselves; primaries hit 0.299/0.587/0.114 * 255 rounded
    for (let v = 0; v < 256; v++) expect(rgbToL(v, v, v)).toBe(v);
    expect([rgbToL(255, 0, 0), rgbToL(0, 255, 0), rgbToL(0, 0, 255)]).toEqual([76, 150, 29]);
  });

  it('drops alpha from RGBA and gray+alpha PNGs', async () => {
    const rgba = lcgBytes(4 * 3 * 4, 11);
    const png = await sharp(Buffer.from(rgba), { raw: { width: 4, height: 3, channels: 4 } }).png().toBuffer();
    const raw = await decodeRaw(png);
    expect(raw.channels).toBe(4);
    expect(Array.from(raw.data)).toEqual(Array.from(rgba));
    const rgb = await decodeImage(png, 3);
    expect(Array.from(rgb.data)).toEqual(Array.from(rgba).filter((_, i) => i % 4 !== 3));
    const la = convertChannels(new Uint8Array([10, 200, 20, 0]), 2, 1, 2, 3);
    expect(Array.from(la.data)).toEqual([10, 10, 10, 20, 20, 20]);
  });

  it('does not apply an embedded ICC profile (PIL does not either)', async () => {
    const rgb = lcgBytes(8 * 8 * 3, 12);
    const p3 = await sharp(Buffer.from(rgb), { raw: { width: 8, height: 8, channels: 3 } }).withIccProfile('p3').png().toBuffer();
    const profile = (await sharp(p3).metadata()).icc!;
    expect(profile.length).toBeGreaterThan(100);
    const png = withIccp(encodePng(8, 8, 3, rgb), profile);
    const ours = await decodeImage(png, 3);
    expect(Array.from(ours.data)).toEqual(Array.from(rgb));
    // sharp's default path converts Display P3 to sRGB and changes the pixels
    const converted = await sharp(png).raw().toBuffer();
    expect(Array.from(converted)).not.toEqual(Array.from(rgb));
  });

  it('decodes JPEG files from disk', async () => {
    const f = path.join(tmp, 'ok.jpg');
    await sharp(Buffer.from(lcgBytes(16 * 16 * 3, 13)), { raw: { width: 16, height: 16, channels: 3 } }).jpeg().toFile(f);
    const img = await decodeImage(f, 3);
    expect([img.width, img.height, img.channels, img.data.length]).toEqual([16, 16, 3, 768]);
  });

  it('ignores EXIF orientation (PIL.Image.open does not rotate either)', async () => {
    const f = path.join(tmp, 'rotated.jpg');
    await sharp(Buffer.from(lcgBytes(12 * 5 * 3, 15)), { raw: { width: 12, height: 5, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toFile(f);
    expect((await sharp(f).metadata()).orientation).toBe(6);
    const img = await decodeImage(f, 3);
    expect([img.width, img.height]).toEqual([12, 5]);
  });

  it('an undecodable file is bad input naming the file', async () => {
    const f = path.join(tmp, 'garbage.png');
    fs.writeFileSync(f, 'this is not an image');
    const e = await expectBadInput(decodeImage(f, 3), f);
    expect(e.message).toMatch(/replace it|remove it/);
  });

  it('a truncated JPEG is bad input (PIL refuses truncated files too)', async () => {
    const full = await sharp(Buffer.from(lcgBytes(64 * 64 * 3, 14)), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    const f = path.join(tmp, 'truncated.jpg');
    fs.writeFileSync(f, full.subarray(0, Math.floor(full.length / 2)));
    await expectBadInput(decodeImage(f, 3), f);
  });

  it('a missing file is bad input naming the file', async () => {
    const f = path.join(tmp, 'nope.jpg');
    await expectBadInput(decodeImage(f, 1), f);
  });

  it('recognizes image extensions case-insensitively', () => {
    expect(['a.JPG', 'b.jpeg', 'c.Png', 'd.webp'].every(isImagePath)).toBe(true);
    expect(['a.txt', 'b.csv', 'c.gz'].some(isImagePath)).toBe(false);
  });
});
