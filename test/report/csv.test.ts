import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { csvField, parseCsv, toCsv, writeCsvAtomic } from '../../src/report/csv.js';

describe('CSV (RFC 4180)', () => {
  it('quotes fields with commas, quotes, line breaks and edge spaces', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField(' padded')).toBe('" padded"');
    expect(csvField('')).toBe('');
  });

  it('writes numbers, booleans, bigint, null and non-finite values plainly', () => {
    expect([1.5, -0, 1e-7, true, 12n, null, undefined, NaN, Infinity, -Infinity].map((v) => csvField(v as never))).toEqual(['1.5', '0', '1e-7', 'true', '12', '', '', 'NaN', 'inf', '-inf']);
    expect(() => csvField({ a: 1 } as never)).toThrow(/flat/);
    expect(() => csvField([1] as never)).toThrow(/array/);
  });

  it('writes a header row and LF-terminated rows in column order', () => {
    const text = toCsv([
      { layer: 0, neuron: 12, name: 'fc1, "x"' },
      { layer: 1, neuron: 3 },
    ]);
    expect(text).toBe('layer,neuron,name\n0,12,"fc1, ""x"""\n1,3,\n');
    expect(toCsv([{ b: 1, a: 2 }], ['a', 'b'])).toBe('a,b\n2,1\n');
    expect(toCsv([], ['a'])).toBe('a\n');
    expect(() => toCsv([{ a: 1, z: 2 }], ['a'])).toThrow(/"z"/);
  });

  it('round-trips awkward values through parseCsv', () => {
    const rows = [
      { id: 'a', text: 'he said "no", then\r\nleft', n: 3.25 },
      { id: 'b', text: '', n: -1 },
      { id: ',', text: '"', n: 0 },
    ];
    const parsed = parseCsv(toCsv(rows));
    expect(parsed).toEqual([
      ['id', 'text', 'n'],
      ['a', 'he said "no", then\r\nleft', '3.25'],
      ['b', '', '-1'],
      [',', '"', '0'],
    ]);
    expect(parseCsv('a,b\nc,d')).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(() => parseCsv('"open')).toThrow(/quoted/);
  });

  it('writes atomically (no temp files left, content complete)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vp-csv-'));
    const f = path.join(dir, 'sub', 'table.csv');
    writeCsvAtomic(f, [{ x: 1 }]);
    expect(fs.readFileSync(f, 'utf8')).toBe('x\n1\n');
    expect(fs.readdirSync(path.dirname(f))).toEqual(['table.csv']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
