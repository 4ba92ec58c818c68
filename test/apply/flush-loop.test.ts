import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { FLUSH_LOOP } from '../../src/sync/copy.js';
import { withLifeline } from '../../src/transport/lifeline.js';

let dir: string | undefined;
let sleeper: number | undefined;
afterEach(async () => {
  if (sleeper) process.kill(sleeper);
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = sleeper = undefined;
});

// The target's /bin/sh is dash on Debian, bash on others.
const shells = ['sh', 'dash', 'bash'].filter((s) => existsSync(`/bin/${s}`));
const realSleep = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p))!;

describe('the flush loop beside a first copy', () => {
  // A remote command's channel closes when every process holding its output has ended, so a sleep
  // holding it would keep the end of the copy waiting until it woke.
  it.each(shells)('writes out what is left and ends as soon as its stdin closes, mid-sleep, under %s', async (shell) => {
    dir = await mkdtemp(join(tmpdir(), 'rmm-flush-'));
    const pidFile = join(dir, 'sleep.pid');
    // A sleep that leaves its pid and would outlast the test; a sync that says what it was asked.
    await writeFile(join(dir, 'sleep'), `#!/bin/sh\necho $$ > '${pidFile}'\nexec ${realSleep} 60\n`);
    await writeFile(join(dir, 'sync'), `#!/bin/sh\necho "$@" >> '${join(dir, 'synced')}'\n`);
    await chmod(join(dir, 'sleep'), 0o755);
    await chmod(join(dir, 'sync'), 0o755);
    const [cmd, ...args] = withLifeline([shell, '-c', FLUSH_LOOP, 'rmm-flush', dir]);
    const child = spawn(cmd!, args, { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    while (!(sleeper = Number(await readFile(pidFile, 'utf8').catch(() => '')))) await sleep(10);
    const closed = once(child, 'close');
    child.stdin.end();
    const [code] = (await closed) as [number | null];
    expect(code).toBe(0);
    expect(await readFile(join(dir, 'synced'), 'utf8')).toBe(`-f -- ${dir}\n`);
    // Closed without waiting for the sleep: still running, its 60 s far from over.
    expect(() => process.kill(sleeper!, 0)).not.toThrow();
  });
});
