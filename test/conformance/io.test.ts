// I/O conformance on ONNX's backend test data (libonnx-testdata): every test model decodes and
// re-encodes byte for byte, every .pb tensor reads through src/onnx/tensor.ts to onnx.numpy_helper's
// values, and ONNX Runtime fed those inputs gives the expected outputs. Skips with one line when the
// data is not installed.
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../scripts/conformance/run.js';
import { DIGESTS_FILE } from '../../scripts/conformance/wiring.js';
import { expectCountsAsCommitted, failures, PRESENT, SKIP_LINE, TIMEOUT } from './shared.js';

describe('ONNX backend test data: I/O', () => {
  it.skipIf(!PRESENT)(PRESENT ? 'every test model and .pb tensor round-trips, and ONNX Runtime reproduces the expected outputs' : SKIP_LINE, { timeout: TIMEOUT }, async () => {
    const { report } = await runConformance({ parts: ['io'], digestsFile: DIGESTS_FILE });
    const rs = report.io!;
    expect(rs.length).toBeGreaterThan(0);
    expect(failures(rs)).toEqual([]);
    // Refusals name what vitpath does not read: an element type or a non-tensor value.
    for (const r of rs.filter((x) => x.outcome === 'refused')) expect(r.detail).toMatch(/element type \w+|is a (sequence|optional) value/);
    // Every pass read its values as onnx.numpy_helper does, wherever a digest was recorded.
    const confirmed = rs.filter((x) => x.outcome === 'pass' && x.detail.includes('= onnx.numpy_helper')).length;
    expect(confirmed).toBeGreaterThan(0);
    expectCountsAsCommitted('I/O by op', rs, report.meta!);
  });
});
