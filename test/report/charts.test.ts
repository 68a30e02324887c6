// Charts through vega-lite + vega, headless: every trace-path chart and the probe-layers chart render to
// well-formed standalone SVG with the marks their data calls for (one rect per non-zero class/layer/neuron
// cell, C² similarity cells with their values, a box per method and edit, a circle per recorded candidate
// and one line for the path), deterministically; the written spec beside the SVG is the one rendered.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderSvg, writeChart, withDefaults, VL_SCHEMA } from '../../src/report/charts.js';
import { classFrequencyRows, classHeatmapSpec, pathDiagramSpec, ratiosSpec, similaritySpec } from '../../src/services/traceCharts.js';
import { layersChartSpec } from '../../src/services/probeFiles.js';
import { prepareOutDir } from '../../src/report/outdir.js';
import { checkXml, countMarks } from '../helpers/xml.js';
import { mulberry32 } from '../../src/random.js';

const LAYERS = [0, 1, 2];
const FFN = 16;

/** Fake per-image results: 3 classes, paths drawn from a few neurons per class, two methods. */
function images(n: number) {
  const r = mulberry32(3);
  return Array.from({ length: n }, (_, i) => {
    const target = i % 3;
    const path = LAYERS.map((l) => (target * 5 + l + Math.floor(r() * 2)) % FFN);
    const other = LAYERS.map(() => Math.floor(r() * FFN));
    return {
      id: `img${i}.png`,
      index: i,
      target,
      pBase: 0.9,
      layers: path.map((neuron, li) => ({
        layer: LAYERS[li]!,
        neuron,
        activation: 1,
        score: 0.5,
        zeroActivation: false,
        top: [neuron, (neuron + 1) % FFN, (neuron + 2) % FFN, (neuron + 3) % FFN, (neuron + 4) % FFN].map((nn, k) => ({ neuron: nn, score: 0.5 - 0.1 * k })),
      })),
      methods: [
        { method: 'path', path, removeRatio: 0.2 + r() * 0.5, enhanceRatio: 1 + r() },
        { method: 'ig-layer', path: other, removeRatio: 0.5 + r() * 0.5, enhanceRatio: 1 + r() * 0.3 },
      ],
    };
  });
}

describe('charts', () => {
  const ims = images(30);

  it('class heatmap: one rect per non-zero (class, layer, neuron) cell, shares in [0, 1]', async () => {
    const rows = classFrequencyRows(ims, LAYERS);
    for (const c of [0, 1, 2]) for (const l of LAYERS) expect(rows.filter((x) => x.class === c && x.layer === l).reduce((a, x) => a + x.share, 0)).toBeCloseTo(1, 12);
    const svg = await renderSvg(classHeatmapSpec(ims, LAYERS, FFN, 'classes & <test>'));
    expect(checkXml(svg).root).toBe('svg');
    expect(countMarks(svg, 'rect mark')).toBe(rows.length);
    expect(svg).toContain('classes &amp; &lt;test&gt;');
    expect(svg).toContain('share');
  });

  it('similarity: C x C cells, each labelled with its value', async () => {
    const sim = [
      [1, 0.25, 0],
      [0.25, 1, 0.5],
      [0, 0.5, 1],
    ];
    const svg = await renderSvg(similaritySpec(sim, 'similarity'));
    checkXml(svg);
    expect(countMarks(svg, 'rect mark')).toBe(9);
    expect(countMarks(svg, 'text mark')).toBe(9);
    expect(svg).toContain('>0.25<');
    expect(svg).toContain('>0.50<');
  });

  it('ratios: a box per method and edit, on a log axis', async () => {
    const svg = await renderSvg(ratiosSpec(ims, ['path', 'ig-layer'], 'ratios'));
    checkXml(svg);
    expect(countMarks(svg, 'box')).toBe(4);
    expect(svg).toContain('remove (path set to 0)');
    expect(svg).toContain('enhance (path doubled)');
  });

  it('path diagram: a circle per recorded candidate, the path as one line, other methods marked', async () => {
    const im = ims[0]!;
    const svg = await renderSvg(pathDiagramSpec(im, LAYERS, 'path', ['ig-layer']));
    checkXml(svg);
    expect(countMarks(svg, 'circle')).toBe(LAYERS.length * 5);
    expect(countMarks(svg, 'line mark')).toBe(1);
    for (const c of im.layers) expect(svg).toContain(`>n${c.neuron}<`);
  });

  it('probe-layers: one line per curve', async () => {
    const layers = [0, 1].map((layer) => ({ layer, logitLens: { accuracy: 0.5 + layer / 4 }, probe: { accuracy: 0.8 }, neuronProbe: { accuracy: 0.7 }, redundancy: { block: 0.1 }, ablation: { attention: { accuracyDrop: 0.05 }, mlp: { accuracyDrop: null } } }));
    const svg = await renderSvg(layersChartSpec({ layers } as never, 'probe'));
    checkXml(svg);
    // The MLP drop has no finite value: 5 curves drawn.
    expect(countMarks(svg, 'line mark')).toBe(5);
    expect(svg).toContain('logit-lens accuracy');
  });

  it('writes NAME.svg with its spec NAME.vl.json beside it; rendering the spec again gives the same bytes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-charts-'));
    try {
      const out = prepareOutDir({ command: 'test', out: dir, force: true });
      const files = await writeChart(out, 'similarity', similaritySpec([[1]], 'one class'));
      expect(files.map((f) => path.basename(f)).sort()).toEqual(['similarity.svg', 'similarity.vl.json']);
      const spec = JSON.parse(fs.readFileSync(path.join(dir, 'similarity.vl.json'), 'utf8'));
      expect(spec.$schema).toBe(VL_SCHEMA);
      expect(spec.data.values).toEqual([{ a: 0, b: 0, cosine: 1 }]);
      expect(await renderSvg(spec)).toBe(fs.readFileSync(path.join(dir, 'similarity.svg'), 'utf8'));
      expect(withDefaults(spec)).toEqual(spec);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
