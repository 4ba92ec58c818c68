import { LineCounter, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';
import type { Diagnostic } from './diagnostics.js';
import type { SourceFile } from './source.js';

/** One YAML document of a file, with what is needed to point back into the text. */
export interface ParsedDocument {
  readonly source: SourceFile;
  /** 0-based position of the document in its file. */
  readonly index: number;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  readonly value: unknown;
}

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Billion-laughs and deep-nesting guards: far above what an estate file needs. */
const MAX_ALIAS_COUNT = 100;
const MAX_DEPTH = 64;

export function parseSource(source: SourceFile): { documents: ParsedDocument[]; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const documents: ParsedDocument[] = [];
  const problem = (offset: number, message: string): void => {
    const { line, col } = lineCounter.linePos(offset);
    diagnostics.push({ file: source.name, line, column: col, field: '', message, severity: 'error' });
  };

  const parsed = parseAllDocuments(source.text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  for (const [index, doc] of docs.entries()) {
    for (const err of doc.errors) problem(err.pos[0], yamlMessage(err.code, err.message, source.text, err.pos[0]));
    if (doc.errors.length > 0) continue;
    if (doc.contents === null) continue; // an empty document between two '---' lines
    const depthProblem = tooDeep(doc.contents as Node);
    if (depthProblem !== undefined) {
      problem(depthProblem, `the document is nested deeper than ${MAX_DEPTH} levels`);
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      problem(doc.range[0], `the document cannot be expanded: ${cleanYamlMessage((err as Error).message)}`);
      continue;
    }
    documents.push({ source, index, doc, lineCounter, value });
  }
  if (diagnostics.length === 0 && documents.length === 0) {
    diagnostics.push({
      file: source.name,
      line: 0,
      column: 0,
      field: '',
      message: 'the file holds no YAML documents',
      severity: 'error',
    });
  }
  return { documents, diagnostics };
}

function yamlMessage(code: string, message: string, text: string, offset: number): string {
  if (code === 'TAB_AS_INDENT') return 'a tab is used for indentation; YAML allows only spaces';
  if (code === 'DUPLICATE_KEY') {
    const key = /^[^:\n]*/.exec(text.slice(offset))?.[0].trim();
    return `the key '${key}' appears twice in the same mapping`;
  }
  return `YAML syntax: ${cleanYamlMessage(message)}`;
}

function cleanYamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '').replace(/\.$/, '');
}

function tooDeep(root: Node): number | undefined {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) return (node as Node).range?.[0] ?? 0;
    if (isMap(node)) for (const pair of node.items) stack.push([pair.value, depth + 1]);
    else if (isSeq(node)) for (const item of node.items) stack.push([item, depth + 1]);
  }
  return undefined;
}

/**
 * Where `path` was written in the document. With `key`, points at the last key itself (for unknown or
 * misplaced fields); otherwise at its value. A path that does not exist points at its deepest existing parent.
 */
export function positionOf(parsed: ParsedDocument, path: readonly (string | number)[], key = false): Position {
  let node: unknown = parsed.doc.contents;
  let offset = parsed.doc.contents?.range?.[0] ?? parsed.doc.range[0];
  for (const [i, segment] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      const keyOffset = (pair.key as Node).range?.[0];
      if (last && key && keyOffset !== undefined) {
        offset = keyOffset;
        break;
      }
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyOffset ?? offset;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (!item) break;
      node = item;
      offset = item.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  const { line, col } = parsed.lineCounter.linePos(offset);
  return { line, column: col };
}
