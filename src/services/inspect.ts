// The `inspect` service: load a model, locate its ViT layout and return it with the model's
// identity (path, sha256), as the JSON report of `vitpath inspect --json`.
import { loadModel } from '../onnx/model.js';
import { locateVit } from '../vit/locate.js';
import type { ViTLayout } from '../vit/types.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';

export interface InspectOptions {
  /** Graph output holding the logits (default: the [batch, classes] output of the classifier head). */
  output?: string;
}

export interface InspectResult {
  schemaVersion: 1;
  tool: string;
  version: string;
  command: 'inspect';
  options: InspectOptions;
  model: { path: string; sha256: string; sizeBytes: number; externalFiles: string[] };
  layout: ViTLayout;
}

/** Load `modelPath` and locate its layout. Errors: exit 2 (unreadable model), 3 (not a ViT), 1 (bad --output). */
export function inspectModel(modelPath: string, opts: InspectOptions = {}): InspectResult {
  const loaded = loadModel(modelPath);
  const layout = locateVit(loaded.proto, { output: opts.output, label: modelPath });
  return {
    schemaVersion: 1,
    tool: TOOL_NAME,
    version: TOOL_VERSION,
    command: 'inspect',
    options: { ...opts },
    model: { path: loaded.path, sha256: loaded.sha256, sizeBytes: loaded.sizeBytes, externalFiles: loaded.externalFiles },
    layout,
  };
}
