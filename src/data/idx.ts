// Reader for IDX files (the MNIST format): magic 0x0000<type><ndims>, big-endian dims, data.
// Gzip-compressed files are detected by their magic bytes (1f 8b), whatever their name.
import * as fs from 'node:fs';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { badInput } from '../errors.js';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  file: string;
  dims: number[];
  /** 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64' */
  dtype: string;
  data: IdxData;
}

const TYPES: Record<number, { name: string; size: number }> = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
};

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Whether the bytes (possibly gzip) start like an IDX file. Reads only what it needs. */
export function looksLikeIdx(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    let head: Uint8Array = Buffer.alloc(512);
    const n = fs.readSync(fd, head, 0, 512, 0);
    fs.closeSync(fd);
    head = head.subarray(0, n);
    if (isGzip(head)) head = gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    return head.length >= 4 && head[0] === 0 && head[1] === 0 && TYPES[head[2]!] !== undefined && head[3]! >= 1 && head[3]! <= 4;
  } catch {
    return false;
  }
}

/** Parse IDX bytes (already gunzipped or not). */
export function parseIdx(bytesIn: Uint8Array, file = '<buffer>'): IdxArray {
  let bytes = bytesIn;
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw badInput(`${file} looks gzip-compressed but cannot be decompressed (${(e as Error).message}); download the file again`, e);
    }
  }
  const fix = 'expected an IDX file (magic 0x0000, type byte, dimension count; e.g. MNIST t10k-images-idx3-ubyte)';
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw badInput(`${file} is not an IDX file: ${fix}`);
  const t = TYPES[bytes[2]!];
  const nd = bytes[3]!;
  if (!t) throw badInput(`${file} has an unknown IDX element type 0x${bytes[2]!.toString(16)}: ${fix}`);
  if (nd < 1 || bytes.length < 4 + 4 * nd) throw badInput(`${file} has a truncated IDX header: ${fix}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * nd;
  const need = start + count * t.size;
  if (bytes.length < need) {
    throw badInput(`${file} is truncated: header says ${dims.join('x')} ${t.name} (${need} bytes) but the file has ${bytes.length}; download it again`);
  }
  let data: IdxData;
  switch (t.name) {
    case 'uint8':
      data = new Uint8Array(bytes.subarray(start, need)); // a copy, never a view of a Buffer pool
      break;
    case 'int8':
      data = new Int8Array(new Uint8Array(bytes.subarray(start, need)).buffer);
      break;
    default: {
      const arr = t.name === 'int16' ? new Int16Array(count) : t.name === 'int32' ? new Int32Array(count) : t.name === 'float32' ? new Float32Array(count) : new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const o = start + i * t.size;
        arr[i] =
          t.name === 'int16' ? view.getInt16(o, false) : t.name === 'int32' ? view.getInt32(o, false) : t.name === 'float32' ? view.getFloat32(o, false) : view.getFloat64(o, false);
      }
      data = arr;
    }
  }
  return { file, dims, dtype: t.name, data };
}

/** Read an IDX file from disk (gzip or not). */
export function readIdx(file: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw badInput(`cannot read IDX file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path`, e);
  }
  return parseIdx(bytes, file);
}

/** Images of an IDX file: uint8 with dims [N, H, W] (gray) or [N, H, W, C]. */
export function idxImages(a: IdxArray): { count: number; height: number; width: number; channels: number; data: Uint8Array } {
  if (a.dtype !== 'uint8' || (a.dims.length !== 3 && a.dims.length !== 4)) {
    throw badInput(`${a.file} holds ${a.dtype} data of shape ${a.dims.join('x')}; an image IDX file must be uint8 [N,H,W] or [N,H,W,C]`);
  }
  const [count, height, width, channels = 1] = a.dims as [number, number, number, number?];
  return { count, height, width, channels, data: a.data as Uint8Array };
}

/** Labels of an IDX file: integer dims [N]. */
export function idxLabels(a: IdxArray): Int32Array {
  if (a.dims.length !== 1 || a.dtype.startsWith('float')) {
    throw badInput(`${a.file} holds ${a.dtype} data of shape ${a.dims.join('x')}; a label IDX file must be integers of shape [N]`);
  }
  return Int32Array.from(a.data as ArrayLike<number>);
}
