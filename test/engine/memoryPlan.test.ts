// The memory plan behind --max-memory: sizes, the estimate's growth with sessions and samples, what
// shrinks first as the budget falls (samples per run, then idle graphs, then sessions), the
// estimate always within the budget, and a clear usage error when nothing fits.
import { describe, expect, it } from 'vitest';
import { estimateTrace, gradientSampleBytes, parseMemorySize, planMemory, planProbeLayers } from '../../src/engine/memoryPlan.js';
import { usageMessage } from '../helpers/errors.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const vitB = { numBlocks: 12, width: 768, ffnWidth: 3072, heads: 12, tokens: 197 };
const vitS = { numBlocks: 12, width: 384, ffnWidth: 1536, heads: 6, tokens: 197 };
const mnist = { numBlocks: 4, width: 64, ffnWidth: 128, heads: 4, tokens: 17 };

describe('--max-memory sizes', () => {
  it('decimal without i, binary with i, plain bytes, case and spaces ignored', () => {
    expect(parseMemorySize('6GB')).toBe(6e9);
    expect(parseMemorySize('6G')).toBe(6e9);
    expect(parseMemorySize('6GiB')).toBe(6 * GiB);
    expect(parseMemorySize('6gi')).toBe(6 * GiB);
    expect(parseMemorySize(' 1.5 GB ')).toBe(1.5e9);
    expect(parseMemorySize('6000MB')).toBe(6e9);
    expect(parseMemorySize('512MiB')).toBe(512 * MiB);
    expect(parseMemorySize('6442450944')).toBe(6 * GiB);
  });
  it('refuses malformed or tiny sizes with a usage error naming the form', () => {
    for (const bad of ['6 gigs', 'GB', '-1GB', '6XB', '100MB', '']) {
      expect(usageMessage(() => parseMemorySize(bad))).toMatch(/--max-memory/);
    }
  });
});

describe('trace-path memory plan', () => {
  it('per-sample activations scale with the model (ViT-B about twice ViT-S)', () => {
    const s = gradientSampleBytes(vitS);
    const b = gradientSampleBytes(vitB);
    expect(s / MiB).toBeGreaterThan(90);
    expect(s / MiB).toBeLessThan(120);
    expect(b / s).toBeGreaterThan(1.8);
    expect(b / s).toBeLessThan(2.5);
  });

  it('the estimate grows with sessions and samples', () => {
    const e = (sessions: number, maxSamples: number) => estimateTrace(vitB, 346 * MiB, { sessions, maxSamples });
    expect(e(2, 4)).toBeGreaterThan(e(2, 2));
    expect(e(2, 2)).toBeGreaterThan(e(1, 1));
  });

  it('vit-mnist: the default plan under any sensible budget', () => {
    const p = planMemory(mnist, 800_000, { budget: 1 * GiB, sessions: 2, threads: 1, maxSamples: 320 });
    expect(p).toMatchObject({ sessions: 2, threads: 1, maxSamples: 320 });
    expect(p.estimate).toBeLessThan(1 * GiB);
  });

  it('ViT-B/16: as the budget falls, samples shrink first, then sessions go; always within budget', () => {
    const req = { sessions: 2, threads: 1, maxSamples: 16 };
    let prev = planMemory(vitB, 346 * MiB, { ...req, budget: 64 * GiB });
    expect(prev).toMatchObject({ sessions: 2, maxSamples: 16 });
    const seen: string[] = [];
    for (const gib of [16, 12, 10, 8, 7, 6.6, 6.2, 6, 5.5, 5.2, 4.9]) {
      const p = planMemory(vitB, 346 * MiB, { ...req, budget: gib * GiB });
      expect(p.estimate, `${gib} GiB`).toBeLessThanOrEqual(gib * GiB);
      expect(p.sessions).toBeLessThanOrEqual(prev.sessions);
      if (p.sessions === prev.sessions) expect(p.maxSamples).toBeLessThanOrEqual(prev.maxSamples);
      // Fewer sessions only once samples are down to one per session.
      if (p.sessions < 2) expect(estimateTrace(vitB, 346 * MiB, { sessions: 2, maxSamples: 2 })).toBeGreaterThan(gib * GiB);
      expect(p.sessions * p.threads).toBe(2); // the cores stay in use: fewer sessions get more threads
      seen.push(`${p.sessions}/${p.maxSamples}`);
      prev = p;
    }
    expect(seen[0]).toBe('2/16');
    expect(seen).toContain('2/2');
    expect(seen.at(-1)).toBe('1/1');
  });

  it('refuses a budget below the smallest plan, naming what the model needs', () => {
    const message = usageMessage(() => planMemory(vitB, 346 * MiB, { budget: 2 * GiB, sessions: 2, threads: 1, maxSamples: 2 }));
    expect(message).toMatch(/--max-memory 2\.0 GiB is too small for this model: tracing it needs about \d+\.\d GiB/);
  });
});

describe('probe-layers memory plan', () => {
  it('keeps --batch and the attribution run size when they fit', () => {
    const p = planProbeLayers(mnist, 800_000, { budget: 2 * GiB, batch: 32, igImages: 32, engines: 4 });
    expect(p).toMatchObject({ batch: 32, igImages: 32 });
  });
  it('ViT-B/16 under 6 GiB: the forward batch and attribution runs shrink to fit', () => {
    const p = planProbeLayers(vitB, 346 * MiB, { budget: 6 * GiB, batch: 32, igImages: 32, engines: 1 });
    expect(p.estimate).toBeLessThanOrEqual(6 * GiB);
    expect(p.batch).toBeLessThan(32);
    expect(p.igImages).toBeLessThanOrEqual(p.batch);
  });
  it('refuses when one image does not fit', () => {
    expect(usageMessage(() => planProbeLayers(vitB, 346 * MiB, { budget: 1 * GiB, batch: 32, igImages: 1, engines: 1 }))).toMatch(/too small for probe-layers/);
  });
});
