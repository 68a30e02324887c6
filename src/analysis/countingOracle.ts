// A view of a NeuronOracle that counts the samples evaluated through it, by kind (gradient graph or
// forward only): what a search or baseline costs, in samples of the model, independent of the machine.
import type { EditQuery, EditResult, LayerAloneQuery, NeuronOracle } from './oracle.js';

export interface SampleCount {
  gradSamples: number;
  forwardSamples: number;
}

export function countingOracle(o: NeuronOracle): NeuronOracle & { count: SampleCount } {
  const count: SampleCount = { gradSamples: 0, forwardSamples: 0 };
  const alone = o.evaluateLayerAlone?.bind(o);
  return {
    // Layer-alone samples count as gradient samples (each is one, whatever part of the model it runs).
    ...(alone && {
      evaluateLayerAlone: (q: LayerAloneQuery) => {
        for (const g of q.groups) count.gradSamples += g.image.length;
        return alone(q);
      },
    }),
    layers: o.layers,
    ffn: o.ffn,
    numClasses: o.numClasses,
    inputSize: o.inputSize,
    count,
    clean: (input, n) => o.clean(input, n),
    evaluate: (q: EditQuery): Promise<EditResult> => {
      if (q.grads) count.gradSamples += q.samples;
      else count.forwardSamples += q.samples;
      return o.evaluate(q);
    },
  };
}
