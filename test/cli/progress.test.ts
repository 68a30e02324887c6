import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createProgress, formatDuration, formatProgress, progressMode, progressStats } from '../../src/cli/progress.js';

/** A stream that records what is written; `tty` makes ora treat it as a terminal. */
function sink(tty = false) {
  const chunks: string[] = [];
  const s = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number; cursorTo?: () => boolean; moveCursor?: () => boolean; clearLine?: () => boolean };
  if (tty) Object.assign(s, { isTTY: true, columns: 120, cursorTo: () => true, moveCursor: () => true, clearLine: () => true });
  return { s, text: () => chunks.join('') };
}

describe('progress mode', () => {
  it('spinner only on a TTY outside CI without NO_COLOR, nothing with --quiet', () => {
    expect(progressMode({ isTTY: true, env: {} })).toBe('spinner');
    expect(progressMode({ isTTY: false, env: {} })).toBe('plain');
    expect(progressMode({ isTTY: true, env: { CI: 'true' } })).toBe('plain');
    expect(progressMode({ isTTY: true, env: { CI: 'false' } })).toBe('spinner');
    expect(progressMode({ isTTY: true, env: { NO_COLOR: '1' } })).toBe('plain');
    expect(progressMode({ isTTY: true, env: { NO_COLOR: '' } })).toBe('plain');
    expect(progressMode({ isTTY: true, env: {}, quiet: true })).toBe('silent');
  });
});

describe('progress numbers', () => {
  it('rate and ETA follow from done, total and elapsed time', () => {
    const s = progressStats(25, 100, 5000); // 5 items/s, 75 left -> 15 s
    expect(s.rate).toBeCloseTo(5, 12);
    expect(s.etaMs).toBeCloseTo(15000, 6);
    expect(s.fraction).toBe(0.25);
    expect(Number.isNaN(progressStats(0, 10, 1000).etaMs)).toBe(true);
    expect(progressStats(10, 10, 1000).etaMs).toBe(0);
  });

  it('formats durations and the progress line', () => {
    expect(formatDuration(75_000)).toBe('1:15');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
    expect(formatProgress('trace-path', progressStats(25, 100, 5000), 'img')).toBe('trace-path 25/100 (25.0%) 5.00 img/s, elapsed 0:05, ETA 0:15');
  });
});

describe('progress output', () => {
  it('plain mode writes occasional lines to its stream only, never stdout', () => {
    const out = vi.spyOn(process.stdout, 'write');
    let t = 0;
    const { s, text } = sink(false);
    const p = createProgress({ label: 'probe', total: 10, unit: 'img', stream: s, env: {}, now: () => t, plainEveryMs: 1000 });
    expect(p.mode).toBe('plain');
    for (let i = 1; i <= 10; i++) {
      t += 300;
      p.update(i);
    }
    p.succeed();
    const lines = text().trim().split('\n');
    // start line, a line at t=1200, 2400 (every >= 1000 ms), then the final line
    expect(lines[0]).toBe('probe: 10 img to do');
    expect(lines.slice(1, -1)).toEqual(['probe 4/10 (40.0%) 3.33 img/s, elapsed 0:01, ETA 0:02', 'probe 8/10 (80.0%) 3.33 img/s, elapsed 0:02, ETA 0:01']);
    expect(lines.at(-1)).toBe('probe done: 10/10 in 0:03 (3.33 img/s)');
    expect(out).not.toHaveBeenCalled();
    out.mockRestore();
  });

  it('quiet writes nothing at all', () => {
    const { s, text } = sink(true);
    const p = createProgress({ label: 'x', total: 3, quiet: true, stream: s, env: {} });
    p.tick();
    p.log('a notice');
    p.succeed();
    expect(p.mode).toBe('silent');
    expect(text()).toBe('');
  });

  it('spinner mode drives ora on the stream and ends with the final line', () => {
    const { s, text } = sink(true);
    const p = createProgress({ label: 'trace', total: 4, stream: s, env: {} });
    expect(p.mode).toBe('spinner');
    p.tick(2);
    p.log('vitpath: warning: something');
    p.tick(2);
    p.succeed('trace done');
    const t = text();
    expect(t).toContain('trace 0/4');
    expect(t).toContain('vitpath: warning: something\n');
    expect(t).toContain('trace done');
  });
});

describe('a terminal that reports 0 columns', () => {
  /** A terminal stream that counts everything drawn on it (text and cursor moves) and gives up on a flood. */
  function terminal(columns: number) {
    let draws = 0;
    const draw = () => {
      // ora sizes its redraw by the width: with 0 columns it would clear lines without end
      if (++draws > 1000) throw new Error('the progress output flooded the terminal');
      return true;
    };
    const stream = Object.assign(
      new Writable({
        write(_chunk, _enc, cb) {
          draw();
          cb();
        },
      }),
      { isTTY: true, columns, cursorTo: draw, moveCursor: draw, clearLine: draw },
    );
    return { stream, draws: () => draws };
  }

  it('gets plain lines, never a spinner that redraws without end', () => {
    const t = terminal(0);
    const p = createProgress({ label: 'x', total: 3, stream: t.stream, env: {} });
    try {
      expect(p.mode).toBe('plain');
      p.tick();
      p.log('a notice');
      p.tick(2);
      p.succeed();
    } finally {
      p.stop();
    }
    expect(t.draws()).toBeLessThan(10);
  });

  it('a spinner whose terminal shrinks to 0 columns stops drawing', () => {
    const t = terminal(80);
    const p = createProgress({ label: 'x', total: 3, stream: t.stream, env: {} });
    try {
      expect(p.mode).toBe('spinner');
      t.stream.columns = 0;
      p.tick();
      p.succeed();
    } finally {
      p.stop();
    }
    expect(t.draws()).toBeLessThan(50);
  });
});
