// What ONNX Runtime's CPU provider makes of a model: the graph after all its optimizations
// (written with optimizedModelFilePath to a temporary file and read back), and the count of the
// int8 kernels it fused (QLinearMatMul, MatMulIntegerToFloat, QGemm, ...). quantize records it so a
// report says how many quantized layers really run as integer kernels.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto.js';

/** Integer kernels ONNX Runtime fuses QDQ linears into (ops of the default and com.microsoft domains). */
export const FUSED_INT8_KERNELS: readonly string[] = ['QLinearMatMul', 'MatMulIntegerToFloat', 'QGemm', 'MatMulInteger', 'DynamicQuantizeMatMul', 'QLinearConv'];

export interface OptimizedGraph {
  model: ModelProto;
  /** Node count per op type ('com.microsoft.QGemm' for other domains). */
  ops: Record<string, number>;
  /** Nodes whose op type is one of FUSED_INT8_KERNELS. */
  fusedInt8: number;
}

/** Load `model` (bytes) in an ONNX Runtime CPU session with every optimization and read back the graph it runs. */
export async function optimizedGraph(model: Uint8Array, o: { threads?: number } = {}): Promise<OptimizedGraph> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-opt-'));
  const file = path.join(dir, 'optimized.onnx');
  try {
    const s = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: file,
      logSeverityLevel: 4,
      intraOpNumThreads: o.threads ?? 1,
    });
    await s.release();
    const m = decodeModel(fs.readFileSync(file), file);
    const ops: Record<string, number> = {};
    let fusedInt8 = 0;
    for (const n of m.graph!.node) {
      const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
      ops[key] = (ops[key] ?? 0) + 1;
      if (FUSED_INT8_KERNELS.includes(n.opType)) fusedInt8++;
    }
    return { model: m, ops, fusedInt8 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
