import { Writable } from 'node:stream';
import stripAnsi from 'strip-ansi';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApplyEvent } from '../../src/apply/events.js';
import { jsonEvents, textEvents } from '../../src/cli/views/apply.js';

/** A stream that says it is a terminal, or not, and keeps what is written to it. */
function screen(tty: boolean): Writable & { text: string; writes: string[] } {
  const writes: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      writes.push(chunk.toString());
      done();
    },
  }) as Writable & { text: string; writes: string[]; isTTY?: boolean; columns?: number; rows?: number };
  Object.assign(out, { isTTY: tty, columns: 160, rows: 40, writes });
  Object.defineProperty(out, 'text', { get: () => writes.join('') });
  return out;
}

const progress = (bytes: number, percent: number, extra: Partial<Extract<ApplyEvent, { type: 'progress' }>> = {}): ApplyEvent => ({
  type: 'progress', replica: 'web', mountPoint: '/srv/data', bytes, bytesTotal: 1_000_000, files: bytes / 1000, filesTotal: 1000, percent, bytesPerSecond: 100_000, etaSeconds: 5, ...extra,
});

describe('apply as text', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('on a terminal: one bar per replica, redrawn at most four times a second, lines above it', () => {
    const out = screen(true);
    const view = textEvents(out);
    view({ type: 'note', replica: 'web', step: 'copy', text: 'sync /srv/data' });
    for (let i = 0; i < 100; i++) {
      view(progress(i * 1000, Math.floor(i / 10)));
      vi.advanceTimersByTime(20);
    }
    vi.advanceTimersByTime(1000);
    const frames = out.writes.filter((w) => w.includes('web /srv/data ['));
    // 2 s of events every 20 ms: a frame each 250 ms, and the trailing one.
    expect(frames.length).toBeGreaterThanOrEqual(6);
    expect(frames.length).toBeLessThanOrEqual(10);
    expect(stripAnsi(frames.at(-1)!)).toContain('web /srv/data [#-------------------] 9%, 99 kB of 1 MB, 99 of 1,000 files, 100 kB/s, 5s left');
    view({ type: 'note', replica: 'web', step: 'copy', text: 'a line while the bar shows' });
    expect(stripAnsi(out.writes.at(-2)!)).toBe('web: a line while the bar shows\n'); // above the bar,
    expect(out.writes.at(-1)).toContain('web /srv/data ['); // which is drawn again below it
    view(progress(1_000_000, 100, { files: 1000 }));
    expect(stripAnsi(out.writes.at(-1)!)).toContain('[####################] 100%, 1 MB of 1 MB, 1,000 of 1,000 files');
    view({ type: 'filesystem.done', replica: 'web', mountPoint: '/srv/data', files: 1000, bytesSent: 1_000_000, bytesTotal: 1_000_000 });
    expect(stripAnsi(out.writes.at(-1)!)).toBe('web: copied /srv/data: 1,000 files, 1 MB, 1 MB sent\n');
    view.close();
    view({ type: 'note', replica: 'web', step: 'record', text: 'after' });
    expect(out.writes.at(-1)).toBe('web: after\n');
  });

  it('on a terminal: several replicas, a line each; a failed step takes its bar away', () => {
    const out = screen(true);
    const view = textEvents(out);
    view(progress(1000, 1));
    view(progress(2000, 2, { replica: 'db', mountPoint: '/' }));
    vi.advanceTimersByTime(300);
    // A line printed: the bars are drawn again whole below it.
    view({ type: 'note', replica: 'db', step: 'copy', text: 'sync / -> dr' });
    expect(stripAnsi(out.writes.at(-1)!)).toMatch(/^web \/srv\/data \[-{20}\] 1%.*\ndb \/ \[-{20}\] 2%/m);
    view({ type: 'step', replica: 'web', step: 'copy /srv/data', status: 'failed', detail: 'the link went down' });
    expect(stripAnsi(out.writes.at(-2)!)).toBe('web: copy /srv/data failed: the link went down\n');
    expect(stripAnsi(out.writes.at(-1)!)).toMatch(/^db \/ \[/);
    expect(stripAnsi(out.writes.at(-1)!)).not.toContain('web /srv/data');
    view.close();
  });

  it('in a log: a progress line when a copy starts and every 10 s, none at 100% (the copied line says it)', () => {
    const out = screen(false);
    const view = textEvents(out);
    for (let s = 0; s <= 25; s++) {
      view(progress(s * 1000, s));
      vi.advanceTimersByTime(1000);
    }
    view(progress(1_000_000, 100, { files: 1000 }));
    view({ type: 'filesystem.done', replica: 'web', mountPoint: '/srv/data', files: 1000, bytesSent: 1_000_000, bytesTotal: 1_000_000 });
    expect(out.text.split('\n').filter(Boolean)).toEqual([
      'web: /srv/data 0%, 0 B of 1 MB, 0 of 1,000 files, 100 kB/s, 5s left',
      'web: /srv/data 10%, 10 kB of 1 MB, 10 of 1,000 files, 100 kB/s, 5s left',
      'web: /srv/data 20%, 20 kB of 1 MB, 20 of 1,000 files, 100 kB/s, 5s left',
      'web: copied /srv/data: 1,000 files, 1 MB, 1 MB sent',
    ]);
    expect(out.text).not.toContain('\x1b');
  });

  it('as JSON: a replica\'s progress at most once a second', () => {
    const out = screen(false);
    let now = 0;
    const emit = jsonEvents(out, '0.0.0', () => now);
    for (let i = 0; i < 50; i++, now += 100) emit(progress(i * 1000, i));
    const events = out.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; percent?: number });
    expect(events.filter((e) => e.type === 'progress').map((e) => e.percent)).toEqual([0, 10, 20, 30, 40]);
  });
});
