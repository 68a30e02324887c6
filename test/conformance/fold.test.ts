// Shape-folding conformance on ONNX's shape-op tests (libonnx-testdata): the folded graph must give
// the expected outputs. Until a folder is wired in scripts/conformance/wiring.ts, the harness itself
// is checked with the identity folder (every case must then pass or be an oracle gap).
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../scripts/conformance/run.js';
import { FOLDER } from '../../scripts/conformance/wiring.js';
import { expectCountsAsCommitted, failures, PRESENT, SKIP_LINE, TIMEOUT } from './shared.js';

describe('ONNX backend test data: shape folding', () => {
  const title = FOLDER ? 'the folded graphs reproduce the expected outputs' : 'the folding check (identity folder until a folder is wired) passes on every shape-op test';
  it.skipIf(!PRESENT)(PRESENT ? title : SKIP_LINE, { timeout: TIMEOUT }, async () => {
    const { report } = await runConformance({ parts: ['fold'], folder: FOLDER ?? ((model) => ({ model, removed: 0 })) });
    const rs = report.fold!;
    expect(rs.length).toBeGreaterThan(0);
    expect(failures(rs)).toEqual([]);
    if (FOLDER) expectCountsAsCommitted('Shape folding by op', rs, report.meta!);
    else expect(rs.filter((r) => r.outcome === 'refused')).toEqual([]);
  });
});
