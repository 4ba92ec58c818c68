import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, openSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prefetchArgv } from '../../src/sync/prefetch.js';

// On a disk-backed filesystem (not tmpfs), so that files can be dropped from the page cache.
const dir = mkdtempSync('/var/tmp/rmm-prefetch-');
const FILE = 256 * 1024;
const files = ['f1', 'f2', 'f3', 'f4', 'other'];
const children: ChildProcess[] = [];

/** Bytes of the file in the page cache. */
function resident(name: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path.join(dir, name)], { encoding: 'utf8' }).trim());
}

function evict(): void {
  execFileSync('sync', ['-f', dir]);
  for (const f of files) execFileSync('dd', [`if=${path.join(dir, f)}`, 'iflag=nocache', 'count=0', 'status=none']);
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function start(budget: number, env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; exited: Promise<number | null> } {
  const [, ...args] = prefetchArgv(dir, budget);
  // By its path: the test without python3 runs with a PATH that has only cat.
  const child = spawn('/bin/sh', args, { stdio: ['pipe', 'ignore', 'pipe'], env });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  children.push(child);
  return { child, exited };
}

beforeAll(() => {
  for (const f of files) writeFileSync(path.join(dir, f), randomBytes(FILE));
  mkdirSync(path.join(dir, 'folder'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  symlinkSync('other', path.join(dir, 'link'));
  linkSync(path.join(dir, 'f1'), path.join(dir, 'f1-again'));
  writeFileSync(path.join(dir, 'holes'), '');
  truncateSync(path.join(dir, 'holes'), 64 << 20); // 64 MiB, all of it a hole
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('read-ahead on the origin', () => {
  it('reads the named files ahead, passes over what is not a regular file, and ends with its input', async () => {
    evict();
    expect(files.map(resident)).toEqual([0, 0, 0, 0, 0]);
    const { child, exited } = start(64 << 20);
    // A fifo must not block it, nor a folder, a symlink (not followed) or a name that is gone.
    const named = ['f1', 'f2', 'f3', 'f4'];
    child.stdin!.write(['./fifo', './folder', './link', './gone', ...named.map((f) => `./${f}`)].join('\0') + '\0');
    await until(() => named.every((f) => resident(f) === FILE));
    expect(resident('other')).toBe(0);
    child.stdin!.end();
    expect(await exited).toBe(0);
  });

  it('stays within its budget ahead of the streams and goes on as their tar reads', async () => {
    evict();
    const { child, exited } = start(600 * 1024);
    child.stdin!.write(files.map((f) => `./${f}`).join('\0') + '\0');
    await until(() => resident('f1') === FILE && resident('f2') === FILE);
    await new Promise((r) => setTimeout(r, 500));
    expect([resident('f3'), resident('f4')]).toEqual([0, 0]); // a third file would pass 600 KiB

    // A stream's tar (run in the folder, as rmm's are) reads the first two: the budget moves on.
    const tar = spawn('tar', ['-c', '-f', '-', '--null', '--no-recursion', '-T', '-'], { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
    tar.stdout!.resume();
    tar.stdin!.write('f1\0f2\0');
    try {
      await until(() => resident('f3') === FILE && resident('f4') === FILE);
    } finally {
      tar.stdin!.end();
      child.stdin!.end();
    }
    expect(await exited).toBe(0);
  });

  it('counts what tar will read: a hard-linked file once, a sparse file by its data', async () => {
    evict();
    // 64 MiB of holes, then 256 KiB twice under two names, then 256 KiB: 512 KiB in all, within 600.
    const { child, exited } = start(600 * 1024);
    child.stdin!.write(['./holes', './f1', './f1-again', './f2'].join('\0') + '\0');
    await until(() => resident('f1') === FILE && resident('f2') === FILE);
    child.stdin!.end();
    expect(await exited).toBe(0);
  });

  it('reads ahead files whose names hold newlines, dashes, shell syntax and bytes that are not UTF-8', async () => {
    const names = ['new\nline', '-rf', '--delete', '$(touch pwned)', '`touch pwned`', "it's", 'back\\slash'].map((n) => Buffer.from(n));
    names.push(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const folder = Buffer.from(path.join(dir, 'hostile -rf\n'));
    mkdirSync(folder, { recursive: true });
    const at = (name: Buffer): Buffer => Buffer.concat([folder, Buffer.from('/'), name]);
    // fincore and dd take paths as arguments, which cannot hold bytes that are not UTF-8: read through /proc.
    const held = names.map((n) => {
      writeFileSync(at(n), randomBytes(FILE));
      return openSync(at(n), 'r');
    });
    try {
      const cached = (fd: number): number => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', `/proc/${process.pid}/fd/${fd}`], { encoding: 'utf8' }).trim());
      execFileSync('sync', ['-f', dir]);
      for (const fd of held) execFileSync('dd', [`if=/proc/${process.pid}/fd/${fd}`, 'iflag=nocache', 'count=0', 'status=none']);
      expect(held.map(cached)).toEqual(held.map(() => 0));
      const { child, exited } = start(64 << 20);
      child.stdin!.write(Buffer.concat(names.flatMap((n) => [Buffer.from('./hostile -rf\n/'), n, Buffer.from([0])])));
      // Each name reached the read-ahead (the kernel reads the pages when it can: some of each is enough).
      await until(() => held.every((fd) => cached(fd) > 0), 30_000);
      child.stdin!.end();
      expect(await exited).toBe(0);
      expect(execFileSync('find', [dir, '-name', 'pwned'], { encoding: 'utf8' })).toBe('');
    } finally {
      for (const fd of held) closeSync(fd);
    }
  });

  it('without python3 on the origin, reads its input to the end and exits 0', async () => {
    const bin = mkdtempSync('/var/tmp/rmm-nopython-');
    try {
      symlinkSync(execFileSync('sh', ['-c', 'command -v cat'], { encoding: 'utf8' }).trim(), path.join(bin, 'cat'));
      const { child, exited } = start(0, { PATH: bin });
      child.stdin!.end(randomBytes(1 << 20));
      expect(await exited).toBe(0);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
