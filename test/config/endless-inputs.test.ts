/**
 * Inputs that never end (devices, fifos, pipes) must be refused or cut at the size limit, never read
 * forever. The CLI tests run dist/cli/main.js (built by `npm test`), each with a hard kill after 10 s:
 * a child that had to be killed failed, whatever it printed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_FILE_BYTES, readSources } from '../../src/config/source.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');
const KILL_AFTER_MS = 10_000;
const tooLong = `the input is longer than the limit of ${MAX_FILE_BYTES} bytes`;
const notAFile = 'not a regular file but a character device; give a YAML file, a directory of them, or - for stdin';

interface Exit {
  readonly code: number | null;
  readonly killed: boolean;
  readonly stderr: string;
}

/** Runs `rmm validate -f INPUT`; `feed` may write to the child's stdin until it exits. */
function validate(input: string, stdin: 'ignore' | 'pipe' | number = 'ignore', feed?: (w: NodeJS.WritableStream) => void): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'validate', '-f', input], { stdio: [stdin, 'ignore', 'pipe'] });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, KILL_AFTER_MS);
    const err: Buffer[] = [];
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    if (feed && child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE once rmm has read enough and closed its end
      feed(child.stdin);
    }
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, killed, stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Writes to the stream for as long as it takes it. */
function endless(stream: NodeJS.WritableStream): void {
  const chunk = Buffer.alloc(64 * 1024, 'y\n');
  const pump = (): void => {
    while (stream.write(chunk));
  };
  stream.on('drain', pump);
  pump();
}

describe('rmm validate on inputs that never end', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rmm-endless-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it.each(['/dev/zero', '/dev/urandom'])('refuses -f %s before reading it', async (device) => {
    const exit = await validate(device);
    expect(exit).toEqual({ code: 2, killed: false, stderr: `${device}: ${notAFile}\n1 error; nothing was changed\n` });
  });

  it('refuses a fifo nobody writes to', async () => {
    const fifo = path.join(dir, 'estate.yaml');
    execFileSync('mkfifo', [fifo]);
    const exit = await validate(fifo);
    expect(exit).toEqual({
      code: 2,
      killed: false,
      stderr: `${fifo}: the fifo is empty and nothing writes to it; rmm reads a fifo while its writer has it open\n1 error; nothing was changed\n`,
    });
  });

  it('stops reading an endless stdin at the size limit', async () => {
    const exit = await validate('-', 'pipe', endless);
    expect(exit).toEqual({ code: 2, killed: false, stderr: `<stdin>: ${tooLong}\n1 error; nothing was changed\n` });
  });

  it('stops reading a device given as stdin at the size limit', async () => {
    const zero = openSync('/dev/zero', 'r');
    try {
      const exit = await validate('-', zero);
      expect(exit).toEqual({ code: 2, killed: false, stderr: `<stdin>: ${tooLong}\n1 error; nothing was changed\n` });
    } finally {
      closeSync(zero);
    }
  });
});

describe('the read deadline', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rmm-deadline-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('ends a stdin whose writer neither writes nor closes', async () => {
    const { files, diagnostics } = await readSources(['-'], { stdin: new PassThrough(), deadlineMs: 100 });
    expect(files).toEqual([]);
    expect(diagnostics.map((d) => `${d.file}: ${d.message}`)).toEqual([
      '<stdin>: the input did not end within 0.1 s (0 bytes so far); a pipe or fifo must deliver the whole configuration and close by then',
    ]);
  });

  it('ends a fifo whose writer stops writing without closing it', async () => {
    const fifo = path.join(dir, 'estate.yaml');
    execFileSync('mkfifo', [fifo]);
    // Read-write, so that opening does not wait for a reader; this descriptor is the writer that never closes.
    const writer = openSync(fifo, constants.O_RDWR);
    try {
      writeSync(writer, 'apiVersion: rmm/v1\n');
      const { files, diagnostics } = await readSources([fifo], { deadlineMs: 100 });
      expect(files).toEqual([]);
      expect(diagnostics.map((d) => d.message)).toEqual([
        'the input did not end within 0.1 s (19 bytes so far); a pipe or fifo must deliver the whole configuration and close by then',
      ]);
    } finally {
      closeSync(writer);
    }
  });

  it('does not apply to a terminal, where a person ends the input', async () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true });
    const read = readSources(['-'], { stdin: terminal, deadlineMs: 1 });
    setTimeout(() => terminal.end('apiVersion: rmm/v1\n'), 50);
    const { files, diagnostics } = await read;
    expect(diagnostics).toEqual([]);
    expect(files.map((f) => f.text)).toEqual(['apiVersion: rmm/v1\n']);
  });
});
