import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FLUSH_LOOP } from '../../src/apply/replicate.js';
import { withLifeline } from '../../src/transport/lifeline.js';

let dir: string | undefined;
afterEach(async () => dir && rm(dir, { recursive: true, force: true }));

/** Whether a process is alive: it exists and is not a zombie waiting to be reaped. */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
}

describe('the flush loop beside a first copy', () => {
  // The channel of a remote command closes when every process holding its output has ended, so a
  // sleep left running after the loop would hold the end of the copy until it woke.
  it('ends with its sleep as soon as its stdin closes, mid-sleep', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rmm-flush-'));
    // A sleep that says when it starts, leaves its pid, and would outlast the test.
    await writeFile(join(dir, 'sleep'), `#!/bin/sh\necho $$ > '${dir}/sleep.pid'\necho sleeping >&2\nexec /bin/sleep 60\n`);
    await chmod(join(dir, 'sleep'), 0o755);
    const [cmd, ...args] = withLifeline(['sh', '-c', FLUSH_LOOP, 'rmm-flush', dir]);
    const child = spawn(cmd!, args, { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.resume();
    const [first] = (await once(child.stderr, 'data')) as [Buffer];
    expect(first.toString()).toContain('sleeping');
    child.stderr.resume();
    const closed = once(child, 'close');
    child.stdin.end();
    const [code] = (await closed) as [number | null];
    expect(code).toBe(0);
    expect(await running(Number(await readFile(join(dir, 'sleep.pid'), 'utf8')))).toBe(false);
  });
});
