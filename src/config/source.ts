import { constants, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Diagnostic } from './diagnostics.js';

/** The raw text of one configuration file. */
export interface SourceFile {
  /** As the user named it (relative paths stay relative, so messages match what they typed). */
  readonly name: string;
  /** Directory that relative paths inside the file resolve against. */
  readonly baseDir: string;
  readonly text: string;
}

/** Far above any real estate (2,000 origins is ~300 KiB), low enough to refuse a wrong file quickly. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

export interface ReadResult {
  readonly files: SourceFile[];
  readonly diagnostics: Diagnostic[];
}

/**
 * How long a pipe or fifo may take to deliver the whole configuration and close. Long enough for a
 * generator that decrypts through a KMS or renders templates (`sops -d … | rmm plan -f -`), short
 * enough that a stuck writer fails a cron run instead of hanging it. A terminal has no deadline:
 * whoever types there ends the input with Ctrl-D or stops rmm with Ctrl-C.
 */
export const READ_DEADLINE_MS = 30_000;

export interface ReadOptions {
  /** What `-` reads: the process's stdin unless a test gives another stream. */
  readonly stdin?: Readable;
  readonly deadlineMs?: number;
}

/** Reads `-f` arguments: a file, `-` for stdin, or a directory (its *.yaml and *.yml files, sorted). */
export async function readSources(args: readonly string[], options: ReadOptions = {}): Promise<ReadResult> {
  const deadlineMs = options.deadlineMs ?? READ_DEADLINE_MS;
  const files: SourceFile[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const arg of args) {
    if (arg === '-') {
      const stdin = options.stdin ?? process.stdin;
      try {
        addFile(files, diagnostics, '<stdin>', process.cwd(), await readStream(stdin, isTerminal(stdin) ? undefined : deadlineMs));
      } catch (err) {
        diagnostics.push(fileProblem('<stdin>', problemText(err)));
      }
      continue;
    }
    await readPath(arg, deadlineMs, files, diagnostics);
  }
  return { files, diagnostics };
}

/** A problem with the input itself, worded for the user; other errors are the system's (ENOENT, EACCES). */
class SourceProblem extends Error {}

function problemText(err: unknown): string {
  return err instanceof SourceProblem ? err.message : `cannot read: ${readError(err)}`;
}

function readError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return code ?? String(err);
}

async function readPath(arg: string, deadlineMs: number, files: SourceFile[], diagnostics: Diagnostic[]): Promise<void> {
  let names: string[];
  try {
    if (!(await stat(arg)).isDirectory()) return await readOne(arg, deadlineMs, files, diagnostics);
    names = (await readdir(arg)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (err) {
    diagnostics.push(fileProblem(arg, `cannot read: ${readError(err)}`));
    return;
  }
  if (names.length === 0) diagnostics.push(fileProblem(arg, 'the directory holds no *.yaml files'));
  for (const n of names) await readOne(path.join(arg, n), deadlineMs, files, diagnostics);
}

async function readOne(name: string, deadlineMs: number, files: SourceFile[], diagnostics: Diagnostic[]): Promise<void> {
  try {
    addFile(files, diagnostics, name, path.dirname(path.resolve(name)), await readLimited(name, deadlineMs));
  } catch (err) {
    diagnostics.push(fileProblem(name, problemText(err)));
  }
}

/**
 * Reads a regular file or a fifo (a named pipe, or `<(command)`), stopping one byte past the limit.
 * Devices are refused before they are opened: stat() says 0 bytes for /dev/zero, which never ends,
 * and opening some devices acts on them (a watchdog arms, a tape rewinds).
 */
async function readLimited(name: string, deadlineMs: number): Promise<Buffer> {
  notAFile(await stat(name));
  // Non-blocking, so that opening a fifo nobody writes to returns at once instead of waiting for a writer.
  const file = await open(name, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await file.stat();
    notAFile(info); // the path may have been replaced since the stat() above
    if (info.isFile() && info.size > MAX_FILE_BYTES)
      throw new SourceProblem(`the file is ${info.size} bytes; the limit is ${MAX_FILE_BYTES} bytes`);
    const bytes = await readFd(file, deadlineMs);
    // A fifo gives end-of-file at once when no writer has it open; rmm does not wait for one to come.
    if (info.isFIFO() && bytes.length === 0)
      throw new SourceProblem('the fifo is empty and nothing writes to it; rmm reads a fifo while its writer has it open');
    return bytes;
  } finally {
    await file.close();
  }
}

function notAFile(info: Stats): void {
  const kind = info.isCharacterDevice() ? 'a character device' : info.isBlockDevice() ? 'a block device' : info.isSocket() ? 'a socket' : undefined;
  if (kind) throw new SourceProblem(`not a regular file but ${kind}; give a YAML file, a directory of them, or - for stdin`);
}

/** Reads until end-of-file or one byte past the limit; a fifo with nothing to read yet is polled until the deadline. */
async function readFd(file: FileHandle, deadlineMs: number): Promise<Buffer> {
  const deadline = Date.now() + deadlineMs;
  const chunks: Buffer[] = [];
  let total = 0;
  while (total <= MAX_FILE_BYTES) {
    const buffer = Buffer.alloc(Math.min(64 * 1024, MAX_FILE_BYTES + 1 - total));
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(buffer, 0, buffer.length, null));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      if (Date.now() >= deadline) throw deadlineProblem(deadlineMs, total);
      await delay(20);
      continue;
    }
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks);
}

/** Reads a stream until it ends or one byte past the limit, then lets it go so that rmm can exit. */
function readStream(stream: Readable, deadlineMs: number | undefined): Promise<Buffer> {
  if (stream.destroyed || stream.readableEnded) return Promise.resolve(Buffer.alloc(0)); // `-` given twice
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      stream.off('data', onData).off('end', finish).off('error', finish);
      stream.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total > MAX_FILE_BYTES) finish();
    };
    const timer = deadlineMs === undefined ? undefined : setTimeout(() => finish(deadlineProblem(deadlineMs, total)), deadlineMs);
    stream.on('data', onData).once('end', finish).once('error', finish);
  });
}

function deadlineProblem(deadlineMs: number, bytesSoFar: number): SourceProblem {
  return new SourceProblem(
    `the input did not end within ${deadlineMs / 1000} s (${bytesSoFar} bytes so far); a pipe or fifo must deliver the whole configuration and close by then`,
  );
}

function isTerminal(stream: Readable): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

function addFile(files: SourceFile[], diagnostics: Diagnostic[], name: string, baseDir: string, bytes: Buffer): void {
  if (bytes.length > MAX_FILE_BYTES) {
    diagnostics.push(fileProblem(name, `the input is longer than the limit of ${MAX_FILE_BYTES} bytes`));
    return;
  }
  const problem = binaryProblem(name, bytes);
  if (problem) {
    diagnostics.push(problem);
    return;
  }
  files.push({ name, baseDir, text: bytes.toString('utf8').replace(/^\uFEFF/, '') });
}

function binaryProblem(name: string, bytes: Buffer): Diagnostic | undefined {
  const nul = bytes.indexOf(0);
  if (nul !== -1) return fileProblem(name, `the file is binary, not YAML (a NUL byte at offset ${nul})`);
  const bad = firstInvalidUtf8(bytes);
  if (bad === undefined) return undefined;
  const lineStart = bad === 0 ? 0 : bytes.lastIndexOf(0x0a, bad - 1) + 1;
  const line = countNewlines(bytes, bad) + 1;
  const column = bytes.subarray(lineStart, bad).toString('utf8').length + 1;
  const byte = `0x${bytes[bad]!.toString(16).padStart(2, '0')}`;
  return { ...fileProblem(name, `the file is not UTF-8 text: byte ${byte} is not valid UTF-8 (save the file as UTF-8)`), line, column };
}

/** The offset of the first byte that is not part of valid UTF-8, if any. */
function firstInvalidUtf8(bytes: Buffer): number | undefined {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return undefined;
  } catch {
    // Decoded leniently, every invalid sequence becomes U+FFFD; a real U+FFFD in the file is the bytes EF BF BD.
    const text = bytes.toString('utf8');
    for (let i = text.indexOf('\uFFFD'); i !== -1; i = text.indexOf('\uFFFD', i + 1)) {
      const offset = Buffer.byteLength(text.slice(0, i));
      if (bytes[offset] !== 0xef || bytes[offset + 1] !== 0xbf || bytes[offset + 2] !== 0xbd) return offset;
    }
    return 0;
  }
}

function countNewlines(bytes: Buffer, end: number): number {
  let n = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < end; i = bytes.indexOf(0x0a, i + 1)) n++;
  return n;
}

function fileProblem(file: string, message: string): Diagnostic {
  return { file, line: 0, column: 0, field: '', message, severity: 'error' };
}
