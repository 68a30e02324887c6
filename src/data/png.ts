// A tiny deterministic PNG encoder (8-bit grayscale or RGB, no filtering) for fixtures and tests.
// Level 0 (stored deflate blocks) by default so the bytes do not depend on the zlib build.
import { deflateSync } from 'node:zlib';
import { usageError } from '../errors.js';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export interface PngOptions {
  /** zlib level 0..9; 0 (default) writes stored blocks, identical with every zlib build. */
  level?: number;
}

/**
 * Encode `data` (row-major, `channels` interleaved bytes per pixel: 1 = gray, 3 = RGB) as PNG.
 */
export function encodePng(width: number, height: number, channels: 1 | 3 | number, data: Uint8Array, opts: PngOptions = {}): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw usageError(`encodePng: bad size ${width}x${height}`);
  if (channels !== 1 && channels !== 3) throw usageError(`encodePng: channels must be 1 (gray) or 3 (RGB), got ${channels}`);
  if (data.length !== width * height * channels) throw usageError(`encodePng: ${data.length} bytes do not fill ${width}x${height}x${channels}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 1 ? 0 : 2; // color type: gray / truecolor
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering (we use filter type 0 on every row)
  ihdr[12] = 0; // no interlace
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    raw.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const idat = deflateSync(raw, { level: opts.level ?? 0 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}
