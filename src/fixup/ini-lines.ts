import { commentedOut, type LineEdits } from './line-edits.js';

/** One `Key=Value` of an INI-style file (systemd units, NetworkManager keyfiles) and where it is. */
export interface IniEntry {
  /** The section name without brackets, e.g. `Network` or `ipv4`. */
  readonly section: string;
  /** Counts the sections from 0, so two `[Route]` sections are told apart. */
  readonly sectionIndex: number;
  readonly key: string;
  /** Indices of the physical lines the entry spans (more than one only with backslash continuations). */
  readonly lines: readonly number[];
  /** Everything before the value: indentation, key, '=' and the spaces around it. */
  readonly prefix: string;
  /** The value as written; continued lines are joined with '\n' (each keeps its backslash). */
  readonly value: string;
}

export interface IniSyntax {
  /** True for a comment line (systemd: '#' or ';'; keyfiles: '#'). */
  readonly isComment: (line: string) => boolean;
  /** systemd joins a line ending in a backslash with the next; keyfiles do not. */
  readonly continuation: boolean;
}

export type IniParse = { readonly entries: readonly IniEntry[] } | { readonly problem: string; readonly line: number };

export function parseIni(edits: LineEdits, syntax: IniSyntax): IniParse {
  const entries: IniEntry[] = [];
  let section: string | undefined;
  let sectionIndex = -1;
  const lines = edits.lines;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.text;
    if (text.trim() === '' || syntax.isComment(text)) continue;
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(text);
    if (header) {
      section = header[1]!;
      sectionIndex++;
      continue;
    }
    const kv = /^(\s*)([^=\s[][^=]*?)(\s*=\s*)(.*)$/s.exec(text);
    if (!kv) return { problem: `'${text.trim()}' is neither a [section], a key=value nor a comment`, line: i + 1 };
    if (section === undefined) return { problem: `the key '${kv[2]}' comes before any [section]`, line: i + 1 };
    const span = [i];
    while (syntax.continuation && lines[span[span.length - 1]!]!.text.endsWith('\\') && span[span.length - 1]! < lines.length - 1) span.push(span[span.length - 1]! + 1);
    i = span[span.length - 1]!;
    const value = [kv[4]!, ...span.slice(1).map((j) => lines[j]!.text)].join('\n');
    entries.push({ section, sectionIndex, key: kv[2]!, lines: span, prefix: kv[1]! + kv[2]! + kv[3]!, value });
  }
  return { entries };
}

/** Writes an entry's new value back over its physical lines. */
export function setIniValue(edits: LineEdits, entry: IniEntry, value: string, reasons: string | readonly string[]): void {
  const pieces = (entry.prefix + value).split('\n');
  entry.lines.forEach((i, k) => edits.set(i, pieces[k] ?? '', reasons));
}

/** Comments an entry out: the line stays, so the operator sees in the file what was there. */
export function commentIniEntry(edits: LineEdits, entry: IniEntry, reason: string): void {
  for (const i of entry.lines) edits.set(i, commentedOut(edits.lines[i]!.text), reason);
}
