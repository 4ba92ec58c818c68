import { LineEdits, splitLines } from './line-edits.js';
import type { FixupResult } from './types.js';

/**
 * One replacement inside a single line of the input, by offsets in the whole text: the form a YAML
 * node's source range or a regular expression match gives. `text` may hold a newline when a note line
 * is inserted before the line being edited.
 */
export interface TextEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly reason: string;
}

/** A line of the input with its offsets; `end` excludes the line's end-of-line bytes. */
export interface Line {
  readonly number: number;
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

export function linesOf(text: string): Line[] {
  let start = 0;
  return splitLines(text).map((line, i) => {
    const at = start;
    start += line.text.length + line.eol.length;
    return { number: i + 1, start: at, end: at + line.text.length, text: line.text };
  });
}

/**
 * Applies offset edits through the line editor the other fixups use, so every format reports its
 * changes the same way. Two edits of the same span keep the first (a transform may reach one scalar
 * by two paths); an edit that overlaps an earlier one is a bug in the transform.
 */
export function applyEdits(text: string, edits: readonly TextEdit[]): FixupResult {
  const lines = linesOf(text);
  const byLine = new Map<number, TextEdit[]>();
  for (const edit of [...edits].sort((a, b) => a.start - b.start || a.end - b.end)) {
    const line = lines.find((l) => l.start <= edit.start && edit.end <= l.end);
    if (!line) throw new Error(`a fixup edit crosses a line end (${edit.reason})`);
    const onLine = byLine.get(line.number) ?? [];
    const last = onLine[onLine.length - 1];
    if (last && last.start === edit.start && last.end === edit.end) continue;
    if (last && edit.start < last.end) throw new Error(`two fixup edits overlap on line ${line.number} (${last.reason}; ${edit.reason})`);
    onLine.push(edit);
    byLine.set(line.number, onLine);
  }
  const result = new LineEdits(text);
  for (const [number, onLine] of byLine) {
    const line = lines[number - 1]!;
    let after = '';
    let at = line.start;
    for (const edit of onLine) {
      after += text.slice(at, edit.start) + edit.text;
      at = edit.end;
    }
    after += text.slice(at, line.end);
    result.set(number - 1, after, [...new Set(onLine.map((e) => e.reason))]);
  }
  return result.result();
}

/** The edit that turns a line into a comment, keeping its indentation; `note` goes on a line of its own above it. */
export function commentOut(line: Line, reason: string, note?: string): TextEdit {
  const indent = /^[ \t]*/.exec(line.text)![0];
  const noteLine = note === undefined ? '' : `${indent}# rmm: ${note}\n`;
  return { start: line.start, end: line.start + indent.length, text: `${noteLine}${indent}# `, reason };
}
