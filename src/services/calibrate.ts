// Calibration: run the float model with the activations to quantize exposed as extra outputs over
// calibration batches, and feed each exposed tensor to its calibrator (minmax / percentile /
// entropy, quantize/calibrate.ts). Returns the calibrated range of every tensor.
import type { ModelProto } from '../onnx/proto.js';
import { encodeModel } from '../onnx/model.js';
import { exposeOutputs } from '../onnx/rewrite/expose.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { createCalibrator, type CalibratedRange, type CalibrationMethod, type CalibratorOptions } from '../quantize/calibrate.js';
import { badInput } from '../errors.js';

export interface CalibrationBatch {
  data: Float32Array;
  dims: readonly number[];
}

export interface CalibrateOptions extends CalibratorOptions {
  method: CalibrationMethod;
  runtime?: RuntimeOptions;
  /** Called after each batch with the images done so far. */
  onProgress?: (done: number) => void;
  label?: string;
}

/** The calibrated range of each of `tensors` (activations of `model`, float32) over the batches. */
export async function calibrateActivations(
  model: ModelProto,
  input: string,
  tensors: readonly string[],
  batches: AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>,
  o: CalibrateOptions,
): Promise<Map<string, CalibratedRange>> {
  const names = [...new Set(tensors)];
  const exposed = exposeOutputs(model, names);
  const session = await createSession(encodeModel(exposed), o.runtime ?? {});
  const calibrators = new Map(names.map((n) => [n, createCalibrator(o.method, o)]));
  let done = 0;
  try {
    for await (const b of batches) {
      const out = await session.run({ [input]: { data: b.data, dims: b.dims } }, names);
      for (const n of names) {
        const t = out[n]!;
        if (t.type !== 'float32') throw badInput(`${o.label ?? 'model'}: activation ${n} is ${t.type}, not float32; quantize works on float32 models.`);
        try {
          calibrators.get(n)!.add(t.data as Float32Array);
        } catch (e) {
          throw badInput(`${o.label ?? 'model'}: ${(e as Error).message} (tensor ${n}); check the images and the preprocessing.`, e);
        }
      }
      done += b.dims[0]!;
      o.onProgress?.(done);
    }
  } finally {
    await session.release();
  }
  if (done === 0) throw badInput(`${o.label ?? 'model'}: no calibration images`);
  return new Map([...calibrators].map(([n, c]) => [n, c.range()]));
}
