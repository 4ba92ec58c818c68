import {
  Composer,
  Lexer,
  LineCounter,
  Parser,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  visit,
  type Alias,
  type CST,
  type Document,
  type Node,
  type YAMLError,
} from 'yaml';
import type { Diagnostic } from './diagnostics.js';
import type { SourceFile } from './source.js';

/** One YAML document of a file, with what is needed to point back into the text. */
export interface ParsedDocument {
  readonly source: SourceFile;
  /** 0-based position of the document among the documents of its file that could be read. */
  readonly index: number;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  readonly value: unknown;
}

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Billion-laughs, deep-nesting and size guards: far above what an estate file needs. */
const MAX_ALIAS_COUNT = 100;
const MAX_DEPTH = 64;
/** Values that the aliases of one document may add once expanded. */
const MAX_ALIAS_EXPANSION = 10_000;
/** Anchors and aliases in one document: yaml resolves each alias by a scan of those before it. */
const MAX_ALIAS_MARKS = 200;
/** Entries of one mapping or list: yaml's duplicate-key check and some uniqueItems checks are quadratic. */
const MAX_ENTRIES = 1_000;
/**
 * Where rmm stops reading a file: yaml builds the whole syntax tree of a document before the checks above
 * can see it, at a few hundred bytes per token; 8 MiB of '[' or of ',' ran out of memory after a minute.
 */
const MAX_PARSE_DEPTH = 10_000;
const MAX_PARSE_ENTRIES = 10_000;
const MAX_DOCUMENT_TOKENS = 200_000;

interface Problem {
  readonly offset: number;
  readonly message: string;
}

export interface ParseResult {
  readonly documents: ParsedDocument[];
  readonly diagnostics: Diagnostic[];
  /** `Kind/name` of documents that could not be read, so that references to them are not reported too. */
  readonly brokenNames: string[];
}

export function parseSource(source: SourceFile): ParseResult {
  const lineCounter = new LineCounter();
  const problems: Problem[] = [];
  const documents: ParsedDocument[] = [];
  const brokenNames: string[] = [];

  const tooLarge: Problem[] = [];
  const tokens = withoutTooLarge(parseBounded(source.text, lineCounter, tooLarge), tooLarge);
  withPlainEnv(() => {
    for (const doc of new Composer({ uniqueKeys: true }).compose(tokens)) {
      if (doc.errors.length > 0) {
        problems.push(...syntaxProblems(doc, source.text, lineCounter));
        brokenNames.push(...declaredName(doc));
        continue;
      }
      if (isEmptyDocument(doc)) continue;
      const expanded = expand(doc, source.text);
      if ('problem' in expanded) {
        problems.push(expanded.problem);
        brokenNames.push(...declaredName(doc));
      } else documents.push({ source, index: documents.length, doc, lineCounter, value: expanded.value });
    }
  });

  problems.push(...tooLarge);
  const diagnostics = problems.map((p): Diagnostic => {
    const { line, col } = lineCounter.linePos(p.offset);
    return { file: source.name, line, column: col, field: '', message: p.message, severity: 'error' };
  });
  if (diagnostics.length === 0 && documents.length === 0) {
    const message = source.text.trim() === '' ? 'the file is empty' : 'the file holds only comments, no YAML document';
    diagnostics.push({ file: source.name, line: 0, column: 0, field: '', message, severity: 'error' });
  }
  return { documents, diagnostics, brokenNames };
}

/**
 * yaml's parser reads process.env.LOG_TOKENS for every token, and process.env is a slow native
 * lookup: about a tenth of the time on a 2,000-origin file. Parsing is synchronous, so nothing else
 * can see the plain copy that stands in for it meanwhile.
 */
function withPlainEnv<T>(work: () => T): T {
  const real = process.env;
  process.env = { ...real };
  try {
    return work();
  } finally {
    process.env = real;
  }
}

/** Read from the syntax tree, without expanding aliases: `Kind/name`, when the document states both. */
function declaredName(doc: Document.Parsed): string[] {
  const kind: unknown = doc.get('kind');
  const name: unknown = doc.getIn(['metadata', 'name']);
  return typeof kind === 'string' && typeof name === 'string' ? [`${kind}/${name}`] : [];
}

/**
 * Parser.parse(), but it stops at a document that is far too deep, too wide or too long. The line starts
 * come from the text itself: the parser does not report the line breaks inside a scalar it meets while
 * recovering from an error, which put every later message on the wrong line.
 */
function* parseBounded(text: string, lineCounter: LineCounter, tooLarge: Problem[]): Generator<CST.Token> {
  lineCounter.addNewLine(0);
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', nl + 1)) lineCounter.addNewLine(nl + 1);
  const parser = new Parser();
  let tokens = 0; // of the document being built: the parser hands each over once it is complete
  for (const lexeme of new Lexer().lex(text)) {
    for (const token of parser.next(lexeme)) {
      tokens = 0;
      yield token;
    }
    const problem =
      ++tokens > MAX_DOCUMENT_TOKENS
        ? { offset: parser.offset, message: `the document has more than ${MAX_DOCUMENT_TOKENS} YAML tokens; rmm stopped reading the file here` }
        : runawayAt(parser);
    if (problem) {
      tooLarge.push(problem);
      return;
    }
  }
  yield* parser.end();
}

/** The tokens being built are on the parser's stack; entries are added to one of the innermost. */
function runawayAt(parser: Parser): Problem | undefined {
  const { stack } = parser;
  if (stack.length > MAX_PARSE_DEPTH) {
    const offset = stack[MAX_DEPTH + 1]?.offset ?? parser.offset; // below the document, as tooLargeAt() counts
    return { offset, message: `the document is nested deeper than ${MAX_DEPTH} levels; rmm did not read the rest of the file` };
  }
  for (let i = stack.length - 1; i >= 0 && i >= stack.length - 3; i--) {
    const token = stack[i]!;
    if ('items' in token && token.items.length > MAX_PARSE_ENTRIES) {
      const what = token.type === 'block-map' || (token.type === 'flow-collection' && token.start.source === '{') ? 'mapping' : 'list';
      return { offset: token.offset, message: `this ${what} has more than ${MAX_ENTRIES} entries; rmm did not read the rest of the file` };
    }
  }
  return undefined;
}

/**
 * Leaves out documents nested deeper than MAX_DEPTH, or with a mapping or list of more than MAX_ENTRIES,
 * before they are composed, noting where: yaml composes recursively, and a stack overflow there can leave
 * V8 unable to compile regular expressions for the rest of the process; and its check for duplicate keys
 * compares each key with every other one, which took minutes on a mapping of 200,000 keys.
 * A generator, so each document's syntax tree is garbage once composed.
 */
function* withoutTooLarge(tokens: Iterable<CST.Token>, tooLarge: Problem[]): Generator<CST.Token> {
  let dropped = false;
  for (const token of tokens) {
    if (token.type === 'doc-end' && dropped) continue;
    const problem = token.type === 'document' ? tooLargeAt(token) : undefined;
    dropped = problem !== undefined;
    if (problem === undefined) yield token;
    else tooLarge.push(problem);
  }
}

function tooLargeAt(doc: CST.Document): Problem | undefined {
  const stack: Array<[CST.Token | null | undefined, number]> = [[doc.value, 0]];
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (!token) continue;
    if (token.type !== 'block-map' && token.type !== 'block-seq' && token.type !== 'flow-collection') continue;
    if (depth >= MAX_DEPTH) return { offset: token.offset, message: `the document is nested deeper than ${MAX_DEPTH} levels` };
    if (token.items.length > MAX_ENTRIES) {
      const what = token.type === 'block-map' || (token.type === 'flow-collection' && token.start.source === '{') ? 'mapping' : 'list';
      return { offset: token.offset, message: `this ${what} has more than ${MAX_ENTRIES} entries; rmm reads at most ${MAX_ENTRIES} in one mapping or list` };
    }
    for (const item of token.items) stack.push([item.key, depth + 1], [item.value, depth + 1]);
  }
  return undefined;
}

/** A document that holds nothing but comments, such as the part after a trailing '---'. */
function isEmptyDocument(doc: Document.Parsed): boolean {
  const contents = doc.contents;
  return contents === null || (isScalar(contents) && contents.value === null && contents.source === '');
}

/** An alias (*name) only follows a line start, a space or one of [{,: so most documents need no search. */
const MAY_HOLD_ALIAS = /(?:^|[\s[{,:])\*[^\s,\]}]/m;

const BILLION_LAUGHS = "the aliases of this document expand to too much data; rmm refuses it as a possible 'billion laughs' attack";

function expand(doc: Document.Parsed, text: string): { value: unknown } | { problem: Problem } {
  const mayHoldAlias = MAY_HOLD_ALIAS.test(text.slice(doc.range[0], doc.range[2]));
  if (mayHoldAlias) {
    const use = aliasUse(doc);
    if (use.unresolved) {
      const { source } = use.unresolved;
      return { problem: { offset: use.unresolved.range![0], message: `the alias *${source} has no anchor &${source} before it` } };
    }
    const offset = use.first?.range?.[0] ?? doc.range[0];
    if (use.marks > MAX_ALIAS_MARKS)
      return { problem: { offset, message: `the document has more than ${MAX_ALIAS_MARKS} anchors and aliases; rmm refuses it as a possible 'billion laughs' attack` } };
    if (use.added > MAX_ALIAS_EXPANSION) return { problem: { offset, message: BILLION_LAUGHS } };
  }
  try {
    // With aliases, aliasUse() has bounded the expansion: yaml's own count walks the whole document for
    // each alias inside an anchored collection, which took minutes on a large document.
    return { value: doc.toJS({ maxAliasCount: mayHoldAlias ? -1 : MAX_ALIAS_COUNT }) };
  } catch (err) {
    const offset = aliases(doc)[0]?.range?.[0] ?? doc.range[0];
    const message = /alias count/i.test((err as Error).message) ? BILLION_LAUGHS : `the document cannot be expanded: ${cleanYamlMessage((err as Error).message)}`;
    return { problem: { offset, message } };
  }
}

interface AliasUse {
  /** The first alias with no anchor of its name before it. */
  readonly unresolved?: Alias;
  readonly first?: Alias;
  /** How many anchors and aliases the document has. */
  readonly marks: number;
  /** How many values the aliases add once expanded; an alias inside its own anchor adds one (a reference). */
  readonly added: number;
}

/**
 * What the aliases of a document amount to, in one walk in document order, where an alias refers to the
 * last anchor of its name before it. Alias.resolve(doc) walks the whole document on each call, which made
 * a document of many aliases take minutes. Recursive: the document is at most MAX_DEPTH deep.
 */
function aliasUse(doc: Document.Parsed): AliasUse {
  const anchors = new Map<string, Node>();
  const sizes = new Map<Node, number>();
  let unresolved: Alias | undefined;
  let first: Alias | undefined;
  let marks = 0;
  let written = 0;
  const size = (node: unknown): number => {
    if (isAlias(node)) {
      marks++;
      first ??= node;
      const target = anchors.get(node.source);
      if (!target) unresolved ??= node;
      return (target && sizes.get(target)) ?? 1;
    }
    if (isPair(node)) return size(node.key) + size(node.value);
    if (!isScalar(node) && !isCollection(node)) return 0;
    written++;
    if (node.anchor) {
      marks++;
      anchors.set(node.anchor, node);
    }
    let total = 1;
    if (isCollection(node)) for (const item of node.items) total += size(item);
    sizes.set(node, total);
    return total;
  };
  const expanded = size(doc.contents);
  return { ...(unresolved ? { unresolved } : {}), ...(first ? { first } : {}), marks, added: expanded - written };
}

function aliases(doc: Document.Parsed): Alias[] {
  const found: Alias[] = [];
  visit(doc, { Alias: (_, node) => void found.push(node) });
  return found;
}

/** The syntax errors of a document in the user's terms; one per line, as the rest of a line is noise. */
function syntaxProblems(doc: Document.Parsed, text: string, lineCounter: LineCounter): Problem[] {
  const codes = new Set(doc.errors.map((e) => e.code));
  const seenLines = new Set<number>();
  const out: Problem[] = [];
  for (const err of doc.errors) {
    // Both are raised for one over-indented key; the multi-line one says what happened.
    if (err.code === 'BLOCK_AS_IMPLICIT_KEY' && codes.has('MULTILINE_IMPLICIT_KEY')) continue;
    const problem = syntaxProblem(err, doc, text, lineCounter);
    const line = lineCounter.linePos(problem.offset).line;
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    out.push(problem);
  }
  return out;
}

function syntaxProblem(err: YAMLError, doc: Document.Parsed, text: string, lineCounter: LineCounter): Problem {
  const offset = err.pos[0];
  switch (err.code) {
    case 'TAB_AS_INDENT':
      return { offset, message: 'a tab is used for indentation; YAML allows only spaces' };
    case 'DUPLICATE_KEY':
      return { offset, message: duplicateKeyMessage(doc, offset, lineCounter) };
    case 'MULTILINE_IMPLICIT_KEY':
      return {
        offset: lineContentStart(text, err.pos[1]),
        message: 'bad indentation: this key is indented more than the keys above it, so YAML reads it as part of the value before',
      };
    case 'BLOCK_AS_IMPLICIT_KEY':
      return { offset, message: "a second 'key: value' on the same line; start it on its own line, indented, or quote the value" };
    default:
      return unclosed(err, doc) ?? { offset, message: `YAML syntax: ${cleanYamlMessage(err.message)}` };
  }
}

/** An unterminated quote or flow collection is reported where it was opened, not where the file ends. */
function unclosed(err: YAMLError, doc: Document.Parsed): Problem | undefined {
  const at = err.pos[0];
  const opens = (node: Node): boolean => node.range !== undefined && node.range !== null && node.range[0] < at && node.range[1] >= at;
  if (err.code === 'MISSING_CHAR' && /quote/.test(err.message)) {
    const quoted = innermost(doc, (n) => isScalar(n) && (n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') && opens(n));
    if (!quoted) return undefined;
    const mark = isScalar(quoted) && quoted.type === 'QUOTE_SINGLE' ? "'" : '"';
    return { offset: quoted.range![0], message: `the quote ${mark} opened here is never closed` };
  }
  if (/flow (sequence|map)/i.test(err.message)) {
    const flow = innermost(doc, (n) => isCollection(n) && n.flow === true && opens(n));
    if (!flow) return undefined;
    const [what, open, close] = isSeq(flow) ? ['list', '[', ']'] : ['mapping', '{', '}'];
    return { offset: flow.range![0], message: `the ${what} opened with '${open}' here has no closing '${close}' (or a line inside it is not indented enough)` };
  }
  return undefined;
}

/** The node matching `test` that starts last, which is the innermost of nested ones. */
function innermost(doc: Document.Parsed, test: (node: Node) => boolean): Node | undefined {
  let best: Node | undefined;
  visit(doc, {
    Node: (_, node) => {
      if (test(node) && (!best || node.range![0] > best.range![0])) best = node;
    },
  });
  return best;
}

function duplicateKeyMessage(doc: Document.Parsed, offset: number, lineCounter: LineCounter): string {
  let message: string | undefined;
  visit(doc, {
    Map: (_, map) => {
      const index = map.items.findIndex((p) => (p.key as Node | null)?.range?.[0] === offset);
      if (index === -1) return undefined;
      const key = map.items[index]!.key;
      const name = isScalar(key) ? String(key.value) : String(key);
      const first = map.items.find((p, i) => i < index && isScalar(p.key) && String(p.key.value) === name);
      const where = first ? ` (first at line ${lineCounter.linePos((first.key as Node).range![0]).line})` : '';
      message = `the key '${name}' appears twice in the same mapping${where}`;
      return visit.BREAK;
    },
  });
  return message ?? 'a key appears twice in the same mapping';
}

function lineContentStart(text: string, offset: number): number {
  let start = text.lastIndexOf('\n', offset - 1) + 1;
  while (text[start] === ' ') start++;
  return start;
}

function cleanYamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '').replace(/\.$/, '');
}

/**
 * Where `path` was written in the document. With `key`, points at the last key itself (for unknown or
 * misplaced fields); otherwise at its value, or at its key when nothing is written after it.
 * A path that does not exist points at its deepest existing parent.
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
      const value = pair.value as Node | null;
      if (last && key) {
        offset = keyOffset ?? offset;
        break;
      }
      offset = (isBlank(value) ? undefined : value?.range?.[0]) ?? keyOffset ?? offset;
      node = value;
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

/** `key:` with nothing after it: the value's range is wherever the next token starts, so point at the key. */
function isBlank(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null && node.source === '');
}
