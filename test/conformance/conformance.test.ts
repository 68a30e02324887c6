// Conformance on ONNX's backend test data (libonnx-testdata), the three parts of `npm run conformance`:
// I/O (every test model and .pb tensor round-trips, reads to onnx.numpy_helper's values, and ONNX
// Runtime reproduces the expected outputs), autodiff (every operator test whose ops have gradient
// rules matches central finite differences, float64 where ONNX Runtime allows, or is refused by name),
// and shape folding (the folded graphs give the expected outputs). Each must match the per-op counts
// committed in RESULTS.md. Without the data the file skips, saying so in one line.
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../scripts/conformance/run.js';
import { DIGESTS_FILE, FOLDER } from '../../scripts/conformance/wiring.js';
import { expectCountsAsCommitted, failures, PRESENT, SKIP_LINE, TIMEOUT } from './shared.js';

if (!PRESENT) process.stderr.write(`test/conformance: ${SKIP_LINE}\n`);

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

describe('ONNX backend test data: shape folding', () => {
  // FOLDER is src/onnx/rewrite/foldShapes.ts (scripts/conformance/wiring.ts); should it be unwired, the
  // harness still runs with the identity folder so the check itself stays tested.
  const title = FOLDER ? 'foldShapes: the folded graphs reproduce the expected outputs, with declared and with symbolic leading dims' : 'the folding check (identity folder: no folder wired) passes on every shape-op test';
  it.skipIf(!PRESENT)(PRESENT ? title : SKIP_LINE, { timeout: TIMEOUT }, async () => {
    const { report } = await runConformance({ parts: ['fold'], folder: FOLDER ?? ((model) => ({ model, removed: 0 })) });
    const rs = report.fold!;
    expect(rs.length).toBeGreaterThan(0);
    expect(failures(rs)).toEqual([]);
    if (FOLDER) {
      // The folder did fold: shape computations became constants in many of the tests.
      expect(rs.filter((r) => (r.folded ?? 0) > 0).length).toBeGreaterThan(0);
      expectCountsAsCommitted('Shape folding by op', rs, report.meta!);
    } else expect(rs.filter((r) => r.outcome === 'refused')).toEqual([]);
  });
});
