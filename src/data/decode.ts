// Image decoding with sharp to raw 8-bit HWC pixels, and PIL-identical mode conversion
// (convert('L') with Pillow's integer formula, convert('RGB') by replication, alpha dropped).
import * as fs from 'node:fs';
import sharp from 'sharp';
import { badInput } from '../errors.js';
import type { Image8 } from './resize.js';

/** Image file extensions accepted in folders and lists (torchvision's IMG_EXTENSIONS that sharp reads). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.gif'];

export function isImagePath(p: string): boolean {
  const lower = p.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/**
 * Pillow's RGB -> L (Convert.c, rgb2l): L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e. the
 * documented 299/587/114 weights in 16-bit fixed point, rounded. (Not (..)/1000: that formula
 * differs from what Pillow computes on about 0.07% of pixels.)
 */
export function rgbToL(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

/**
 * Convert interleaved 1..4-band pixels to 1 (L) or 3 (RGB) channels as PIL's convert does:
 * gray -> RGB replicates, RGB -> L uses rgbToL, alpha (band 2 of LA, band 4 of RGBA) is dropped.
 */
export function convertChannels(data: Uint8Array, width: number, height: number, inChannels: number, outChannels: 1 | 3): Image8 {
  const n = width * height;
  if (inChannels === outChannels) return { data, width, height, channels: outChannels };
  const out = new Uint8Array(n * outChannels);
  const gray = inChannels <= 2;
  for (let i = 0; i < n; i++) {
    const s = i * inChannels;
    if (outChannels === 1) {
      out[i] = gray ? data[s]! : rgbToL(data[s]!, data[s + 1]!, data[s + 2]!);
    } else if (gray) {
      const v = data[s]!;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    } else {
      out[i * 3] = data[s]!;
      out[i * 3 + 1] = data[s + 1]!;
      out[i * 3 + 2] = data[s + 2]!;
    }
  }
  return { data: out, width, height, channels: outChannels };
}

/**
 * Pillow's CMYK -> RGB (Convert.c, cmyk2rgb): R = clip(nk - MULDIV255(C, nk)) with nk = 255 - K and
 * MULDIV255(a, b) = ((a*b + 128) >> 8 + a*b + 128) >> 8. Extra bands (alpha) are dropped.
 */
export function cmykToRgb(data: Uint8Array, channels: number): Uint8Array {
  const n = Math.floor(data.length / channels);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    const nk = 255 - data[s + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = data[s + c]! * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/** Decoded pixels as the file stores them (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), 8 bits each. */
export interface RawImage extends Image8 {
  /** Decoder's name for the file format, e.g. 'jpeg' or 'png'. */
  format: string;
}

/**
 * Decode a JPEG/PNG/... file with sharp, keeping the pixels as stored: no EXIF rotation (PIL does
 * not rotate either) and no ICC colour transform (`ignoreIcc`; PIL keeps the profile but does not
 * apply it), so decoded bytes match `PIL.Image.open(f)`. Undecodable files raise exit code 2.
 */
export async function decodeRaw(file: string | Buffer, label = typeof file === 'string' ? file : '<buffer>'): Promise<RawImage> {
  if (typeof file === 'string' && !fs.existsSync(file)) {
    throw badInput(`image ${label} does not exist; check the path or remove it from the list (trace-path and probe-layers: or pass --skip-bad-images)`);
  }
  try {
    const img = sharp(file, { ignoreIcc: true, failOn: 'truncated' });
    const meta = await img.metadata();
    const format = String(meta.format ?? '');
    const grayFile = meta.space === 'b-w' || meta.space === 'grey16' || (meta.channels !== undefined && meta.channels <= 2);
    if (meta.space === 'cmyk') {
      // PIL keeps CMYK and converts it to RGB with its naive formula, not through a profile
      const { data, info } = await img.pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      return { data: cmykToRgb(data, info.channels), width: info.width, height: info.height, channels: 3, format };
    }
    if (meta.depth === 'ushort') {
      // 16-bit PNG/TIFF: PIL opens 16-bit gray as mode "I" (convert clips to 0..255) and everything
      // else (RGB, RGBA, gray+alpha) as 8-bit modes keeping each sample's high byte
      const { data, info } = await img
        .toColourspace(grayFile ? 'grey16' : 'rgb16')
        .raw({ depth: 'ushort' })
        .toBuffer({ resolveWithObject: true });
      const u16 = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
      const clipGray = grayFile && info.channels === 1;
      const out = Uint8Array.from(u16, (v) => (clipGray ? Math.min(v, 255) : v >> 8));
      return { data: out, width: info.width, height: info.height, channels: info.channels, format };
    }
    // sharp's raw output turns grayscale files into 3 identical bands; keep them as 1 band
    const { data, info } = await (grayFile ? img.toColourspace('b-w') : img).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: info.channels,
      format,
    };
  } catch (e) {
    const why = String((e as Error)?.message ?? e).split('\n')[0];
    throw badInput(`cannot decode image ${label} (${why}); replace it with a valid JPEG or PNG or remove it from the input (trace-path and probe-layers: or pass --skip-bad-images)`, e);
  }
}

/** Decode and convert to 1 (PIL "L") or 3 (PIL "RGB") channels. */
export async function decodeImage(file: string | Buffer, channels: 1 | 3, label?: string): Promise<Image8> {
  const raw = await decodeRaw(file, label);
  return convertChannels(raw.data, raw.width, raw.height, raw.channels, channels);
}
