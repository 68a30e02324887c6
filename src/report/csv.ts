// CSV reports: flat tables with a header row, one observation per row, RFC 4180 quoting and LF
// line ends (RFC 4180 readers accept them; awk, cut and sort need them); written atomically.
// parseCsv reads them back (tests, --resume checks).
import { writeFileAtomic } from '../fs/atomic.js';

export type CsvValue = string | number | boolean | bigint | null | undefined;
export type CsvRow = Record<string, CsvValue>;

/** One field: null/undefined -> empty; NaN/±Infinity -> NaN/inf/-inf; quoted when RFC 4180 needs it. */
export function csvField(v: CsvValue): string {
  let s: string;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    s = Object.is(v, -0) ? '0' : String(v);
  } else if (typeof v === 'string') s = v;
  else if (typeof v === 'boolean' || typeof v === 'bigint') s = String(v);
  else throw new TypeError(`CSV rows must be flat: got a ${Array.isArray(v) ? 'array' : typeof v} value`);
  // Quote fields with a delimiter, quote, line break, or edge whitespace (some readers trim it).
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The columns: as given, else every key in first-seen order across rows. */
export function csvColumns(rows: readonly CsvRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

/** A whole CSV document: header row then one row per record, LF after every row. */
export function toCsv(rows: readonly CsvRow[], columns: readonly string[] = csvColumns(rows)): string {
  if (columns.length === 0) throw new TypeError('a CSV table needs at least one column');
  const lines = [columns.map(csvField).join(',')];
  for (const r of rows) {
    for (const k of Object.keys(r)) if (!columns.includes(k)) throw new TypeError(`CSV row has column "${k}" that is not in the header`);
    lines.push(columns.map((c) => csvField(r[c])).join(','));
  }
  return lines.join('\n') + '\n';
}

export function writeCsvAtomic(file: string, rows: readonly CsvRow[], columns?: readonly string[]): void {
  writeFileAtomic(file, toCsv(rows, columns));
}

/** Parse RFC 4180 text (CRLF or LF line ends) into rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let any = false; // the current row has content
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      any = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      any = true;
      i++;
    } else if (c === '\r' || c === '\n') {
      if (any || field !== '') {
        row.push(field);
        rows.push(row);
      }
      row = [];
      field = '';
      any = false;
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c;
      any = true;
      i++;
    }
  }
  if (quoted) throw new Error('CSV ends inside a quoted field');
  if (any || field !== '') {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
