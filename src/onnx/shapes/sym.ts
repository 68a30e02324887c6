// Integers that may depend on the batch size B (any integer >= 1): either a plain bigint or
// a*B + c (a != 0), with the arithmetic shape subgraphs use. Anything that would not stay
// linear in B (B*B, a division that is not exact for every B) yields undefined: not foldable.

/** a*B + c with a !== 0; B is the batch size, an unknown integer >= 1. */
export interface Lin {
  readonly a: bigint;
  readonly c: bigint;
}

/** An integer element: known (bigint) or linear in the batch size. */
export type SymInt = bigint | Lin;

/** A tensor dimension: known (number) or linear in the batch size. */
export type Dim = number | Lin;

/** The batch size itself. */
export const BATCH: Lin = Object.freeze({ a: 1n, c: 0n });

export function isLin(x: unknown): x is Lin {
  return typeof x === 'object' && x !== null && 'a' in x && 'c' in x;
}

/** a*B + c, collapsing to a bigint when a is 0. */
export function lin(a: bigint, c: bigint): SymInt {
  return a === 0n ? c : { a, c };
}

const parts = (x: SymInt): [bigint, bigint] => (isLin(x) ? [x.a, x.c] : [0n, x]);

export function symAdd(x: SymInt, y: SymInt): SymInt {
  const [a, c] = parts(x);
  const [b, d] = parts(y);
  return lin(a + b, c + d);
}

export function symNeg(x: SymInt): SymInt {
  const [a, c] = parts(x);
  return lin(-a, -c);
}

export function symSub(x: SymInt, y: SymInt): SymInt {
  return symAdd(x, symNeg(y));
}

/** Product; undefined when both depend on B (not linear). */
export function symMul(x: SymInt, y: SymInt): SymInt | undefined {
  if (isLin(x) && isLin(y)) return undefined;
  if (isLin(x)) return lin(x.a * (y as bigint), x.c * (y as bigint));
  if (isLin(y)) return lin(y.a * x, y.c * x);
  return x * y;
}

/**
 * Integer division truncating toward zero (what ONNX Runtime and the exporters' int64 Div do).
 * For a B-dependent dividend the result must be exact for every B (a and c divisible), else undefined.
 */
export function symDiv(x: SymInt, y: SymInt): SymInt | undefined {
  if (isLin(y)) return undefined;
  if (y === 0n) return undefined;
  if (!isLin(x)) return x / y; // bigint division truncates toward zero
  if (x.a % y !== 0n || x.c % y !== 0n) return undefined;
  return lin(x.a / y, x.c / y);
}

/** Structural equality (equal for every B). */
export function symEq(x: SymInt | Dim, y: SymInt | Dim): boolean {
  const [a, c] = parts(toSym(x));
  const [b, d] = parts(toSym(y));
  return a === b && c === d;
}

/** The smallest and largest value over B >= 1 (null = unbounded). */
export function symRange(x: SymInt): [bigint | null, bigint | null] {
  if (!isLin(x)) return [x, x];
  const atOne = x.a + x.c;
  return x.a > 0n ? [atOne, null] : [null, atOne];
}

/** Sign of x - y for every B >= 1: -1, 0 or 1, or undefined when it depends on B. */
export function symCompare(x: SymInt, y: SymInt): -1 | 0 | 1 | undefined {
  const d = symSub(x, y);
  if (!isLin(d)) return d < 0n ? -1 : d > 0n ? 1 : 0;
  const [lo, hi] = symRange(d);
  if (lo !== null && lo > 0n) return 1;
  if (hi !== null && hi < 0n) return -1;
  return undefined;
}

/** Whether x <= y (or x >= y) holds for every B >= 1. */
export function symAlways(x: SymInt, rel: '<=' | '>=', y: SymInt): boolean {
  const [lo, hi] = symRange(symSub(x, y));
  return rel === '<=' ? hi !== null && hi <= 0n : lo !== null && lo >= 0n;
}

/** The value at a given batch size. */
export function symAt(x: SymInt | Dim, batch: number): bigint {
  const [a, c] = parts(toSym(x));
  return a * BigInt(batch) + c;
}

export function toSym(d: Dim | SymInt): SymInt {
  return typeof d === 'number' ? BigInt(d) : d;
}

/** A SymInt as a dimension (bigints become numbers). */
export function toDim(x: SymInt): Dim {
  return isLin(x) ? x : Number(x);
}

/** Product of dims; undefined when more than one depends on B. */
export function dimProduct(dims: readonly Dim[]): SymInt | undefined {
  let p: SymInt = 1n;
  for (const d of dims) {
    const q = symMul(p, toSym(d));
    if (q === undefined) return undefined;
    p = q;
  }
  return p;
}

export function dimEq(x: Dim, y: Dim): boolean {
  return symEq(x, y);
}

/** Printable form: 17, B, 2B, 2B+1. */
export function symText(x: SymInt | Dim): string {
  const s = toSym(x);
  if (!isLin(s)) return String(s);
  const head = s.a === 1n ? 'B' : s.a === -1n ? '-B' : `${s.a}B`;
  return s.c === 0n ? head : `${head}${s.c > 0n ? '+' : ''}${s.c}`;
}

export function dimsText(dims: readonly Dim[] | undefined): string {
  return dims ? `[${dims.map(symText).join(',')}]` : '[?]';
}
