// The deterministic byte generator shared by the data tests and scripts/reference/pil_resize.py:
// x <- (1103515245 x + 12345) mod 2^31, byte = (x >> 16) & 255.
export function lcgBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    out[i] = (x >>> 16) & 255;
  }
  return out;
}
