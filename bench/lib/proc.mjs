// Running commands: plain, or timed with /usr/bin/time (wall clock, CPU of the whole process tree, peak RSS).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Runs argv; resolves with its output and exit code; rejects on a non-zero exit unless allowFail. */
export function run(argv, { env, input, cwd, allowFail = false, timeoutMs = 3_600_000, onStdout } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env: env ?? process.env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => {
      out.push(c);
      onStdout?.(c);
    });
    child.stderr.on('data', (c) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = {
        code: code ?? 128,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      };
      if (result.code !== 0 && !allowFail) {
        const tail = (result.stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${argv.slice(0, 6).join(' ')}${argv.length > 6 ? ' …' : ''} exited ${signal ?? result.code}:\n${tail}`));
      } else resolve(result);
    });
    child.stdin.on('error', () => {}); // a command that exits without reading its input
    child.stdin.end(input ?? '');
  });
}

/**
 * Runs argv under /usr/bin/time: wall seconds (our own clock), user and system CPU seconds of the
 * process and every child it waited for, and the peak RSS (KiB) of the largest single process.
 */
export async function timed(argv, opts = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'rmm-bench-time-'));
  const file = path.join(dir, 'time');
  try {
    const res = await run(['/usr/bin/time', '-o', file, '-f', '%U %S %M', ...argv], opts);
    const [user, sys, rss] = readFileSync(file, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    return { ...res, wall: res.seconds, cpuUser: user, cpuSys: sys, maxRssKb: rss };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Flushes dirty pages and empties the page, dentry and inode caches of the whole machine. */
export async function dropCaches() {
  await run(['sync']);
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
