// A view of a NeuronOracle that counts the samples evaluated through it, by kind (gradient graph or
// forward only): what a search or baseline costs, in samples of the model, independent of the machine.
import type { EditQuery, EditResult, NeuronOracle } from './oracle.js';

export interface SampleCount {
  gradSamples: number;
  forwardSamples: number;
}

export function countingOracle(o: NeuronOracle): NeuronOracle & { count: SampleCount } {
  const count: SampleCount = { gradSamples: 0, forwardSamples: 0 };
  return {
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
