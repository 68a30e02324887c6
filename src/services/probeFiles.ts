// The files of a probe-layers report besides report.json: layers.csv (one row per layer and metric
// family) and the per-layer curves as a vega-lite chart (layers.svg + layers.vl.json).
import { renderSvg, type ChartSpec } from '../report/charts.js';
import type { CsvRow } from '../report/csv.js';
import type { ProbeLayersResults } from './probeSchema.js';

/** The files one run writes into --out (report.json last). */
export const FILES = { report: 'report.json', csv: 'layers.csv', chart: 'layers.svg', chartSpec: 'layers.vl.json' } as const;

export const CSV_COLUMNS = [
  'layer',
  'family',
  'accuracy',
  'accuracy_std',
  'true_prob',
  'kl',
  'accuracy_drop',
  'true_prob_drop',
  'block_influence',
  'mean_activation',
  'dead_fraction',
  'ig_mass',
  'ig_sum',
] as const;

/** layers.csv: one row per layer and metric family; cells a family does not have stay empty. */
export function layersCsvRows(r: ProbeLayersResults): CsvRow[] {
  const rows: CsvRow[] = [];
  for (const x of r.layers) {
    const layer = x.layer;
    rows.push({ layer, family: 'logit_lens', accuracy: x.logitLens.accuracy, true_prob: x.logitLens.meanTrueProb, kl: x.logitLens.meanKl });
    rows.push({ layer, family: 'probe_residual', accuracy: x.probe.accuracy, accuracy_std: x.probe.std });
    rows.push({ layer, family: 'probe_neurons', accuracy: x.neuronProbe.accuracy, accuracy_std: x.neuronProbe.std });
    rows.push({ layer, family: 'redundancy_attention', block_influence: x.redundancy.attention });
    rows.push({ layer, family: 'redundancy_mlp', block_influence: x.redundancy.mlp });
    rows.push({ layer, family: 'redundancy_block', block_influence: x.redundancy.block });
    for (const [fam, a] of [['ablation_attention', x.ablation.attention], ['ablation_mlp', x.ablation.mlp]] as const) {
      rows.push({ layer, family: fam, accuracy: a.accuracy, true_prob: a.meanTrueProb, accuracy_drop: a.accuracyDrop, true_prob_drop: a.trueProbDrop });
    }
    rows.push({ layer, family: 'neurons', mean_activation: x.neurons.meanActivation, dead_fraction: x.neurons.deadFraction, ig_mass: x.neurons.igMass, ig_sum: x.neurons.igSum });
  }
  return rows;
}

/** The per-layer curves as a vega-lite line chart (one line per metric, blocks on x). */
export function layersChartSpec(r: ProbeLayersResults, title = 'probe-layers'): ChartSpec {
  const series: [string, (x: ProbeLayersResults['layers'][number]) => number | null][] = [
    ['logit-lens accuracy', (x) => x.logitLens.accuracy],
    ['probe accuracy (residual)', (x) => x.probe.accuracy],
    ['probe accuracy (neurons)', (x) => x.neuronProbe.accuracy],
    ['redundancy (1 - cos, block)', (x) => x.redundancy.block],
    ['attention ablation drop', (x) => x.ablation.attention.accuracyDrop],
    ['MLP ablation drop', (x) => x.ablation.mlp.accuracyDrop],
  ];
  const values = r.layers.flatMap((x) => series.map(([name, f]) => ({ block: x.layer, series: name, value: f(x) }))).filter((v) => v.value !== null && Number.isFinite(v.value));
  return {
    title,
    width: 520,
    height: 300,
    data: { values },
    mark: { type: 'line', point: { size: 45, filled: true }, strokeWidth: 2 },
    encoding: {
      x: { field: 'block', type: 'ordinal', title: 'block', axis: { labelAngle: 0 } },
      y: { field: 'value', type: 'quantitative', title: 'accuracy / Block Influence / drop' },
      color: { field: 'series', type: 'nominal', title: null, sort: series.map(([n]) => n) },
      shape: { field: 'series', type: 'nominal', title: null, sort: series.map(([n]) => n) },
      tooltip: [{ field: 'series' }, { field: 'block' }, { field: 'value', format: '.4f' }],
    },
  } as ChartSpec;
}

/** The per-layer curves as a standalone SVG. */
export function layersChartSvg(r: ProbeLayersResults, title = 'probe-layers'): Promise<string> {
  return renderSvg(layersChartSpec(r, title));
}
