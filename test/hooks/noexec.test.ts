/**
 * Uploaded hook scripts land in /run, which systemd mounts noexec: they are run by the interpreter
 * their #! line names (with its argument, as the kernel would), not executed. Needs root (a mount).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_SCRIPT } from '../../src/hooks/run.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('hook scripts on a noexec /run (needs root)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rmm-noexec-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,size=1m', 'rmm-noexec', dir]);
  });
  afterAll(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (name: string, text: string, ...args: string[]) => {
    const file = path.join(dir, name);
    writeFileSync(file, text, { mode: 0o700 });
    return spawnSync('sh', ['-c', RUN_SCRIPT, 'rmm-hook-script', file, ...args], { encoding: 'utf8' });
  };

  it('cannot be executed there, and runs through its interpreter', () => {
    const file = path.join(dir, 'direct');
    writeFileSync(file, '#!/bin/sh\necho direct\n', { mode: 0o700 });
    expect(spawnSync(file).error).toBeDefined();
    const sh = run('sh', '#!/bin/sh\necho "sh: $0 $*"\n', 'a b', 'c');
    expect(sh.status, sh.stderr).toBe(0);
    expect(sh.stdout).toBe(`sh: ${path.join(dir, 'sh')} a b c\n`);
  });

  it("passes the #! line's one argument, runs a script without one by sh, and keeps the exit status", () => {
    const strict = run('strict', '#!/bin/sh -e\nfalse\necho not reached\n');
    expect(strict.status).toBe(1);
    expect(strict.stdout).toBe('');
    const env = run('env', '#!/usr/bin/env sh\necho "env: $1"\n', 'x');
    expect(env.stdout).toBe('env: x\n');
    const bare = run('bare', 'echo bare; exit 7');
    expect(bare.stdout).toBe('bare\n');
    expect(bare.status).toBe(7);
  });
});
