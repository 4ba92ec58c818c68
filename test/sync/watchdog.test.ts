import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TAR_STREAM } from '../../src/sync/tar.js';
import { stalledCopy, StallWatchdog } from '../../src/sync/watchdog.js';

describe('the stall watchdog of tar streams', () => {
  afterEach(() => void vi.useRealTimers());

  it('fires once no stream moved a byte for the timeout, not while any moves', async () => {
    vi.useFakeTimers();
    let killed = false;
    const onStall = vi.fn(async () => {
      await new Promise((r) => setTimeout(r, 100));
      killed = true;
    });
    const dog = new StallWatchdog(5_000, onStall);
    const a = new PassThrough();
    const b = new PassThrough();
    dog.watch(a);
    dog.watch(b);
    for (let s = 0; s < 20; s++) {
      vi.advanceTimersByTime(1_000);
      (s % 2 ? a : b).write('x'); // the streams take turns: the copy moves
    }
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(4_000);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_100);
    expect(onStall).toHaveBeenCalledTimes(1);
    const stopped = dog.stop();
    await vi.advanceTimersByTimeAsync(200);
    await stopped; // waits for what the stall started
    expect(killed).toBe(true);
    vi.advanceTimersByTime(60_000);
    expect(onStall).toHaveBeenCalledTimes(1);
  });

  it('says what stalled as rsync exit 30 does', () => {
    const err = stalledCopy('copying /srv/data of web-01 to dr-1', 300_000);
    expect(err.code).toBe('sync.stalled');
    expect(err.message).toBe('copying /srv/data of web-01 to dr-1 failed: no data moved for 300 s (policy stallTimeout); the target or the link between the hosts stopped answering');
  });
});

describe('a direct tar stream on the origin (TAR_STREAM, with a local shell for ssh)', () => {
  it("reports the bytes tar read and wrote as they grow, while the receiver takes them", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rmm-tar-stream-'));
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src/big'), Buffer.alloc(6 << 20, 7));
    // `$rsh "$to" "$remote"`: here sh -c SCRIPT, a receiver that takes 1 MiB each 0.4 s.
    const receive = 'while [ "$(head -c 1048576 | wc -c)" -gt 0 ]; do sleep 0.4; done';
    const options = ['-c', '-b', '2048', '--null', '--no-recursion', '-T', '-'];
    const proc = spawn('sh', ['-c', TAR_STREAM, 'rmm-tar', path.join(dir, 'src'), 'sh -c', receive, '-', path.join(dir, 'status'), ...options]);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.stdin.end('big\0');
    const code = await new Promise<number | null>((r) => proc.once('close', r));
    expect(code, stderr).toBe(0);
    // Each line: bytes read and written, then the archive bytes written.
    const lines = stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]);
    const counts = lines.map(([n]) => n);
    const written = lines.map(([, w]) => w);
    // One record (1 MiB) at a time; the last may come after the last report.
    expect(counts.length, stdout).toBeGreaterThanOrEqual(3);
    expect(counts).toEqual([...counts].sort((x, y) => x - y));
    expect(counts.at(-1)).toBeGreaterThanOrEqual(3 << 20);
    expect(written).toEqual([...written].sort((x, y) => x - y));
    expect(written.every((w, i) => w % (1 << 20) === 0 && w <= counts[i]!), stdout).toBe(true);
    expect(written.at(-1)).toBeGreaterThanOrEqual(2 << 20);
  });

  it("fails with tar's own status when tar on the origin fails", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rmm-tar-stream-'));
    mkdirSync(path.join(dir, 'src'));
    const proc = spawn('sh', ['-c', TAR_STREAM, 'rmm-tar', path.join(dir, 'src'), 'sh -c', 'cat >/dev/null', '-', path.join(dir, 'status'), '-c', '--null', '-T', '-']);
    let stderr = '';
    proc.stdout.resume();
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.stdin.end('missing\0');
    expect(await new Promise<number | null>((r) => proc.once('close', r))).toBe(2);
    expect(stderr).toContain('rmm: tar on the origin exited 2');
  });
});
