// Charts as vega-lite specs rendered headless to standalone SVG (vega's 'none' renderer, no canvas, no
// browser). Every chart is written as NAME.svg with its spec NAME.vl.json beside it (data inline), so a
// user can restyle it in any vega-lite editor. Deterministic: same spec, same SVG.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { OutDir } from './outdir.js';

export type ChartSpec = TopLevelSpec;

export const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Shared look: font, sizes, white background, colour-blind-safe categories. */
export const CHART_CONFIG = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  background: 'white',
  title: { fontSize: 14, anchor: 'start' as const, offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320, titleLimit: 320 },
  header: { labelFontSize: 11, titleFontSize: 12 },
  range: { category: ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#7F7F7F'] },
};

/** The spec with vitpath's $schema and config filled in (spec's own config wins). */
export function withDefaults(spec: ChartSpec): ChartSpec {
  const s = spec as unknown as Record<string, unknown>;
  return { $schema: VL_SCHEMA, ...spec, config: { ...CHART_CONFIG, ...((s.config as object) ?? {}) } } as ChartSpec;
}

/**
 * Number the SVG's ids (vega's gradient_N, clipN: process-wide counters) from 0 per prefix in order of
 * appearance, with their references, so a chart's bytes depend on its spec alone.
 */
export function renumberIds(svg: string): string {
  const map = new Map<string, string>();
  const next = new Map<string, number>();
  for (const m of svg.matchAll(/\bid="([A-Za-z_-]*?)(\d+)"/g)) {
    const old = m[1]! + m[2]!;
    if (map.has(old)) continue;
    const k = next.get(m[1]!) ?? 0;
    map.set(old, m[1]! + k);
    next.set(m[1]!, k + 1);
  }
  return svg.replace(/(\bid="|url\(#|href="#)([A-Za-z_-]*?\d+)/g, (all, pre: string, id: string) => (map.has(id) ? pre + map.get(id) : all));
}

/** Render a vega-lite spec to an SVG document string. */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const vg = compile(withDefaults(spec)).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = renumberIds(await view.toSVG());
    return svg.endsWith('\n') ? svg : svg + '\n';
  } finally {
    view.finalize();
  }
}

/** File names a chart occupies in an output folder. */
export function chartFiles(name: string): [string, string] {
  return [`${name}.svg`, `${name}.vl.json`];
}

/** Write NAME.vl.json and NAME.svg into `out`; returns both paths. */
export async function writeChart(out: OutDir, name: string, spec: ChartSpec): Promise<string[]> {
  const full = withDefaults(spec);
  const svg = await renderSvg(full);
  return [out.writeJson(`${name}.vl.json`, full), out.writeText(`${name}.svg`, svg)];
}
