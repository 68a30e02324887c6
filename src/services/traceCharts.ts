// trace-path's pictures as vega-lite specs (rendered by report/charts.ts beside the CSVs):
//   classes      per-class path-neuron frequency heatmap: layer × neuron, one row of panels per class
//   similarity   class-to-class cosine similarity of those frequency tables
//   ratios       distribution of the remove / enhance ratios per method (box plots, log scale)
//   path-<i>     an image's path diagram: layers left to right, the top-K candidates per layer by score,
//                the chosen path joined by a line
import type { ChartSpec } from '../report/charts.js';
import type { ImageResult } from './traceCore.js';

/** Image result as the report holds it (method names as strings). */
type Img = Pick<ImageResult, 'id' | 'index' | 'target' | 'pBase' | 'layers'> & { methods: { method: string; path: number[]; removeRatio: number; enhanceRatio: number }[] };

const pathOf = (im: Img) => im.methods.find((m) => m.method === 'path')!.path;

/** Per class, layer and neuron: how many of the class's images have that neuron on their path (non-zero only). */
export function classFrequencyRows(images: readonly Img[], layers: readonly number[]): { class: number; layer: number; neuron: number; count: number; share: number }[] {
  const perClass = new Map<number, number>();
  const counts = new Map<string, number>();
  for (const im of images) {
    perClass.set(im.target, (perClass.get(im.target) ?? 0) + 1);
    pathOf(im).forEach((n, li) => {
      const k = `${im.target},${layers[li]},${n}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    });
  }
  return [...counts]
    .map(([k, count]) => {
      const [c, layer, neuron] = k.split(',').map(Number) as [number, number, number];
      return { class: c, layer, neuron, count, share: count / perClass.get(c)! };
    })
    .sort((a, b) => a.class - b.class || a.layer - b.layer || a.neuron - b.neuron);
}

/** Heatmap of path-neuron frequency: x neuron, y layer, colour = share of the class's images; one panel per class. */
export function classHeatmapSpec(images: readonly Img[], layers: readonly number[], ffn: number, title: string): ChartSpec {
  const values = classFrequencyRows(images, layers).map((r) => ({ ...r, neuronEnd: r.neuron + 1 }));
  const width = Math.max(360, Math.min(900, ffn * 4));
  return {
    title: { text: title, subtitle: 'share of each class\'s images whose path has the neuron (blank: none)' },
    data: { values },
    facet: { row: { field: 'class', type: 'ordinal', title: 'class (target)', header: { labelAngle: 0, labelAlign: 'left' } } },
    spacing: 4,
    spec: {
      width,
      height: Math.max(24, layers.length * 12),
      mark: { type: 'rect', stroke: null },
      encoding: {
        x: { field: 'neuron', type: 'quantitative', scale: { domain: [0, ffn] }, title: 'neuron', axis: { tickMinStep: 1 } },
        x2: { field: 'neuronEnd' },
        y: { field: 'layer', type: 'ordinal', title: 'layer', scale: { domain: [...layers] } },
        color: { field: 'share', type: 'quantitative', title: 'share', scale: { scheme: 'viridis', domain: [0, 1], reverse: true } },
        tooltip: [{ field: 'class' }, { field: 'layer' }, { field: 'neuron' }, { field: 'count' }, { field: 'share', format: '.2f' }],
      },
    },
    resolve: { scale: { color: 'shared' } },
  } as unknown as ChartSpec;
}

/** Class × class cosine similarity heatmap, with the value written in each cell when there are few classes. */
export function similaritySpec(similarity: readonly (readonly number[])[], title: string, classes?: readonly number[]): ChartSpec {
  const C = similarity.length;
  const id = (i: number) => (classes ? classes[i]! : i);
  const values = similarity.flatMap((row, a) => row.map((v, b) => ({ a: id(a), b: id(b), cosine: v })));
  const cell = Math.max(8, Math.min(40, Math.floor(480 / Math.max(1, C))));
  const layers: unknown[] = [
    {
      mark: 'rect',
      encoding: {
        color: { field: 'cosine', type: 'quantitative', title: 'cosine', scale: { scheme: 'blues', domain: [0, 1] } },
        tooltip: [{ field: 'a', title: 'class' }, { field: 'b', title: 'class' }, { field: 'cosine', format: '.3f' }],
      },
    },
  ];
  if (C <= 20) {
    layers.push({
      mark: { type: 'text', fontSize: Math.min(11, cell / 3.2) },
      encoding: {
        text: { field: 'cosine', type: 'quantitative', format: '.2f' },
        color: { condition: { test: 'datum.cosine > 0.6', value: 'white' }, value: 'black' },
      },
    });
  }
  return {
    title: { text: title, subtitle: 'cosine similarity of the classes\' path-neuron frequency tables' },
    data: { values },
    width: cell * C,
    height: cell * C,
    encoding: {
      x: { field: 'b', type: 'ordinal', title: 'class', axis: { labelAngle: 0 } },
      y: { field: 'a', type: 'ordinal', title: 'class' },
    },
    layer: layers,
  } as unknown as ChartSpec;
}

/** Box plots of remove and enhance ratios per method (log scale; 1 = no change). */
export function ratiosSpec(images: readonly Img[], methods: readonly string[], title: string): ChartSpec {
  const values: { method: string; edit: string; ratio: number }[] = [];
  for (const im of images) {
    for (const m of im.methods) {
      // Log scale: ratios of exactly 0 (probability underflow) sit at the axis floor.
      values.push({ method: m.method, edit: 'remove (path set to 0)', ratio: Math.max(m.removeRatio, 1e-6) });
      values.push({ method: m.method, edit: 'enhance (path doubled)', ratio: Math.max(m.enhanceRatio, 1e-6) });
    }
  }
  return {
    title: { text: title, subtitle: 'target probability after the edit / before, one point per image (box: quartiles, whiskers: 1.5 IQR)' },
    data: { values },
    facet: { column: { field: 'edit', type: 'nominal', title: null, sort: ['remove (path set to 0)', 'enhance (path doubled)'] } },
    spec: {
      width: Math.max(200, 60 * methods.length),
      height: 300,
      layer: [
        { mark: { type: 'rule', strokeDash: [4, 3], color: '#7F7F7F' }, encoding: { y: { datum: 1 } } },
        {
          mark: { type: 'boxplot', extent: 1.5, size: 22, median: { color: 'black' }, outliers: { size: 10, opacity: 0.5 } },
          encoding: {
            x: { field: 'method', type: 'nominal', sort: [...methods], title: 'method', axis: { labelAngle: -30 } },
            y: { field: 'ratio', type: 'quantitative', scale: { type: 'log' }, title: 'probability ratio (log)' },
            color: { field: 'method', type: 'nominal', sort: [...methods], legend: null },
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as unknown as ChartSpec;
}

/** One image's path diagram: per layer the top-K candidates (rank on y, score as colour), the path as a line. */
export function pathDiagramSpec(im: Img, layers: readonly number[], title: string, others: readonly string[] = []): ChartSpec {
  const cand = im.layers.flatMap((c, li) =>
    c.top.map((t, rank) => ({ layer: layers[li], rank: rank + 1, neuron: t.neuron, score: t.score, chosen: t.neuron === c.neuron, label: `n${t.neuron}` })),
  );
  // The chosen neuron may sit outside the recorded top list (a beam path need not be its layer's best).
  im.layers.forEach((c, li) => {
    if (!c.top.some((t) => t.neuron === c.neuron)) cand.push({ layer: layers[li], rank: c.top.length + 1, neuron: c.neuron, score: c.score, chosen: true, label: `n${c.neuron}` });
  });
  const chosen = cand.filter((c) => c.chosen);
  const K = Math.max(...cand.map((c) => c.rank));
  const y = { field: 'rank', type: 'ordinal', title: 'candidate rank at the layer', scale: { domain: Array.from({ length: K }, (_, i) => i + 1) } };
  const x = { field: 'layer', type: 'ordinal', title: 'layer', axis: { labelAngle: 0 }, scale: { domain: [...layers] } };
  const layersSpec: unknown[] = [
    { data: { values: chosen }, mark: { type: 'line', color: '#D55E00', strokeWidth: 3 }, encoding: { x, y } },
    {
      data: { values: cand },
      mark: { type: 'circle', size: 420, stroke: 'black' },
      encoding: {
        x,
        y,
        color: { field: 'score', type: 'quantitative', title: 'score', scale: { scheme: 'blues' } },
        strokeWidth: { condition: { test: 'datum.chosen', value: 3 }, value: 0.5 },
        tooltip: [{ field: 'layer' }, { field: 'neuron' }, { field: 'rank' }, { field: 'score', format: '.4g' }],
      },
    },
    { data: { values: cand }, mark: { type: 'text', dy: -17, fontSize: 10 }, encoding: { x, y, text: { field: 'label' } } },
  ];
  // Other methods whose path has one of the drawn candidates: a small diamond right of it, one offset per method.
  const palette = ['#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#7F7F7F'];
  others.forEach((name, k) => {
    const m = im.methods.find((q) => q.method === name);
    if (!m) return;
    const hits = m.path.flatMap((n, li) => {
      const hit = cand.find((c) => c.layer === layers[li] && c.neuron === n);
      return hit ? [{ layer: hit.layer, rank: hit.rank, method: name }] : [];
    });
    layersSpec.push({
      data: { values: hits },
      mark: { type: 'point', shape: 'diamond', size: 80, filled: true, opacity: 1, xOffset: 17 + 9 * k },
      encoding: {
        x,
        y,
        // One legend for all methods (the first layer's); the others share its domain and colours.
        color: { datum: name, type: 'nominal', title: 'also on the path of', scale: { domain: [...others], range: palette.slice(0, others.length) }, ...(k > 0 ? { legend: null } : {}) },
      },
    });
  });
  return {
    title: { text: title, subtitle: [`image ${im.id}, target ${im.target}, p = ${im.pBase.toFixed(3)}`, 'circles: each layer\'s best candidates by the search\'s score; line: the path'] },
    width: Math.max(240, 110 * layers.length),
    height: Math.max(160, 34 * K),
    layer: layersSpec,
    resolve: { scale: { color: 'independent' } },
  } as unknown as ChartSpec;
}
