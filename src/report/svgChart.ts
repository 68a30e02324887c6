// Standalone SVG line charts (per-layer curves of probe-layers and friends), rendered as a
// string without a browser or any dependency. Deterministic: same options, same bytes.
//
// Layout: title on top, y label rotated on the left, x label below, legend to the right of
// the plot. x positions are the indices 0..n-1 of the values (labelled by xTicks); null or
// non-finite values leave gaps: each run of >= 2 consecutive finite values is one <polyline>,
// and every finite value gets one marker (<path class="marker" transform="translate(x,y)">).

import { usageError } from '../errors.js';

export interface LineSeries {
  name: string;
  /** One value per x position; null (or NaN/Infinity) is a gap. */
  values: readonly (number | null)[];
  /** CSS colour; default from a colour-blind-safe palette by series index. */
  color?: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Label of each x position (e.g. layer indices); default 0..n-1. Its length fixes n. */
  xTicks?: readonly (string | number)[];
  /** Fixed y range [min, max]; default: automatic "nice" range covering the finite values. */
  yRange?: readonly [number, number];
  /** Canvas size in px; default 760 x 420. */
  width?: number;
  height?: number;
}

export interface ChartGeometry {
  width: number;
  height: number;
  /** Plot area in px (y grows downwards, as in SVG). */
  plot: { left: number; top: number; right: number; bottom: number };
  /** Number of x positions. */
  n: number;
  yMin: number;
  yMax: number;
  /** Values where horizontal gridlines and y tick labels go. */
  yTicks: number[];
  /** Indices of x positions that get a tick label. */
  xTickIndices: number[];
  xAt(i: number): number;
  yAt(v: number): number;
}

/** Okabe-Ito colour-blind-safe palette (yellow swapped for grey, which reads on white). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#7F7F7F'];

const FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";
const CHAR_W = 7; // rough width of one character at 12px, for layout only
const MARKERS = [
  'M4,0A4,4 0 1 1 -4,0A4,4 0 1 1 4,0Z', // circle
  'M-3.6,-3.6H3.6V3.6H-3.6Z', // square
  'M0,-4.8L4.4,3.2H-4.4Z', // triangle
  'M0,-5L5,0L0,5L-5,0Z', // diamond
];

/** Escape text and attribute values for XML. */
export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    // XML 1.0 forbids most control characters even escaped; drop them.
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');
}

/** Coordinates with at most 2 decimals, no "-0". */
function px(v: number): string {
  const r = Math.round(v * 100) / 100;
  return (r === 0 ? 0 : r).toString();
}

const isFiniteNum = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** A "nice" step (1, 2 or 5 times a power of ten) near range / target. */
function niceStep(range: number, target: number): number {
  const raw = range / target;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  const m = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
  return m * p;
}

function decimalsFor(step: number): number {
  return Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
}

function formatTick(v: number, step: number): string {
  const s = v.toFixed(decimalsFor(step));
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** Ticks at multiples of `step` inside [lo, hi] (with a little float slack). */
function ticksIn(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  const start = Math.ceil(lo / step - 1e-9);
  const end = Math.floor(hi / step + 1e-9);
  for (let k = start; k <= end && out.length < 100; k++) out.push(Number((k * step).toFixed(12)));
  return out;
}

function pointCount(opts: LineChartOptions): number {
  if (opts.xTicks) return opts.xTicks.length;
  return opts.series.reduce((m, s) => Math.max(m, s.values.length), 0);
}

function legendWidth(opts: LineChartOptions): number {
  const longest = opts.series.reduce((m, s) => Math.max(m, Math.min(s.name.length, 32)), 0);
  return opts.series.length === 0 ? 0 : 36 + longest * CHAR_W + 8;
}

/** Layout of the chart: plot box, y range and ticks, x tick thinning, value -> px mappings. */
export function chartGeometry(opts: LineChartOptions): ChartGeometry {
  const width = opts.width ?? 760;
  const height = opts.height ?? 420;
  const n = pointCount(opts);
  for (const s of opts.series) {
    if (s.values.length > n) {
      throw usageError(`lineChartSvg: series "${s.name}" has ${s.values.length} values but there are ${n} x ticks`);
    }
  }
  // y range
  let yMin: number;
  let yMax: number;
  let step: number;
  if (opts.yRange) {
    [yMin, yMax] = opts.yRange;
    if (!(Number.isFinite(yMin) && Number.isFinite(yMax) && yMax > yMin)) {
      throw usageError(`lineChartSvg: yRange [${yMin}, ${yMax}] must be finite with max > min`);
    }
    step = niceStep(yMax - yMin, 5);
  } else {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of opts.series) {
      for (const v of s.values) {
        if (isFiniteNum(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    if (lo === Infinity) {
      lo = 0;
      hi = 1;
    } else if (lo === hi) {
      const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
    step = niceStep(hi - lo, 5);
    yMin = Math.floor(lo / step + 1e-9) * step;
    yMax = Math.ceil(hi / step - 1e-9) * step;
    if (yMax <= yMin) yMax = yMin + step;
  }
  const yTicks = ticksIn(yMin, yMax, step);
  // y tick label width decides the left margin.
  const yLabelChars = yTicks.reduce((m, t) => Math.max(m, formatTick(t, step).length), 1);
  const left = 34 + yLabelChars * CHAR_W + 8;
  const top = 44;
  const bottom = height - 54;
  const right = width - 16 - legendWidth(opts) - (opts.series.length ? 12 : 0);
  if (right - left < 40 || bottom - top < 40) {
    throw usageError(`lineChartSvg: ${width}x${height} px is too small for the plot; use a larger width/height or shorter names`);
  }
  const pad = 14; // keep end markers off the axes
  const xAt = (i: number) => (n <= 1 ? (left + right) / 2 : left + pad + (i * (right - left - 2 * pad)) / (n - 1));
  const yAt = (v: number) => bottom - ((v - yMin) / (yMax - yMin)) * (bottom - top);
  // x tick thinning: label every k-th position so labels do not collide.
  const labels = (opts.xTicks ?? Array.from({ length: n }, (_, i) => i)).map(String);
  const widest = labels.reduce((m, l) => Math.max(m, l.length), 1) * CHAR_W + 10;
  const slot = n <= 1 ? Infinity : (right - left - 2 * pad) / (n - 1);
  const every = Math.max(1, Math.ceil(widest / slot));
  const xTickIndices: number[] = [];
  for (let i = 0; i < n; i += every) xTickIndices.push(i);
  return { width, height, plot: { left, top, right, bottom }, n, yMin, yMax, yTicks, xTickIndices, xAt, yAt };
}

/** Render the chart as a standalone SVG document string. */
export function lineChartSvg(opts: LineChartOptions): string {
  const g = chartGeometry(opts);
  const { left, top, right, bottom } = g.plot;
  const step = g.yTicks.length > 1 ? g.yTicks[1] - g.yTicks[0] : niceStep(g.yMax - g.yMin, 5);
  const labels = (opts.xTicks ?? Array.from({ length: g.n }, (_, i) => i)).map(String);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${g.width}" height="${g.height}" viewBox="0 0 ${g.width} ${g.height}" ${FONT} font-size="12">`,
    `<title>${escapeXml(opts.title)}</title>`,
    `<rect x="0" y="0" width="${g.width}" height="${g.height}" fill="#ffffff"/>`,
    `<defs><clipPath id="plot-area"><rect x="${px(left - 6)}" y="${px(top - 6)}" width="${px(right - left + 12)}" height="${px(bottom - top + 12)}"/></clipPath></defs>`,
  );
  // Title and axis labels.
  out.push(
    `<text class="title" x="${px((left + right) / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold" fill="#222222">${escapeXml(opts.title)}</text>`,
    `<text class="x-label" x="${px((left + right) / 2)}" y="${px(g.height - 14)}" text-anchor="middle" fill="#222222">${escapeXml(opts.xLabel)}</text>`,
    `<text class="y-label" x="0" y="0" transform="translate(16,${px((top + bottom) / 2)}) rotate(-90)" text-anchor="middle" fill="#222222">${escapeXml(opts.yLabel)}</text>`,
  );
  // Gridlines and ticks.
  out.push('<g class="grid" stroke="#e3e3e3" stroke-width="1">');
  for (const t of g.yTicks) out.push(`<line class="y-grid" x1="${px(left)}" x2="${px(right)}" y1="${px(g.yAt(t))}" y2="${px(g.yAt(t))}"/>`);
  for (const i of g.xTickIndices) out.push(`<line class="x-grid" x1="${px(g.xAt(i))}" x2="${px(g.xAt(i))}" y1="${px(top)}" y2="${px(bottom)}"/>`);
  out.push('</g>');
  out.push('<g class="axes" stroke="#444444" stroke-width="1">');
  out.push(`<line x1="${px(left)}" x2="${px(left)}" y1="${px(top)}" y2="${px(bottom)}"/>`);
  out.push(`<line x1="${px(left)}" x2="${px(right)}" y1="${px(bottom)}" y2="${px(bottom)}"/>`);
  for (const t of g.yTicks) out.push(`<line x1="${px(left - 5)}" x2="${px(left)}" y1="${px(g.yAt(t))}" y2="${px(g.yAt(t))}"/>`);
  for (const i of g.xTickIndices) out.push(`<line x1="${px(g.xAt(i))}" x2="${px(g.xAt(i))}" y1="${px(bottom)}" y2="${px(bottom + 5)}"/>`);
  out.push('</g>');
  out.push('<g class="tick-labels" fill="#444444">');
  for (const t of g.yTicks) {
    out.push(`<text class="y-tick" x="${px(left - 8)}" y="${px(g.yAt(t) + 4)}" text-anchor="end">${escapeXml(formatTick(t, step))}</text>`);
  }
  for (const i of g.xTickIndices) {
    out.push(`<text class="x-tick" x="${px(g.xAt(i))}" y="${px(bottom + 19)}" text-anchor="middle">${escapeXml(labels[i])}</text>`);
  }
  out.push('</g>');
  // Series.
  out.push('<g class="series-all" clip-path="url(#plot-area)">');
  opts.series.forEach((s, si) => {
    const color = escapeXml(s.color ?? PALETTE[si % PALETTE.length]);
    const marker = MARKERS[si % MARKERS.length];
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    let run: string[] = [];
    const flush = () => {
      if (run.length >= 2) {
        out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round" points="${run.join(' ')}"/>`);
      }
      run = [];
    };
    for (let i = 0; i < g.n; i++) {
      const v = s.values[i];
      if (isFiniteNum(v)) run.push(`${px(g.xAt(i))},${px(g.yAt(v))}`);
      else flush();
    }
    flush();
    for (let i = 0; i < g.n; i++) {
      const v = s.values[i];
      if (!isFiniteNum(v)) continue;
      out.push(
        `<path class="marker" data-index="${i}" data-value="${v}" transform="translate(${px(g.xAt(i))},${px(g.yAt(v))})" d="${marker}" fill="${color}" stroke="#ffffff" stroke-width="1"/>`,
      );
    }
    out.push('</g>');
  });
  out.push('</g>');
  // Legend.
  if (opts.series.length) {
    const lx = right + 20;
    const ly = top + 4;
    const lw = legendWidth(opts);
    out.push(`<g class="legend">`);
    out.push(`<rect x="${px(lx - 8)}" y="${px(ly - 8)}" width="${px(lw)}" height="${px(opts.series.length * 20 + 8)}" fill="#ffffff" stroke="#d0d0d0" rx="3"/>`);
    opts.series.forEach((s, si) => {
      const color = escapeXml(s.color ?? PALETTE[si % PALETTE.length]);
      const y = ly + 8 + si * 20;
      const name = s.name.length > 32 ? `${s.name.slice(0, 31)}…` : s.name;
      out.push(
        `<line x1="${px(lx)}" x2="${px(lx + 22)}" y1="${px(y)}" y2="${px(y)}" stroke="${color}" stroke-width="2"/>`,
        `<path transform="translate(${px(lx + 11)},${px(y)})" d="${MARKERS[si % MARKERS.length]}" fill="${color}" stroke="#ffffff" stroke-width="1"/>`,
        `<text class="legend-label" x="${px(lx + 28)}" y="${px(y + 4)}" fill="#222222">${escapeXml(name)}</text>`,
      );
    });
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
