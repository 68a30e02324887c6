// Autodiff conformance on ONNX's operator tests (libonnx-testdata): for every test whose ops all
// have gradient rules, vitpath's gradient of a random projection of the outputs w.r.t. every float
// input matches central finite differences (float64 where ONNX Runtime allows), or vitpath refuses
// with an exit-3 message naming what it does not cover. Skips with one line when the data is absent.
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../scripts/conformance/run.js';
import { expectCountsAsCommitted, failures, PRESENT, SKIP_LINE, TIMEOUT } from './shared.js';

describe('ONNX backend test data: autodiff', () => {
  it.skipIf(!PRESENT)(PRESENT ? 'every covered operator test matches finite differences or is refused by name' : SKIP_LINE, { timeout: TIMEOUT }, async () => {
    const { report } = await runConformance({ parts: ['autodiff'] });
    const rs = report.autodiff!;
    expect(rs.length).toBeGreaterThan(0);
    expect(failures(rs)).toEqual([]);
    for (const r of rs.filter((x) => x.outcome === 'refused')) expect(r.detail).toMatch(/element type \w+|training mode|vitpath (differentiates|needs|can)/);
    // Most cases run in float64; float32 only where ONNX Runtime has no float64 kernel, and it says which.
    for (const r of rs.filter((x) => x.outcome === 'pass' && x.precision === 'float32')) expect(r.detail).toMatch(/Could not find an implementation/);
    expect(rs.filter((x) => x.precision === 'float64').length).toBeGreaterThan(rs.length / 2);
    expectCountsAsCommitted('Autodiff by op', rs, report.meta!);
  });
});
