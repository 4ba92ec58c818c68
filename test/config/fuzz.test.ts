/**
 * A fuzz run over the configuration loader (issue 25): mutations of the examples and fixtures must
 * only ever yield a valid spec or a clean error, never a crash or a hang. That holds for alias bombs,
 * huge and deeply nested documents, duplicate keys and bytes that are not UTF-8.
 *
 * Each case goes the way `rmm validate` goes, in process: its files are written to a temporary folder,
 * read back by readSources (the byte path: size limit, NUL bytes, invalid UTF-8) and loaded by
 * loadSources. The oracle:
 *   - nothing is thrown (loadSources reports problems as diagnostics; an InputError with a message
 *     would still be a clean error, anything else is a crash);
 *   - either a spec comes back with no error diagnostic, or no spec and at least one error;
 *   - every diagnostic has a non-empty message and names one of the case's files, at a line and
 *     column inside that file's text (line 0 for the whole file);
 *   - the case takes less than CASE_BUDGET_MS.
 * A loader that loops synchronously cannot be stopped by a timer in its own process, so the most
 * dangerous inputs also run as `node dist/cli/main.js validate -f FILE` with a hard kill.
 *
 * Every case follows from (seed, index) alone. Environment:
 *   RMM_FUZZ_SEED   the seed (default 20250625)
 *   RMM_FUZZ_CASES  how many cases (default 3000)
 *   RMM_FUZZ_CASE   run this one case index only (to reproduce a failure)
 *   RMM_FUZZ_SAVE=1 write each failing input to test/fixtures/fuzz/SEED-INDEX.yaml (or a folder
 *                   SEED-INDEX/ for a case of several files), so that it is replayed on every run;
 *                   RMM_FUZZ_SAVE=DIR writes them into DIR instead, to look at them first.
 * Every file and folder in test/fixtures/fuzz/ is replayed through the same oracle (see its README.txt).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatDiagnostic, type Diagnostic } from '../../src/config/diagnostics.js';
import { loadSources } from '../../src/config/load.js';
import { readSources } from '../../src/config/source.js';
import { InputError } from '../../src/errors.js';

const root = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(root, 'test/fixtures');
const savedDir = path.join(fixtures, 'fuzz');
/** What the child processes run; RMM_FUZZ_CLI names another build of it. */
const cli = process.env.RMM_FUZZ_CLI ?? path.join(root, 'dist/cli/main.js');

const SEED = envInt('RMM_FUZZ_SEED', 20250625);
const CASES = envInt('RMM_FUZZ_CASES', 3000);
const ONLY = process.env.RMM_FUZZ_CASE === undefined ? undefined : envInt('RMM_FUZZ_CASE', 0);
/** RMM_FUZZ_SAVE=1 saves failing inputs into test/fixtures/fuzz; any other value names a folder to save them in. */
const SAVE_TO = process.env.RMM_FUZZ_SAVE === '1' ? savedDir : process.env.RMM_FUZZ_SAVE || undefined;
/** A case slower than this is taken for a hang: far above any real estate file. */
const CASE_BUDGET_MS = 2000;
/**
 * A mutation that would make a file larger is skipped: in process, cases stay small enough to run a few
 * thousand quickly and far inside the budget; the inputs of megabytes run in child processes, below.
 */
const MAX_CASE_BYTES = 64 * 1024;
/** The child processes are killed after this; a child that had to be killed failed. */
const KILL_AFTER_MS = 20_000;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number, not '${raw}'`);
  return n;
}

// ---------------------------------------------------------------------------------------------------
// Randomness: every case has its own generator, seeded from (seed, index).

type Rng = () => number;

function mulberry32(a: number): Rng {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function caseRng(seed: number, index: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ index;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return mulberry32(h ^ (h >>> 16));
}

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const between = (rng: Rng, lo: number, hi: number): number => lo + int(rng, hi - lo + 1);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)]!;

// ---------------------------------------------------------------------------------------------------
// The corpus. Mutations work on "byte strings": a Buffer read as latin1, one character per byte, so
// that any byte survives the round trip; text to insert is UTF-8 encoded first (see bytes()).

interface InputFile {
  readonly name: string;
  readonly data: string;
}
interface Sample {
  readonly label: string;
  readonly group: 'examples' | 'estate-split' | 'invalid';
  readonly files: readonly InputFile[];
}

const asBytes = (buffer: Buffer): string => buffer.toString('latin1');
/** UTF-8 text as a byte string. */
const bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

function readSample(label: string, group: Sample['group'], dir: string, names: readonly string[]): Sample {
  return { label, group, files: names.map((name) => ({ name, data: asBytes(readFileSync(path.join(dir, name))) })) };
}

function loadCorpus(): Sample[] {
  const examplesDir = path.join(root, 'examples');
  const splitDir = path.join(fixtures, 'estate-split');
  const invalidDir = path.join(fixtures, 'invalid');
  const examples = readdirSync(examplesDir).filter((n) => n.endsWith('.yaml')).sort();
  const split = readdirSync(splitDir).filter((n) => /\.ya?ml$/.test(n)).sort();
  // Every third invalid fixture: each kind of mistake the loader already knows, without weighing the corpus down.
  const invalid = readdirSync(invalidDir).filter((n) => n.endsWith('.yaml')).sort().filter((_, i) => i % 3 === 0);
  return [
    ...examples.map((n) => readSample(`examples/${n}`, 'examples', examplesDir, [n])),
    readSample('test/fixtures/estate-split', 'estate-split', splitDir, split),
    ...invalid.map((n) => readSample(`test/fixtures/invalid/${n}`, 'invalid', invalidDir, [n])),
  ];
}

/** Mostly the examples and the split estate, which are valid: their mutations reach furthest into the loader. */
function pickSample(rng: Rng, corpus: readonly Sample[]): Sample {
  const r = rng();
  const group: Sample['group'] = r < 0.45 ? 'examples' : r < 0.65 ? 'estate-split' : 'invalid';
  return pick(rng, corpus.filter((s) => s.group === group));
}

// ---------------------------------------------------------------------------------------------------
// Mutations.

/** What the mutations may reach for besides the sample itself: other samples, to splice documents in. */
interface Context {
  readonly corpus: readonly Sample[];
}
type Mutation = (rng: Rng, data: string, ctx: Context) => string;

const BYTE_PALETTE: readonly string[] = [
  '\x00', '\xff', '\xfe', '\xc3', '\xc0\xaf', '\xe2\x82', '\xed\xa0\x80', '\xf4\x90\x80\x80', '\xf8\x88\x80\x80\x80', '\x80',
  '\t', '\r', '\r\n', '\n', '\x0b', '\x0c', '\x1b[31m', '\x7f', '\x01', '\x85',
  bytes('\uFEFF'), bytes('\uFFFD'), bytes('\u2028'), bytes('\u00e9'), bytes('\u{1F4A5}'), bytes('\u202e'),
  ':', ': ', '-', '- ', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', "'", '"', '#', '%', '@', '`', '?', '\\', ' ',
];

const NEAR_API_VERSIONS = ['rmm/v2', 'rmm/V1', 'Rmm/v1', 'rmm/v1 ', '"rmm/v1"', "'rmm/v1'", bytes('rmm/v1\u200b'), 'rmm', 'v1', '', '~', 'rmm/v1beta1', 'rmm/v1/', '[rmm/v1]', '{v: 1}', '1', 'rmm/v0', 'rmm /v1'];
const NEAR_KINDS = ['origin', 'Origins', 'Orign', 'ORIGIN', 'Replica ', 'Replicas', 'Environement', 'Polcy', 'Default', 'Defaults', 'Origin', 'Environment', 'Policy', 'Replica', '', '~', '"Origin"', '!!str Origin', '[Origin]', 'kind', '1'];

/** A value of another type than the one usually there. */
function randomValue(rng: Rng): string {
  switch (int(rng, 12)) {
    case 0:
      return pick(rng, ['0', '-1', '42', '3.14', '1e400', '-.inf', '.nan', '0x1F', '0o17', '99999999999999999999999', '1_000', '-0', '1e-400']);
    case 1:
      return pick(rng, ['true', 'False', 'yes', 'null', '~', '', "''", '""', 'NULL']);
    case 2:
      return pick(rng, ['[]', '[a, 1, null]', '[[]]', '[{a: b}]', '[/tmp/*, /var/tmp/*]', '[web-01, web-01]', '[10.0.0.1, ::1]']);
    case 3:
      return pick(rng, ['{}', '{a: 1}', '{name: x}', '{interval: 30m}', '{from: 10.0.0.0/8, to: 10.0.0.0/16}', '{? a}']);
    case 4: {
      const long = pick(rng, ['x', 'ab-', ' ', bytes('\u00e9')]).repeat(between(rng, 64, 20_000));
      return pick(rng, [long, `"${long}"`, `'${long}'`]);
    }
    case 5:
      return pick(rng, ['"\\x01\\u0000\\t\\x1b[0m"', '"a\\nb"', '"\\uD800"', "'tab\there'", '"\\e\\a\\0"', '"line\\u2028sep"', '"\\U0001F4A5"', bytes('"\u0007bell"')]);
    case 6:
      return pick(rng, ['!!binary aGVsbG8=', '!!timestamp 2001-12-14', '!custom x', '*nope', '&anchor x', '!!set {a, b}', '!!omap [{a: 1}]', '!!int x', '!!float abc', '!<tag:yaml.org,2002:str> x', '!!map []']);
    case 7:
      return pick(rng, ['|', '>-', '|\n  multi\n  line', '"unterminated', "'", '{', '[', '? x', ': x', '@x', '`x', '%x', '- x', '--- x', '# only a comment']);
    case 8:
      return pick(rng, [bytes('w\u00e9b-01'), bytes('\u202eweb'), bytes('web\u2028x'), bytes('\u{1F4A5}'), 'Web_01', '-x', 'a'.repeat(64), 'a'.repeat(253), '$(reboot)', '`id`', 'web\\n01']);
    case 9:
      return pick(rng, ['/', '/srv/../../etc', '../x', '~/x', '/dev/zero', '/etc', '/srv/replicas/', '//srv//replicas', 'relative/path', '/srv/a\\nb']);
    case 10:
      return pick(rng, ['0s', '-5m', '1h', '999999999999h', '1.5h', '200MiB/s', '1e9GiB/s', '0B/s', '30', 'P1D', '1h30m']);
    default:
      return pick(rng, ['300.1.1.1', '::1', '10.0.0.0/33', '::/0', '10.0.0.1/24', '* * * * *', '0 0 31 2 *', '*/0 * * * *', '60 * * * *', 'Mars/Olympus', 'UTC', 'lvm', 'none', 'disks', 'directory']);
  }
}

function lines(data: string): string[] {
  return data.split('\n');
}

/** Indices of lines holding `key: value` or `- value`, and where their value starts. */
function valueLines(data: string): { lines: string[]; spots: { line: number; at: number }[] } {
  const all = lines(data);
  const spots: { line: number; at: number }[] = [];
  all.forEach((l, i) => {
    const m = /^(\s*(?:-\s+)?[^\s#:'"][^:#]*:[ \t]+|\s*-\s+)(?=[^\s#])/.exec(l);
    if (m) spots.push({ line: i, at: m[0].length });
  });
  return { lines: all, spots };
}

function replaceValue(data: string, rng: Rng, make: (old: string) => string): string {
  const { lines: all, spots } = valueLines(data);
  if (spots.length === 0) return data;
  const { line, at } = pick(rng, spots);
  const text = all[line]!;
  all[line] = text.slice(0, at) + make(text.slice(at));
  return all.join('\n');
}

function keyLines(data: string): { lines: string[]; keys: { line: number; indent: string }[] } {
  const all = lines(data);
  const keys: { line: number; indent: string }[] = [];
  all.forEach((l, i) => {
    const m = /^( *)[A-Za-z][\w.-]*:(\s|$)/.exec(l);
    if (m) keys.push({ line: i, indent: m[1]! });
  });
  return { lines: all, keys };
}

/** Inserts lines before a `key:` line, at its indentation, so that they join its mapping. */
function insertAtKey(data: string, rng: Rng, block: (indent: string) => string[]): string {
  const { lines: all, keys } = keyLines(data);
  if (keys.length === 0) return [...block(''), data].join('\n');
  const { line, indent } = pick(rng, keys);
  all.splice(line, 0, ...block(indent));
  return all.join('\n');
}

function billionLaughs(rng: Rng, indent: string): string[] {
  const levels = between(rng, 3, 12);
  const width = between(rng, 2, 10);
  const out = [`${indent}lol0: &lol0 ${pick(rng, ['lol', '"lol"', '[lol]', '{a: lol}'])}`];
  for (let i = 1; i < levels; i++) out.push(`${indent}lol${i}: &lol${i} [${Array(width).fill(`*lol${i - 1}`).join(', ')}]`);
  return out;
}

/** Flow-style aliases, in one value: a nested bomb, one anchor used very often, or many small anchors. */
function aliasFlow(rng: Rng): string {
  switch (int(rng, 4)) {
    case 0: {
      let value = '&n0 [lol]';
      for (let i = 1, levels = between(rng, 3, 30); i < levels; i++) value = `&n${i} [${value}, ${Array(between(rng, 1, 6)).fill(`*n${i - 1}`).join(', ')}]`;
      return value;
    }
    case 1:
      return `[&one x, ${Array(between(rng, 50, 3000)).fill('*one').join(', ')}]`;
    case 2:
      return `[${Array.from({ length: between(rng, 10, 800) }, (_, i) => `&a${i} x${i}, *a${i}`).join(', ')}]`;
    default:
      return `[&c0 x, ${Array.from({ length: between(rng, 10, 500) }, (_, i) => `&c${i + 1} [*c${i}]`).join(', ')}]`;
  }
}

function deepValue(rng: Rng, inner: string): string {
  const n = pick(rng, [63, 64, 65, 100, 1000, 5000, 12_000]);
  const closed = rng() < 0.7;
  if (rng() < 0.5) return '['.repeat(n) + inner + (closed ? ']'.repeat(n) : '');
  return '{a: '.repeat(n) + inner + (closed ? '}'.repeat(n) : '');
}

function deepBlock(rng: Rng, indent: string): string[] {
  const n = pick(rng, [63, 64, 65, 100, 300]);
  const seq = rng() < 0.5;
  return Array.from({ length: n }, (_, i) => `${indent}${' '.repeat(i)}${seq ? '- ' : `k${i}:`}`).concat(`${indent}${' '.repeat(n)}x`);
}

function documentsOf(data: string): string[] {
  return data.split(/^---[^\n]*$/m);
}

const MUTATIONS: Readonly<Record<string, Mutation>> = {
  flipByte(rng, data) {
    if (data.length === 0) return data;
    const at = int(rng, data.length);
    const byte = rng() < 0.5 ? String.fromCharCode(int(rng, 256)) : String.fromCharCode(data.charCodeAt(at) ^ (1 << int(rng, 8)));
    return data.slice(0, at) + byte + data.slice(at + 1);
  },
  insertBytes(rng, data) {
    const at = int(rng, data.length + 1);
    return data.slice(0, at) + pick(rng, BYTE_PALETTE) + data.slice(at);
  },
  deleteBytes(rng, data) {
    const at = int(rng, data.length + 1);
    return data.slice(0, at) + data.slice(at + between(rng, 1, 16));
  },
  truncate(rng, data) {
    return data.slice(0, int(rng, data.length + 1));
  },
  duplicateLine(rng, data) {
    const all = lines(data);
    const i = int(rng, all.length);
    all.splice(between(rng, 0, all.length), 0, all[i]!);
    return all.join('\n');
  },
  swapLines(rng, data) {
    const all = lines(data);
    const [i, j] = [int(rng, all.length), int(rng, all.length)];
    [all[i], all[j]] = [all[j]!, all[i]!];
    return all.join('\n');
  },
  indentLine(rng, data) {
    const all = lines(data);
    const i = int(rng, all.length);
    all[i] = pick(rng, [' ', '  ', '    ', '\t', ' \t']) + all[i]!;
    return all.join('\n');
  },
  dedentLine(rng, data) {
    const all = lines(data);
    const i = int(rng, all.length);
    all[i] = all[i]!.replace(new RegExp(`^ {1,${between(rng, 1, 4)}}`), '');
    return all.join('\n');
  },
  replaceScalar(rng, data) {
    return replaceValue(data, rng, () => bytes(randomValue(rng)));
  },
  duplicateKey(rng, data) {
    const { lines: all, keys } = keyLines(data);
    if (keys.length === 0) return data;
    const { line, indent } = pick(rng, keys);
    const key = /^ *([^:]*):/.exec(all[line]!)![1]!;
    const copy = rng() < 0.5 ? all[line]! : `${indent}${key}: ${bytes(randomValue(rng))}`;
    // Right after the line, or after its block, or later in the same document.
    const at = rng() < 0.5 ? line + 1 : between(rng, line + 1, all.length);
    all.splice(at, 0, copy);
    return all.join('\n');
  },
  anchorAlias(rng, data) {
    const { lines: all, spots } = valueLines(data);
    if (spots.length < 2) return data;
    let [a, b] = [pick(rng, spots), pick(rng, spots)];
    if (a.line > b.line && rng() < 0.7) [a, b] = [b, a]; // sometimes the alias comes first
    const name = pick(rng, ['a', 'x1', 'anchor', bytes('\u00e9'), 'a-b.c']);
    all[a.line] = `${all[a.line]!.slice(0, a.at)}&${name} ${all[a.line]!.slice(a.at)}`;
    if (b.line !== a.line) all[b.line] = `${all[b.line]!.slice(0, b.at)}*${name}`;
    return all.join('\n');
  },
  aliasBomb(rng, data) {
    if (rng() < 0.4) return insertAtKey(data, rng, (indent) => billionLaughs(rng, indent));
    return replaceValue(data, rng, () => aliasFlow(rng));
  },
  deepNesting(rng, data) {
    if (rng() < 0.3) return insertAtKey(data, rng, (indent) => [`${indent}deep:`, ...deepBlock(rng, `${indent}  `)]);
    return replaceValue(data, rng, (old) => deepValue(rng, old));
  },
  nearMissHeader(rng, data) {
    const field = rng() < 0.5 ? 'apiVersion' : 'kind';
    const all = lines(data);
    const found = all.flatMap((l, i) => (l.startsWith(`${field}:`) ? [i] : []));
    if (found.length === 0) return data;
    const i = pick(rng, found);
    all[i] = rng() < 0.1 ? `${field}:` : `${field}: ${pick(rng, field === 'kind' ? NEAR_KINDS : NEAR_API_VERSIONS)}`;
    return all.join('\n');
  },
  spliceDocuments(rng, data, ctx) {
    const other = pick(rng, pick(rng, ctx.corpus).files).data;
    const piece = pick(rng, documentsOf(other));
    const docs = documentsOf(data);
    if (rng() < 0.3) return data + (rng() < 0.5 ? '\n' : '') + piece; // no separator: two documents run together
    docs.splice(between(rng, 0, docs.length), rng() < 0.3 ? 1 : 0, piece);
    return docs.join('---\n');
  },
  insertSeparator(rng, data) {
    const all = lines(data);
    all.splice(between(rng, 0, all.length), 0, pick(rng, ['---', '...', '--- !!map', '%YAML 1.2\n---', '%YAML 1.1\n%TAG ! tag:x,2000:\n---', '--- |', '---#', '--- >\n  x', '---\n---', '--- &a', '--- *a']));
    return all.join('\n');
  },
  huge(rng, data) {
    switch (int(rng, 5)) {
      case 0: // the file many times over: many documents, duplicate names
        return Array(Math.max(2, Math.min(between(rng, 5, 40), Math.floor(MAX_CASE_BYTES / (data.length + 5))))).fill(data).join('\n---\n');
      case 1: // a mapping with many keys (labels is the one free-form mapping), up to past the limit
        return insertAtKey(data, rng, (indent) => [
          `${indent}labels:`,
          ...Array.from({ length: between(rng, 100, 1100) }, (_, i) => `${indent}  k${i}: v${i}`),
        ]);
      case 2: // a very long line
        return replaceValue(data, rng, () => 'x'.repeat(between(rng, 10_000, 60_000)));
      case 3: // a long list, up to past the limits
        return replaceValue(data, rng, () => `[${Array(pick(rng, [999, 1001, 10_001, 20_000])).fill(pick(rng, ['x', '1', '/m', '[]'])).join(',')}]`);
      default: // many empty documents
        return '---\n'.repeat(between(rng, 100, 12_000)) + data;
    }
  },
};

const MUTATION_NAMES = Object.keys(MUTATIONS);

interface Case {
  readonly index: number;
  readonly label: string;
  /** The mutations applied, in order, as `file: mutation`. */
  readonly applied: readonly string[];
  readonly files: readonly InputFile[];
}

function makeCase(seed: number, index: number, corpus: readonly Sample[]): Case {
  const rng = caseRng(seed, index);
  const sample = pickSample(rng, corpus);
  const files = sample.files.map((f) => ({ ...f }));
  const applied: string[] = [];
  const touched = files.length > 1 && rng() < 0.3 ? 2 : 1;
  for (let t = 0; t < touched; t++) {
    const file = pick(rng, files);
    for (let n = between(rng, 1, 4); n > 0; n--) {
      const name = pick(rng, MUTATION_NAMES);
      const data = MUTATIONS[name]!(rng, file.data, { corpus });
      if (data.length > MAX_CASE_BYTES) continue;
      file.data = data;
      applied.push(`${file.name}: ${name}`);
    }
  }
  return { index, label: sample.label, applied, files };
}

// ---------------------------------------------------------------------------------------------------
// The oracle.

/** Lengths of the lines of a file as the loader counts positions: UTF-16 units of its UTF-8 decoding. */
function lineLengths(raw: Buffer): number[] {
  return raw.toString('utf8').split('\n').map((l) => l.length);
}

/** Loads the files as `rmm validate` would; returns what is wrong, or undefined when the outcome is clean. */
async function check(paths: readonly string[]): Promise<string | undefined> {
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  let diagnostics: readonly Diagnostic[];
  let hasSpec: boolean;
  try {
    const read = await readSources(paths);
    const result = loadSources(read.files, read.diagnostics);
    diagnostics = result.diagnostics;
    hasSpec = result.spec !== undefined;
    if (result.spec) JSON.stringify(result.spec);
  } catch (err) {
    if (err instanceof InputError && err.message.trim() !== '') return undefined;
    return `threw ${(err as Error)?.stack ?? String(err)}`;
  }
  // A case that kept the process busy past the budget. One that only waited for a busy machine's CPU past
  // it (wall time over, CPU time under) is not taken for a hang.
  const ms = performance.now() - started;
  const { user, system } = process.cpuUsage(cpuAtStart);
  const cpuMs = (user + system) / 1000;
  if (ms > CASE_BUDGET_MS && cpuMs > CASE_BUDGET_MS) return `took ${Math.round(ms)} ms, ${Math.round(cpuMs)} ms of CPU (budget ${CASE_BUDGET_MS} ms)`;

  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (hasSpec && errors.length > 0) return `a spec came back with ${errors.length} error(s): ${formatDiagnostic(errors[0]!)}`;
  if (!hasSpec && errors.length === 0) return `no spec and no error (${diagnostics.length} warning(s))`;
  const lengths = new Map(paths.map((p) => [p, lineLengths(readFileSync(p))]));
  for (const d of diagnostics) {
    const shown = JSON.stringify(d).slice(0, 400);
    if (typeof d.message !== 'string' || d.message.trim() === '') return `a diagnostic without a message: ${shown}`;
    if (d.severity !== 'error' && d.severity !== 'warning') return `a diagnostic of severity ${String(d.severity)}: ${shown}`;
    const fileLines = lengths.get(d.file);
    if (!fileLines) return `a diagnostic names a file that was not given: ${shown}`;
    if (!Number.isInteger(d.line) || !Number.isInteger(d.column)) return `a position that is not whole numbers: ${shown}`;
    if (d.line === 0) {
      if (d.column !== 0) return `a whole-file diagnostic with a column: ${shown}`;
    } else if (d.line < 0 || d.line > fileLines.length) {
      return `line ${d.line} is outside the file (${fileLines.length} lines): ${shown}`;
    } else if (d.column < 1 || d.column > fileLines[d.line - 1]! + 1) {
      return `column ${d.column} is outside line ${d.line} (${fileLines[d.line - 1]} characters): ${shown}`;
    }
    formatDiagnostic(d);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------

/** The hook scripts that the examples and fixtures name, so that valid mutations stay valid. */
function copyHooks(into: string): void {
  mkdirSync(path.join(into, 'hooks'), { recursive: true });
  for (const dir of [path.join(root, 'examples/hooks'), path.join(fixtures, 'estate-split/hooks')]) {
    for (const name of readdirSync(dir)) copyFileSync(path.join(dir, name), path.join(into, 'hooks', name));
  }
}

function writeFiles(dir: string, files: readonly InputFile[]): string[] {
  return files.map((f) => {
    const file = path.join(dir, f.name);
    writeFileSync(file, Buffer.from(f.data, 'latin1'));
    return file;
  });
}

function save(into: string, seed: number, c: Case): string {
  mkdirSync(into, { recursive: true });
  const base = path.join(into, `${seed}-${c.index}`);
  if (c.files.length === 1) {
    writeFileSync(`${base}.yaml`, Buffer.from(c.files[0]!.data, 'latin1'));
    return path.relative(root, `${base}.yaml`);
  }
  mkdirSync(base, { recursive: true });
  writeFiles(base, c.files);
  return `${path.relative(root, base)}/`;
}

function savedCases(): string[] {
  if (!existsSync(savedDir)) return [];
  return readdirSync(savedDir)
    .filter((n) => /\.ya?ml$/.test(n) || statSync(path.join(savedDir, n)).isDirectory())
    .sort();
}

describe('fuzzing the configuration loader', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'rmm-fuzz-'));
    copyHooks(work);
    // yaml warns on the process (a mapping used as a key); the run prints nothing unless it fails.
    vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
  });
  afterAll(() => {
    vi.restoreAllMocks();
    rmSync(work, { recursive: true, force: true });
  });

  it(`only ever yields a valid spec or a clean error (seed ${SEED}, ${ONLY === undefined ? `${CASES} cases` : `case ${ONLY}`})`, async () => {
    const corpus = loadCorpus();
    expect(corpus.length).toBeGreaterThan(10);
    const failures: string[] = [];
    const indices = ONLY === undefined ? Array.from({ length: CASES }, (_, i) => i) : [ONLY];
    for (const index of indices) {
      const c = makeCase(SEED, index, corpus);
      const paths = writeFiles(work, c.files);
      let problem: string | undefined;
      try {
        problem = await check(paths);
      } finally {
        for (const p of paths) unlinkSync(p);
      }
      if (problem === undefined) continue;
      const saved = SAVE_TO ? `; saved as ${save(SAVE_TO, SEED, c)}` : '';
      failures.push(
        `seed ${SEED} case ${index} (${c.label}; ${c.applied.join(', ')}): ${problem}\n` +
          `  reproduce: RMM_FUZZ_SEED=${SEED} RMM_FUZZ_CASE=${index} npx vitest run test/config/fuzz.test.ts -t 'only ever'${saved}`,
      );
      if (failures.length >= 20) break;
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it.each(savedCases())('replays the saved case test/fixtures/fuzz/%s', async (name) => {
    const at = path.join(savedDir, name);
    const paths = statSync(at).isDirectory()
      ? readdirSync(at)
          .filter((n) => /\.ya?ml$/.test(n))
          .sort()
          .map((n) => path.join(at, n))
      : [at];
    expect(await check(paths)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------
// The inputs most likely to hang, each in its own process with a hard kill.

/**
 * Each of these hung, crashed or took minutes before the guards in src/config/parse.ts and suggest.ts
 * (the comment says how it went), or is as large as the loader accepts. 8 MiB is the size limit.
 */
function bigInputs(): { name: string; text: string }[] {
  const MiB8 = 8 * 1024 * 1024 - 400;
  const header = (kind: string, name: string): string => `apiVersion: rmm/v1\nkind: ${kind}\nmetadata:\n  name: ${name}\n`;
  const origin = (i: number): string => `---\n${header('Origin', `web-${i}`)}spec:\n  address: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n`;
  const withLabels = (labels: string): string => `${header('Origin', 'web-01')}  labels: ${labels}\nspec:\n  address: 10.0.0.1\n`;
  const withExclude = (block: string): string => `${header('Origin', 'web-01')}spec:\n  address: 10.0.0.1\n  exclude:\n${block}`;
  /** `count` items in lists of at most 1,000, so that the limit on entries does not stop them first. */
  const lists = (count: number, item: (i: number) => string): string => {
    const out: string[] = [];
    for (let i = 0; i < count; i += 1000) out.push(`[${Array.from({ length: Math.min(1000, count - i) }, (_, j) => item(i + j)).join(', ')}]`);
    return `[${out.join(', ')}]`;
  };
  let laughs = '';
  for (let i = 0; i < 10; i++) laughs += `    l${i}: &l${i} ${i === 0 ? 'lol' : `[${Array(10).fill(`*l${i - 1}`).join(', ')}]`}\n`;
  let nested = '&n0 [lol]';
  for (let i = 1; i < 40; i++) nested = `&n${i} [${nested}, *n${i - 1}, *n${i - 1}]`;
  // Aliases inside nested anchors, in a document of many values: yaml counted each of them by a walk of
  // the whole document (a minute for 2 MB). Documents below 200,000 tokens, where rmm stops reading.
  let chain = `[${Array(49).fill('*z').join(', ')}]`;
  for (let i = 40; i >= 1; i--) chain = `&a${i} [${chain}]`;
  const chainUses = Array.from({ length: 40 }, (_, i) => `*a${i + 1}`).join(', ');
  return [
    { name: 'billion-laughs', text: `${header('Origin', 'web-01')}  labels:\n${laughs}spec:\n  address: 10.0.0.1\n` },
    { name: 'nested-laughs', text: withLabels(nested) },
    // Minutes: each alias looked for its anchor by a walk of the whole document.
    { name: 'one-anchor-50k-aliases', text: withLabels(`[&a x, ${lists(50_000, () => '*a')}]`) },
    { name: 'anchor-alias-pairs-20k', text: withLabels(lists(40_000, (i) => (i % 2 === 0 ? `&a${i} x` : `*a${i - 1}`))) },
    { name: 'alias-chain-in-30k-values', text: withLabels(`[&z x, ${chain}, ${chainUses}, ${lists(30_000, () => 'x')}]`) },
    { name: 'documents-with-aliases-1000', text: Array.from({ length: 1000 }, (_, i) => `${origin(i)}  exclude: { paths: [&p /tmp, ${Array(50).fill('*p').join(', ')}] }\n`).join('') },
    // Out of memory after 50 s.
    { name: 'flow-nesting-8MiB', text: withLabels('['.repeat(MiB8 / 2) + ']'.repeat(MiB8 / 2)) },
    { name: 'flow-mapping-nesting-unclosed-8MiB', text: withLabels('{a: '.repeat(MiB8 / 4)) },
    { name: 'block-nesting-2000', text: withExclude(`${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(4 + i)}k:`).join('\n')} x\n`) },
    // 17 s and 2.3 GB.
    { name: 'inline-sequence-nesting-8MiB', text: withExclude(`    ${'- '.repeat(MiB8 / 2)}x\n`) },
    // Out of memory after 80 s.
    { name: 'commas-8MiB', text: withExclude(`    paths: [${','.repeat(MiB8)}]\n`) },
    // 27 s and 2.8 GB.
    { name: 'anchors-on-one-value-8MiB', text: withExclude(`    paths: ${'&a '.repeat(MiB8 / 3)}x\n`) },
    { name: 'blank-lines-8MiB', text: withExclude('\n'.repeat(MiB8)) },
    // Six minutes: yaml compares each key with every other one.
    { name: 'mapping-200k-keys', text: `${header('Origin', 'web-01')}  labels:\n${Array.from({ length: 200_000 }, (_, i) => `    k${i}: v`).join('\n')}\nspec:\n  address: 10.0.0.1\n` },
    { name: 'flow-mapping-200k-keys', text: withLabels(`{${Array.from({ length: 200_000 }, (_, i) => `k${i}: v`).join(', ')}}`) },
    { name: 'unknown-fields-100k', text: `${header('Origin', 'web-01')}spec:\n  address: 10.0.0.1\n${Array.from({ length: 100_000 }, (_, i) => `  f${i}: v`).join('\n')}\n` },
    // The schema's uniqueItems check on mounts compares each item with every other one.
    { name: 'mounts-100k', text: withExclude(`    mounts:\n${Array.from({ length: 100_000 }, (_, i) => `      - /m${i}`).join('\n')}\n`) },
    // A did-you-mean over 8 MiB: an edit-distance table of 8 million rows.
    { name: 'kind-of-8MiB', text: `apiVersion: rmm/v1\nkind: ${'x'.repeat(MiB8)}\nmetadata:\n  name: web-01\n` },
    { name: 'string-near-the-size-limit', text: withLabels(`{a: ${'x'.repeat(MiB8)}}`) },
    { name: 'origins-5000', text: Array.from({ length: 5000 }, (_, i) => origin(i)).join('') },
    { name: 'duplicate-origins-5000', text: Array.from({ length: 5000 }, () => origin(1)).join('') },
    { name: 'separators-100k', text: '---\n'.repeat(100_000) },
    { name: 'syntax-errors-100k', text: 'a: b: c\n'.repeat(100_000) },
  ];
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly killed: boolean;
  readonly stderr: string;
}

function validate(file: string): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'validate', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, KILL_AFTER_MS);
    const err: Buffer[] = [];
    let size = 0;
    child.stderr.on('data', (c: Buffer) => {
      if (size < 64 * 1024) err.push(c);
      size += c.length;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, killed, stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Why the child processes cannot run, if they cannot: they run the build, which must be of these sources. */
function cliProblem(): string | undefined {
  if (!existsSync(cli)) return `${path.relative(root, cli)} is missing: run npx tsc -p tsconfig.json`;
  if (process.env.RMM_FUZZ_CLI !== undefined) return undefined;
  const srcDir = path.join(root, 'src/config');
  const stale = readdirSync(srcDir)
    .filter((n) => n.endsWith('.ts'))
    .find((n) => {
      const built = path.join(root, 'dist/config', n.replace(/\.ts$/, '.js'));
      return !existsSync(built) || statSync(built).mtimeMs < statSync(path.join(srcDir, n)).mtimeMs;
    });
  return stale === undefined ? undefined : `dist/ is older than src/config/${stale}: run npx tsc -p tsconfig.json`;
}

describe('the most dangerous inputs, in a child process with a hard kill', () => {
  const problem = cliProblem();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rmm-fuzz-big-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(problem !== undefined)(`each ends by itself with exit code 0 or 2${problem ? ` (skipped: ${problem})` : ''}`, async () => {
    const inputs = bigInputs();
    const problems: string[] = [];
    // Two at a time: CI machines have two cores.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < inputs.length) {
        const { name, text } = inputs[next++]!;
        const file = path.join(dir, `${name}.yaml`);
        writeFileSync(file, text);
        const exit = await validate(file);
        unlinkSync(file);
        // The CLI prints an error that is not the configuration's as "unexpected error", with its stack.
        const unexpected = /unexpected error|Maximum call stack|heap out of memory/.test(exit.stderr);
        if (exit.killed) problems.push(`${name}: still running after ${KILL_AFTER_MS / 1000} s, killed`);
        else if ((exit.code !== 0 && exit.code !== 2) || unexpected) {
          const how = exit.signal ? `ended by ${exit.signal}` : `exit code ${String(exit.code)}`;
          problems.push(`${name}: ${how}: ${exit.stderr.split('\n').slice(0, 3).join(' | ').slice(0, 500)}`);
        }
      }
    };
    await Promise.all([worker(), worker()]);
    expect(problems, problems.join('\n')).toEqual([]);
  }, 240_000);
});
