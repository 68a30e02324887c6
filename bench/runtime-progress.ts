// Benchmark: does a long inference run freeze the spinner? Runs vit-mnist (batch 256) through
// runBatched on an in-thread session and on a worker-thread session, measuring event-loop stalls
// (longest gap between 10 ms timer ticks, and perf_hooks' event-loop delay) and throughput.
// Run: npm run build:tools && node dist-tools/bench/runtime-progress.js [--threads 1,2] [--batch 256] [--batches K] [--repeat R]
// Results recorded in bench/runtime-progress.results.json (see the report in that file).
import * as fs from 'node:fs';
import * as os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createSession, type SessionLike } from '../src/runtime/session.js';
import { createWorkerSession } from '../src/runtime/worker.js';
import { runBatched } from '../src/runtime/batching.js';

export interface ModeResult {
  mode: 'in-thread' | 'worker';
  threads: number;
  images: number;
  batch: number;
  seconds: number;
  imagesPerSecond: number;
  /** Longest gap between two ticks of a 10 ms interval, minus 10 ms: how long a spinner froze. */
  maxTimerStallMs: number;
  /** perf_hooks.monitorEventLoopDelay (10 ms resolution), milliseconds. */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

async function measure(session: SessionLike, mode: ModeResult['mode'], threads: number, batch: number, batches: number): Promise<ModeResult> {
  const n = batch * batches;
  const images = new Float32Array(n * 784);
  for (let i = 0; i < images.length; i++) images[i] = ((i * 2654435761) >>> 0) / 2 ** 32; // fixed pseudo-random pixels
  const build = (s: number, c: number) => ({ input: { data: images.slice(s * 784, (s + c) * 784), dims: [c, 1, 28, 28] } });
  // warm-up run (first run allocates; not timed)
  await runBatched(session, build, batch, { batchSize: batch });
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 10);
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const t0 = performance.now();
  await runBatched(session, build, n, { batchSize: batch });
  const seconds = (performance.now() - t0) / 1000;
  h.disable();
  clearInterval(tick);
  const ms = (ns: number) => Math.round((ns / 1e6) * 10) / 10;
  return {
    mode,
    threads,
    images: n,
    batch,
    seconds: Math.round(seconds * 1000) / 1000,
    imagesPerSecond: Math.round(n / seconds),
    maxTimerStallMs: Math.round(Math.max(0, maxGap - 10) * 10) / 10,
    loopDelayP50Ms: ms(h.percentile(50)),
    loopDelayP99Ms: ms(h.percentile(99)),
    loopDelayMaxMs: ms(h.max),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Per mode and thread count, the median over `repeat` interleaved runs (the machine is shared, so single runs are noisy). */
export async function benchRuntimeProgress(model: string, threadsList: number[], batch = 256, batches = 20, repeat = 5): Promise<{ medians: ModeResult[]; runs: ModeResult[] }> {
  const runs: ModeResult[] = [];
  const medians: ModeResult[] = [];
  for (const threads of threadsList) {
    const a = await createSession(model, { provider: 'cpu', threads });
    const w = await createWorkerSession(model, { provider: 'cpu', threads });
    const mine: ModeResult[] = [];
    for (let r = 0; r < repeat; r++) {
      const order: Array<[SessionLike, ModeResult['mode']]> = r % 2 ? [[w, 'worker'], [a, 'in-thread']] : [[a, 'in-thread'], [w, 'worker']];
      for (const [s, mode] of order) mine.push(await measure(s, mode, threads, batch, batches));
    }
    await a.release();
    await w.release();
    runs.push(...mine);
    for (const mode of ['in-thread', 'worker'] as const) {
      const rs = mine.filter((x) => x.mode === mode);
      const m = (k: keyof ModeResult) => median(rs.map((x) => x[k] as number));
      medians.push({
        mode, threads, images: rs[0]!.images, batch,
        seconds: m('seconds'), imagesPerSecond: m('imagesPerSecond'), maxTimerStallMs: m('maxTimerStallMs'),
        loopDelayP50Ms: m('loopDelayP50Ms'), loopDelayP99Ms: m('loopDelayP99Ms'), loopDelayMaxMs: m('loopDelayMaxMs'),
      });
    }
  }
  return { medians, runs };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, dflt: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
  };
  const model = arg('--model', fileURLToPath(new URL('../../../shared/models/vit-mnist.onnx', import.meta.url)));
  if (!fs.existsSync(model)) {
    process.stderr.write(`runtime-progress: model not found: ${model} (pass --model PATH)\n`);
    process.exitCode = 2;
    return;
  }
  const threads = arg('--threads', '1,2').split(',').map(Number);
  const batch = Number(arg('--batch', '256'));
  const batches = Number(arg('--batches', '20'));
  const repeat = Number(arg('--repeat', '5'));
  const { medians, runs } = await benchRuntimeProgress(model, threads, batch, batches, repeat);
  const record = {
    bench: 'runtime-progress',
    model: 'vit-mnist.onnx',
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    date: new Date().toISOString(),
    settings: { batch, batches, repeat, threads },
    medians,
    runs: args.includes('--all-runs') ? runs : undefined,
  };
  process.stdout.write(JSON.stringify(record, null, 2) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) void main();
