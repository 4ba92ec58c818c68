import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
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

/** Reads `-f` arguments: a file, `-` for stdin, or a directory (its *.yaml and *.yml files, sorted). */
export async function readSources(args: readonly string[], stdin: () => Promise<Buffer> = readStdin): Promise<ReadResult> {
  const files: SourceFile[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const arg of args) {
    if (arg === '-') {
      addFile(files, diagnostics, '<stdin>', process.cwd(), await stdin());
      continue;
    }
    await readPath(arg, files, diagnostics);
  }
  return { files, diagnostics };
}

function readError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return code ?? String(err);
}

async function readPath(arg: string, files: SourceFile[], diagnostics: Diagnostic[]): Promise<void> {
  let names: string[];
  try {
    if (!(await stat(arg)).isDirectory()) return await readOne(arg, files, diagnostics);
    names = (await readdir(arg)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (err) {
    diagnostics.push(fileProblem(arg, `cannot read: ${readError(err)}`));
    return;
  }
  if (names.length === 0) diagnostics.push(fileProblem(arg, 'the directory holds no *.yaml files'));
  for (const n of names) await readOne(path.join(arg, n), files, diagnostics);
}

async function readOne(name: string, files: SourceFile[], diagnostics: Diagnostic[]): Promise<void> {
  try {
    const info = await stat(name);
    if (info.size > MAX_FILE_BYTES) {
      diagnostics.push(fileProblem(name, `the file is ${info.size} bytes; the limit is ${MAX_FILE_BYTES} bytes`));
      return;
    }
    addFile(files, diagnostics, name, path.dirname(path.resolve(name)), await readFile(name));
  } catch (err) {
    diagnostics.push(fileProblem(name, `cannot read: ${readError(err)}`));
  }
}

function addFile(files: SourceFile[], diagnostics: Diagnostic[], name: string, baseDir: string, bytes: Buffer): void {
  if (bytes.length > MAX_FILE_BYTES) {
    diagnostics.push(fileProblem(name, `the input is ${bytes.length} bytes; the limit is ${MAX_FILE_BYTES} bytes`));
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

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > MAX_FILE_BYTES) {
      chunks.push(buf);
      break;
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
