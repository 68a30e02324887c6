// Shared by the commands that run a model: load it, locate its ViT layout (with the head choice of
// distilled models), and hand back the graph vitpath analyses — float16 models upcast to float32
// (onnx/rewrite/upcast.ts), everything else as stored. The sha256 stays the file's.
import { loadModel, type LoadedModel } from '../onnx/model.js';
import { hasFloat16, upcastFloat16 } from '../onnx/rewrite/upcast.js';
import { locateVit } from '../vit/locate.js';
import type { Dim, HeadChoice, ViTLayout } from '../vit/types.js';
import { setInputDims } from '../onnx/rewrite/inputDims.js';
import { exposeOutputs } from '../onnx/rewrite/expose.js';
import { modelFacts } from '../onnx/facts.js';
import type { ModelProto } from '../onnx/proto.js';
import { unsupported } from '../errors.js';

export interface VitModelOptions {
  /** Graph output holding the logits (default: located). */
  output?: string;
  /** Distilled models: the readout (default 'avg', the model's output). */
  head?: HeadChoice;
}

export interface VitModel {
  /** The model as analysed: `proto` is the float32 graph for float16 models. */
  loaded: LoadedModel;
  layout: ViTLayout;
}

/** One line for stderr/reports about how a model is analysed, or null when there is nothing to say. */
export function precisionNote(layout: ViTLayout): string | null {
  return layout.precision ? `${layout.precision.stored} model: analysed in ${layout.precision.analysed} (its ${layout.precision.stored} weights converted exactly)` : null;
}

/**
 * Locate the layout on the stored model, then: declare the image input's symbolic channel and
 * spatial dims with the sizes the layout found (optimum exports declare every axis dynamic, though
 * the position embedding fixes the image size; the batch stays symbolic), make a chosen DeiT
 * head's logits a graph output, and upcast float16 graphs. Names are unchanged, so the layout holds for the returned graph.
 */
export function prepareVitModel(loaded: LoadedModel, opts: VitModelOptions = {}): VitModel {
  let layout = locateVit(loaded.proto, { output: opts.output, label: loaded.path, head: opts.head });
  let proto = loaded.proto;
  const pinned = pinnedImageDims(layout);
  if (pinned) {
    proto = setInputDims(proto, layout.input, pinned);
    layout = { ...layout, inputDims: pinned, declaredInputDims: layout.inputDims };
  }
  // One head of a distilled model: its logits become a graph output like any model's logits.
  if (!proto.graph!.output.some((o) => o.name === layout.logits)) proto = exposeOutputs(proto, [layout.logits]);
  if (hasFloat16(proto)) {
    proto = upcastFloat16(proto).model;
    if (!layout.precision) layout.precision = { stored: 'float16', analysed: 'float32' };
  }
  return { loaded: proto === loaded.proto ? loaded : { ...loaded, proto }, layout };
}

/**
 * [batch, C, H, W] for an NCHW image input whose C, H or W is symbolic, from the located channels
 * and image size; null when every non-batch dim is already fixed (or the input is not NCHW).
 */
export function pinnedImageDims(layout: ViTLayout): Dim[] | null {
  const d = layout.inputDims;
  const f = layout.facts;
  if (d.length !== 4 || d.slice(1).every((x) => typeof x === 'number')) return null;
  const want = [f.channels, f.imageSize[0], f.imageSize[1]];
  // Only where every fixed dim already agrees with NCHW (an NHWC input keeps its declaration).
  if (!d.slice(1).every((x, i) => typeof x !== 'number' || x === want[i])) return null;
  return [d[0]!, ...want];
}

export function openVitModel(file: string, opts: VitModelOptions = {}): VitModel {
  return prepareVitModel(loadModel(file), opts);
}

/** Refuse a model that is already quantized (exit 3), for commands that need the float model. */
export function assertFloatModel(proto: ModelProto, file: string, command: string): void {
  const p = modelFacts(proto).precision;
  if (/qdq|qoperator/.test(p)) {
    throw unsupported(
      `${file} is a quantized model (${p}); ${command} needs the float model it was made from. Run ${command} on the float32 (or float16) model; vitpath eval shows the quantized model's facts (precision, parameters, size) and compares the two with --compare.`,
    );
  }
}
