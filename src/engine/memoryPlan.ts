// Sizing trace-path's ONNX Runtime work to a memory budget (--max-memory): how many sessions run
// side by side and how many samples one gradient run takes. Estimates from the layout, calibrated by peak-RSS measurements on
// ViT-S/16- and ViT-B/16-sized models (BENCHMARKS.md "trace-path at scale"); they plan, they do
// not enforce: the process can end up somewhat above or below.
import * as os from 'node:os';
import { usageError } from '../errors.js';
import type { ModelProto } from '../onnx/proto.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, ki: 2 ** 10, kib: 2 ** 10, mi: MiB, mib: MiB, gi: GiB, gib: GiB, ti: 2 ** 40, tib: 2 ** 40 };

/**
 * "6GB", "6G", "6000MB", "5.5GiB", "6442450944" -> bytes. Units without "i" are decimal (1 GB =
 * 10^9 bytes, as Kubernetes reads G), with "i" binary (1 GiB = 2^30, Kubernetes' Gi; Slurm's --mem=6G
 * is 6 GiB).
 */
export function parseMemorySize(text: string, flag = '--max-memory'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) throw usageError(`${flag} takes a size like 6GB, 6GiB or 6000MB (got "${text}").`);
  const bytes = Math.floor(Number(m[1]) * factor);
  if (bytes < 256 * MiB) throw usageError(`${flag} ${text} is below 256 MiB; ONNX Runtime and the model alone need about that.`);
  return bytes;
}

export function formatBytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : `${Math.round(n / MiB)} MiB`;
}

/**
 * Bytes the model's weights take once loaded for tracing: every initializer's elements at 4 bytes
 * (float16 weights are analysed in float32), 8 for 64-bit types, 1 for 8-bit ones.
 */
export function weightBytes(model: ModelProto): number {
  let total = 0;
  for (const t of model.graph?.initializer ?? []) {
    const n = t.dims.reduce((a, d) => a * Number(d), 1);
    const dt = t.dataType;
    const size = dt === 7 || dt === 11 || dt === 13 ? 8 : dt === 2 || dt === 3 || dt === 9 ? 1 : 4; // int64/double/uint64; uint8/int8/bool
    total += n * size;
  }
  return total;
}

/** The layout facts the estimates read (ViTLayout['facts']). */
export interface SizeFacts {
  numBlocks: number;
  width: number;
  ffnWidth: number;
  heads: number | null;
  tokens: number;
}

/**
 * Activation bytes one sample of a gradient run keeps in its session's arena: per block about
 * 8 [T,D], 4 [T,FFN] and 3 [heads,T,T] float32 tensors, times SAMPLE_FACTOR (fitted: ViT-S/16
 * measured ~105 MB per sample, this count gives 121 MB).
 */
export function gradientSampleBytes(s: SizeFacts): number {
  const heads = s.heads ?? Math.max(1, Math.round(s.width / 64));
  return SAMPLE_FACTOR * 4 * s.numBlocks * s.tokens * (8 * s.width + 4 * s.ffnWidth + 3 * heads * s.tokens);
}
const SAMPLE_FACTOR = 0.87;

/** Node, ONNX Runtime and the report's working data besides the model and the sessions (fitted, see estimateTrace). */
const BASE_BYTES = 550 * MiB;
/** What one session holds per byte of weights (the initializers plus ONNX Runtime's pre-packed MatMul copies). */
const SESSION_WEIGHT_FACTOR = 2;
/** The clean and forward-only graphs' arenas, per sample of a gradient run. */
const FORWARD_ARENA_FACTOR = 0.25;

export interface MemoryRequest {
  /** Budget in bytes. */
  budget: number;
  /** Sessions and intra-op threads per session the CPU plan uses without a budget. */
  sessions: number;
  threads: number;
  /** Samples per gradient run without a budget (all sessions together). */
  maxSamples: number;
}

export interface MemoryPlan {
  budget: number;
  sessions: number;
  threads: number;
  /** Samples per gradient run (all sessions together). */
  maxSamples: number;
  /** Estimated peak resident memory (bytes). */
  estimate: number;
}

/**
 * Estimated peak: the base, plus HELD_FACTOR copies of the weights per open session (the gradient
 * graph's `sessions` and one each for the clean and forward-only graphs; the factor also covers the
 * loaded model, the encoded graphs kept in memory and the copies ONNX Runtime makes while it creates
 * a session and pre-packs), plus the arenas of the gradient runs (and of the forward graphs, per
 * sample). BASE_BYTES and HELD_FACTOR are fitted to the measured default peaks: ViT-S/16-sized
 * 2,060 MiB, ViT-B/16-sized 6,024 MiB (BENCHMARKS.md "trace-path at scale").
 */
export function estimateTrace(s: SizeFacts, weightBytes: number, p: { sessions: number; maxSamples: number }): number {
  const sample = gradientSampleBytes(s);
  const share = Math.ceil(p.maxSamples / p.sessions);
  return BASE_BYTES + HELD_FACTOR * weightBytes * (p.sessions + 2) + p.sessions * share * sample * (1 + FORWARD_ARENA_FACTOR) + joinBytes(s, p.sessions * share);
}

/**
 * The gradient graph's joins (layer-alone samples from clean states): the clean states of one
 * layer-alone call and their copies as feeds (at most 2 x 64 MiB), and per sample of a run the
 * joined residual and neuron rows of every block. Added after the first fit, when the ViT-B/16-sized
 * default peak went from 6,024 to 6,383 MiB with the joins (this term: ~200 MiB there, ~165 on ViT-S/16,
 * whose peak stayed at 1,977 MiB).
 */
function joinBytes(s: SizeFacts, samples: number): number {
  return 128 * MiB + samples * 4 * s.numBlocks * s.tokens * (s.width + s.ffnWidth);
}
/** Bytes per byte of weights and open session (see estimateTrace). */
const HELD_FACTOR = 3.8;

/** Default budget: 60% of the machine's memory. */
export function defaultMemoryBudget(total = os.totalmem()): number {
  return Math.floor(0.6 * total);
}

/**
 * The fastest configuration whose estimate fits: the default if it does; else fewer samples per run
 * (no loss on models big enough to need it: their runs are compute-bound), then fewer sessions
 * (their threads go intra-op). Refuses (exit 1) when one session with one sample does not fit.
 * (Closing the clean and forward graphs between uses was tried and dropped: reopening them while the
 * gradient arenas were full raised a ViT-B/16-sized peak from 6,024 to 6,586 MiB.)
 */
export function planMemory(s: SizeFacts, weightBytes: number, r: MemoryRequest): MemoryPlan {
  const cores = r.sessions * r.threads;
  const plan = (sessions: number, maxSamples: number): MemoryPlan => ({
    budget: r.budget,
    sessions,
    threads: Math.max(1, Math.floor(cores / sessions)),
    maxSamples,
    estimate: estimateTrace(s, weightBytes, { sessions, maxSamples }),
  });
  for (let k = r.sessions; k >= 1; k--) {
    for (let q = Math.max(k, r.maxSamples); ; q = Math.max(k, Math.ceil(q / 2))) {
      const p = plan(k, q);
      if (p.estimate <= r.budget) return p;
      if (q === k) break;
    }
  }
  const least = plan(1, 1);
  throw usageError(
    `--max-memory ${formatBytes(r.budget)} is too small for this model: tracing it needs about ${formatBytes(least.estimate)} (one session, one sample per run; weights ${formatBytes(weightBytes)}). Raise --max-memory.`,
  );
}

export interface ProbePlan {
  budget: number;
  /** Images per forward run (at most --batch). */
  batch: number;
  /** Images per attribution gradient run. */
  igImages: number;
  estimate: number;
}

/**
 * probe-layers under a budget: its sessions (the exposed, tail and gated models, plus `engines`
 * gradient graphs) hold the weights; a forward run keeps every block's residual streams of each
 * image it takes; an attribution run keeps a gradient sample's activations per image. The forward
 * batch shrinks first (down to one image), then the attribution's images per run. Refuses (exit 1)
 * when one image of each does not fit.
 */
export function planProbeLayers(s: SizeFacts, weightBytes: number, o: { budget: number; batch: number; igImages: number; engines: number }): ProbePlan {
  const sample = gradientSampleBytes(s);
  const streams = 4 * s.numBlocks * s.tokens * (3 * s.width + s.ffnWidth);
  const perImage = 2 * streams + 0.3 * sample;
  const fixed = BASE_BYTES + 4 * weightBytes + (3 + o.engines) * SESSION_WEIGHT_FACTOR * weightBytes;
  const estimate = (b: number, q: number) => fixed + b * perImage + q * sample * (1 + FORWARD_ARENA_FACTOR);
  let batch = Math.max(1, o.batch);
  let ig = Math.max(1, Math.min(o.igImages, batch));
  while (estimate(batch, ig) > o.budget && batch > 1) batch = Math.ceil(batch / 2);
  ig = Math.min(ig, batch);
  while (estimate(batch, ig) > o.budget && ig > 1) ig = Math.ceil(ig / 2);
  const e = estimate(batch, ig);
  if (e > o.budget) {
    throw usageError(`--max-memory ${formatBytes(o.budget)} is too small for probe-layers on this model: one image at a time needs about ${formatBytes(e)} (weights ${formatBytes(weightBytes)}). Raise --max-memory.`);
  }
  return { budget: o.budget, batch, igImages: ig, estimate: e };
}
