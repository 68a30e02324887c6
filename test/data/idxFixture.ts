// Builds IDX files by hand for the data tests (big-endian header and values).
/** Build IDX bytes: magic 00 00 type ndims, big-endian uint32 dims, then big-endian data. */
export function buildIdx(type: number, dims: number[], values: number[]): Buffer {
  const size = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[type]!;
  const b = Buffer.alloc(4 + 4 * dims.length + values.length * size);
  b[2] = type;
  b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  const o = 4 + 4 * dims.length;
  values.forEach((v, i) => {
    const at = o + i * size;
    if (type === 0x08) b.writeUInt8(v, at);
    else if (type === 0x09) b.writeInt8(v, at);
    else if (type === 0x0b) b.writeInt16BE(v, at);
    else if (type === 0x0c) b.writeInt32BE(v, at);
    else if (type === 0x0d) b.writeFloatBE(v, at);
    else b.writeDoubleBE(v, at);
  });
  return b;
}
