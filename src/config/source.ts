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
    let info;
    try {
      info = await stat(arg);
    } catch (err) {
      diagnostics.push(fileProblem(arg, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`));
      continue;
    }
    if (info.isDirectory()) {
      const names = (await readdir(arg)).filter((n) => /\.ya?ml$/.test(n)).sort();
      if (names.length === 0) diagnostics.push(fileProblem(arg, 'the directory holds no *.yaml files'));
      for (const n of names) await readOne(path.join(arg, n), files, diagnostics);
    } else {
      await readOne(arg, files, diagnostics);
    }
  }
  return { files, diagnostics };
}

async function readOne(name: string, files: SourceFile[], diagnostics: Diagnostic[]): Promise<void> {
  const info = await stat(name);
  if (info.size > MAX_FILE_BYTES) {
    diagnostics.push(fileProblem(name, `the file is ${info.size} bytes; the limit is ${MAX_FILE_BYTES} bytes`));
    return;
  }
  addFile(files, diagnostics, name, path.dirname(path.resolve(name)), await readFile(name));
}

function addFile(files: SourceFile[], diagnostics: Diagnostic[], name: string, baseDir: string, bytes: Buffer): void {
  if (bytes.length > MAX_FILE_BYTES) {
    diagnostics.push(fileProblem(name, `the input is ${bytes.length} bytes; the limit is ${MAX_FILE_BYTES} bytes`));
    return;
  }
  const problem = binaryProblem(bytes);
  if (problem) {
    diagnostics.push(fileProblem(name, problem));
    return;
  }
  files.push({ name, baseDir, text: bytes.toString('utf8').replace(/^\uFEFF/, '') });
}

function binaryProblem(bytes: Buffer): string | undefined {
  const nul = bytes.indexOf(0);
  if (nul !== -1) return `the file is binary, not YAML (a NUL byte at offset ${nul})`;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return 'the file is not valid UTF-8 text';
  }
  return undefined;
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
