// Finite-difference checks of the Gemm rule over every transA/transB pair, alpha/beta, and each
// broadcast form of C ([], [N], [1,N], [M,1], [M,N], absent), at opsets 9, 11 and 13.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { checkAndLog, feed, opModel, type OpInput } from './math-model.js';
import { dynGradCheck, F64, smallModel } from './dyncheck.js';

const M = 3;
const K = 4;
const N = 2;

describe('Gemm gradient rule', () => {
  for (const opset of [9, 11, 13]) {
    for (const [tA, tB] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]) {
      it(`transA=${tA} transB=${tB} alpha=0.7 beta=1.3, C [M,N] and [N] (opset ${opset}, float64)`, async () => {
        for (const cDims of [[M, N], [N]]) {
          const aDims = tA ? [K, M] : [M, K];
          const bDims = tB ? [N, K] : [K, N];
          const inputs: OpInput[] = [
            { name: 'a', dims: aDims },
            { name: 'b', dims: bDims },
            { name: 'c', dims: cDims },
          ];
          const model = opModel('Gemm', inputs, { transA: tA || undefined, transB: tB || undefined, alpha: { float: 0.7 }, beta: { float: 1.3 } }, opset);
          const r = await checkAndLog('Gemm', `tA=${tA} tB=${tB} C ${JSON.stringify(cDims)} opset ${opset}`, {
            model,
            inputs: { a: feed(aDims, 31), b: feed(bDims, 32), c: feed(cDims, 33) },
            wrt: ['a', 'b', 'c'],
          });
          expect(r.maxRelErr, JSON.stringify(cDims)).toBeLessThan(1e-6);
        }
      });
    }
  }
  it('C broadcast forms [], [1,N], [M,1] (opset 13, float64)', async () => {
    for (const cDims of [[], [1, N], [M, 1]]) {
      const model = opModel('Gemm', [{ name: 'a', dims: [M, K] }, { name: 'b', dims: [N, K] }, { name: 'c', dims: cDims }], { transB: 1, beta: { float: 0.5 } }, 13);
      const r = await checkAndLog('Gemm', `C ${JSON.stringify(cDims)} opset 13`, {
        model,
        inputs: { a: feed([M, K], 34), b: feed([N, K], 35), c: feed(cDims, 36) },
        wrt: ['a', 'b', 'c'],
      });
      expect(r.maxRelErr, JSON.stringify(cDims)).toBeLessThan(1e-6);
    }
  });
  it('C absent, and only A needed with a constant B (opset 13, float64)', async () => {
    const model = opModel('Gemm', [{ name: 'a', dims: [M, K] }, { name: 'b', dims: [K, N], init: Array.from({ length: K * N }, (_, i) => Math.sin(i + 1)) }], { alpha: { float: 2 } }, 13);
    const r = await checkAndLog('Gemm', 'no C, constant B opset 13', { model, inputs: { a: feed([M, K], 37) }, wrt: ['a'] });
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('float32 transA=1 transB=1 within 1e-3', async () => {
    const model = opModel('Gemm', [{ name: 'a', dims: [K, M] }, { name: 'b', dims: [N, K] }, { name: 'c', dims: [N] }], { transA: 1, transB: 1 }, 13, DataType.FLOAT);
    const r = await checkAndLog('Gemm', 'tA=1 tB=1 float32', { model, inputs: { a: feed([K, M], 38, -1, 1, false), b: feed([N, K], 39, -1, 1, false), c: feed([N], 40, -1, 1, false) }, wrt: ['a', 'b', 'c'] });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
  it('dynamic batch M with C [M,N]-broadcast from [N] and transA (opset 13, run at batch 1 and 4)', async () => {
    // A is [K, batch] with transA=1, so the batch axis is M; C [N] is summed over it at run time.
    const model = smallModel(13, [['a', F64, [K, 'batch']], ['c', F64, [N]]], (b) => {
      const w = b.constF64(Array.from({ length: K * N }, (_, i) => Math.sin(i + 2)), [K, N]);
      return b.op('Gemm', ['a', w, 'c'], { transA: 1, beta: { float: 0.5 } });
    });
    const r = await dynGradCheck({ model, feeds: (n) => ({ a: feed([K, n], 41 + n), c: feed([N], 40) }), wrt: ['a', 'c'] });
    expect(r.outDims[0]).toBeNull();
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
