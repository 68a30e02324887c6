// SVG line chart: well-formed XML, one polyline per unbroken run, one marker per value, values
// mapped to the same pixels as their gridlines, escaping, determinism.
import { describe, expect, it } from 'vitest';
import { chartGeometry, lineChartSvg, PALETTE, type LineChartOptions } from '../../src/report/svgChart.js';
import { VitpathError } from '../../src/errors.js';

/** Tiny XML well-formedness check: balanced, properly nested tags; quoted attributes; no raw '<' or stray '&' in text. */
function checkXml(xml: string): { root: string; tags: string[] } {
  const stack: string[] = [];
  const tags: string[] = [];
  let root = '';
  let pos = 0;
  const tagRe = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const text = xml.slice(pos, lt < 0 ? xml.length : lt);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text)) throw new Error(`unescaped & in text: ${text}`);
    if (text.includes('>')) throw new Error(`raw > in text: ${text}`);
    if (lt < 0) break;
    tagRe.lastIndex = lt;
    const m = tagRe.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 60)}`);
    const [, close, name, attrs, selfClose] = m;
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(attrs)) throw new Error(`unescaped & in attributes of <${name}>`);
    if (close) {
      const top = stack.pop();
      if (top !== name) throw new Error(`</${name}> closes <${top}>`);
    } else {
      if (!root) root = name;
      else if (stack.length === 0) throw new Error(`second root element <${name}>`);
      tags.push(name);
      if (!selfClose) stack.push(name);
    }
    pos = lt + m[0].length;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, tags };
}

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

function markers(svg: string): { series: number; index: number; value: number; x: number; y: number }[] {
  const out: { series: number; index: number; value: number; x: number; y: number }[] = [];
  const groups = svg.split('<g class="series" ').slice(1);
  groups.forEach((g, si) => {
    const body = g.slice(0, g.indexOf('</g>'));
    for (const m of body.matchAll(/<path class="marker" data-index="(\d+)" data-value="([^"]+)" transform="translate\(([-\d.]+),([-\d.]+)\)"/g)) {
      out.push({ series: si, index: +m[1], value: +m[2], x: +m[3], y: +m[4] });
    }
  });
  return out;
}

const base: LineChartOptions = {
  title: 'Layer curves',
  xLabel: 'block',
  yLabel: 'accuracy',
  xTicks: [0, 1, 2, 3, 4, 5, 6],
  series: [
    { name: 'a', values: [0.1, 0.2, null, 0.3, 0.4, null, 0.5] },
    { name: 'b', values: [0, 0.2, 0.4, 0.6, 1, 0.4, 0] },
  ],
  yRange: [0, 1],
};

describe('lineChartSvg', () => {
  it('is well-formed XML with an svg root in the SVG namespace', () => {
    const svg = lineChartSvg(base);
    const { root, tags } = checkXml(svg);
    expect(root).toBe('svg');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(tags).toContain('text');
    // The checker itself rejects broken input.
    expect(() => checkXml('<svg><g></svg>')).toThrow();
    expect(() => checkXml('<svg>a & b</svg>')).toThrow();
  });

  it('draws one polyline per unbroken run and one marker per finite value', () => {
    const svg = lineChartSvg(base);
    // a: runs [0,1], [3,4], [6] -> 2 polylines, 5 markers; b: one run of 7.
    expect(count(svg, /<polyline /g)).toBe(3);
    const ms = markers(svg);
    expect(ms.filter((m) => m.series === 0).map((m) => m.index)).toEqual([0, 1, 3, 4, 6]);
    expect(ms.filter((m) => m.series === 1)).toHaveLength(7);
    const polys = [...svg.matchAll(/points="([^"]+)"/g)].map((m) => m[1].split(' ').length);
    expect(polys).toEqual([2, 2, 7]);
    // Series colours come from the palette in order.
    expect(svg).toContain(`stroke="${PALETTE[0]}"`);
    expect(svg).toContain(`stroke="${PALETTE[1]}"`);
  });

  it('maps values to pixels: linear in y, evenly spaced in x, on the labelled gridlines', () => {
    const svg = lineChartSvg(base);
    const { plot } = chartGeometry(base);
    const b = markers(svg).filter((m) => m.series === 1);
    // y: value 0 on the bottom edge, 1 on the top edge, linear in between (yRange [0, 1]).
    for (const m of b) expect(m.y).toBeCloseTo(plot.bottom - m.value * (plot.bottom - plot.top), 1);
    // x: equal steps, increasing, inside the plot.
    const dx = b[1].x - b[0].x;
    expect(dx).toBeGreaterThan(0);
    b.forEach((m, i) => expect(m.x).toBeCloseTo(b[0].x + i * dx, 1));
    expect(b[0].x).toBeGreaterThan(plot.left);
    expect(b[6].x).toBeLessThan(plot.right);
    // The markers for 0.4 sit on the gridline whose tick label reads "0.4"; same for 0 and 1.
    for (const label of ['0.0', '0.4', '1.0']) {
      const t = svg.match(new RegExp(`<text class="y-tick" x="[-\\d.]+" y="([-\\d.]+)"[^>]*>${label.replace('.', '\\.')}</text>`));
      expect(t, `tick ${label}`).not.toBeNull();
      const tickY = +t![1] - 4; // label baseline is 4px below the line
      const on = b.filter((mm) => mm.value === +label);
      expect(on.length).toBeGreaterThan(0);
      for (const m of on) expect(m.y).toBeCloseTo(tickY, 1);
    }
    // x tick labels under the markers.
    const xt = [...svg.matchAll(/<text class="x-tick" x="([-\d.]+)"[^>]*>(\d+)<\/text>/g)];
    expect(xt).toHaveLength(7);
    for (const m of xt) expect(+m[1]).toBeCloseTo(b[+m[2]].x, 1);
  });

  it('chooses a nice automatic y range that covers the data', () => {
    const opts: LineChartOptions = { ...base, yRange: undefined, series: [{ name: 'kl', values: [0.13, 0.87, 2.41, null] }], xTicks: undefined };
    const g = chartGeometry(opts);
    expect(g.n).toBe(4);
    expect(g.yMin).toBeLessThanOrEqual(0.13);
    expect(g.yMax).toBeGreaterThanOrEqual(2.41);
    const step = g.yTicks[1] - g.yTicks[0];
    const mant = step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
    expect([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-9)).toBe(true);
    expect(g.yTicks[0]).toBeCloseTo(g.yMin, 12);
    expect(g.yTicks[g.yTicks.length - 1]).toBeCloseTo(g.yMax, 12);
    // Constant, empty and all-null series still give a valid chart.
    for (const values of [[0.5, 0.5], [], [null, null]]) {
      checkXml(lineChartSvg({ ...opts, series: [{ name: 'c', values }] }));
    }
  });

  it('escapes text and is deterministic', () => {
    const opts: LineChartOptions = { ...base, title: 'A <b> & "c"', series: [{ name: "it's <x>", values: [1, 2] }], xTicks: ['<0>', '1'] , yRange: undefined };
    const svg = lineChartSvg(opts);
    checkXml(svg);
    expect(svg).toContain('A &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg).toContain('it&apos;s &lt;x&gt;');
    expect(svg).toContain('&lt;0&gt;');
    expect(lineChartSvg(opts)).toBe(svg);
  });

  it('thins x tick labels when there are many positions', () => {
    const n = 200;
    const opts: LineChartOptions = { ...base, xTicks: Array.from({ length: n }, (_, i) => `layer ${i}`), series: [{ name: 's', values: Array.from({ length: n }, (_, i) => i) }], yRange: undefined };
    const g = chartGeometry(opts);
    expect(g.xTickIndices.length).toBeLessThan(n / 4);
    const spacing = g.xAt(g.xTickIndices[1]) - g.xAt(g.xTickIndices[0]);
    expect(spacing).toBeGreaterThanOrEqual('layer 199'.length * 7);
    expect(count(lineChartSvg(opts), /class="x-tick"/g)).toBe(g.xTickIndices.length);
  });

  it('rejects series longer than the x ticks and a bad y range', () => {
    expect(() => lineChartSvg({ ...base, xTicks: [0, 1] })).toThrow(VitpathError);
    expect(() => lineChartSvg({ ...base, yRange: [1, 1] })).toThrow(/max > min/);
  });
});
