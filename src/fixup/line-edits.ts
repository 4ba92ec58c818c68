import { resultOf, type FixupChange, type FixupResult } from './types.js';

/** One physical line and the end-of-line bytes that followed it ('' for a last line without one). */
export interface Line {
  readonly text: string;
  readonly eol: string;
}

export function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  const re = /\r?\n/g;
  let start = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    lines.push({ text: text.slice(start, m.index), eol: m[0] });
    start = m.index + m[0].length;
  }
  if (start < text.length) lines.push({ text: text.slice(start), eol: '' });
  return lines;
}

/**
 * The edits a transform makes to a file, line by line: each line keeps its own end-of-line bytes, and
 * a line touched by several rules becomes one change with all their reasons. Nothing is re-serialised,
 * so every line no rule names comes out byte for byte as it went in.
 */
export class LineEdits {
  readonly lines: readonly Line[];
  readonly #text: string;
  readonly #after: string[];
  readonly #reasons: string[][];

  constructor(text: string) {
    this.#text = text;
    this.lines = splitLines(text);
    this.#after = this.lines.map((l) => l.text);
    this.#reasons = this.lines.map(() => []);
  }

  /** The line's text as edited so far. */
  current(index: number): string {
    return this.#after[index]!;
  }

  set(index: number, after: string, reasons: string | readonly string[]): void {
    if (after === this.#after[index]) return;
    this.#after[index] = after;
    const kept = this.#reasons[index]!;
    for (const reason of typeof reasons === 'string' ? [reasons] : reasons) if (!kept.includes(reason)) kept.push(reason);
  }

  /** Adds lines after `index`, written with that line's end-of-line bytes (a file's last line gets '\n'). */
  insertAfter(index: number, added: readonly string[], reason: string): void {
    if (added.length === 0) return;
    const eol = this.lines[index]!.eol || '\n';
    this.set(index, [this.#after[index]!, ...added].join(eol), reason);
  }

  result(): FixupResult {
    const changes: FixupChange[] = [];
    let text = '';
    this.lines.forEach((line, i) => {
      const after = this.#after[i]!;
      text += after + line.eol;
      if (after !== line.text) changes.push({ line: i + 1, before: line.text, after, reason: this.#reasons[i]!.join('; ') });
    });
    return resultOf(this.#text, text, changes);
  }
}

/** A file with NUL bytes is not a configuration file, whatever its name says. */
export function binaryProblem(text: string): FixupResult | undefined {
  const at = text.indexOf('\0');
  if (at === -1) return undefined;
  return { kind: 'unparsable', problem: 'the file holds NUL bytes: it is not a text configuration file', line: text.slice(0, at).split('\n').length };
}

/**
 * Rewrites the whitespace-separated words of `text` one by one, keeping every separator as written.
 * `rewrite` sees each word with its index among the words and returns the new word or undefined.
 */
export function editWords(text: string, rewrite: (word: string, index: number, words: readonly string[]) => string | undefined): string {
  const parts = text.split(/(\s+)/);
  const words = parts.filter((_, i) => i % 2 === 0);
  let w = 0;
  return parts
    .map((part, i) => {
      if (i % 2 === 1) return part;
      const index = w++;
      if (part === '') return part;
      return rewrite(part, index, words) ?? part;
    })
    .join('');
}

/** A line turned into a comment, keeping its indentation (the way src/fixup/edits.ts comments lines out). */
export function commentedOut(text: string): string {
  return text.replace(/^[ \t]*/, (indent) => `${indent}# `);
}
