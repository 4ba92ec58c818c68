import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { fieldPath, oneOfList, showTyped, showValue, type Diagnostic } from './diagnostics.js';
import { positionOf, type ParsedDocument } from './parse.js';
import * as compiled from './schema-validators.js';
import { closest, didYouMean } from './suggest.js';

export const SCHEMA_URL = new URL('../../schemas/rmm.schema.json', import.meta.url);
export const API_VERSION = 'rmm/v1';
export const KINDS = ['Defaults', 'Origin', 'Environment', 'Policy', 'Replica'] as const;
export type Kind = (typeof KINDS)[number];

/** Keys people reach for to put a secret inline; the language has none on purpose. */
const SECRET_KEYS = new Set(['password', 'passwd', 'privatekey', 'private_key', 'key', 'passphrase', 'secret', 'token']);

/**
 * What the patterns written inline in the schema (not as a described $defs entry) mean, for messages.
 * A test checks that every pattern of the schema is explained either here or by its $defs description.
 */
export const INLINE_PATTERN_MEANINGS: Readonly<Record<string, string>> = {
  '^[a-z_][a-z0-9_.-]{0,31}\\$?$':
    "a login name: lower-case letters, digits, '_', '.' and '-', starting with a letter or '_', at most 32 characters",
  '^/dev/[^\\s]+$': 'a device path such as /dev/sdb',
  '^(/dev/[^\\s]+|[A-Za-z0-9+_.*?\\[\\]-]+/[A-Za-z0-9+_.*?\\[\\]-]+)$':
    'a device path (/dev/sdc, /dev/mapper/asm*) or an LVM volume group/volume (vg_asm/*, vg0/lv_scratch)',
  '^[^\\n\\r]+$': 'a pattern on a single line',
  '^https?://[^\\s/?#]+([/?#]\\S*)?$': 'an http:// or https:// URL',
  '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$':
    "a label key: letters, digits, '.', '_', '/' and '-', 1 to 63 characters, starting and ending with a letter or digit",
};

interface SchemaNode {
  description?: string;
  $ref?: string;
  const?: unknown;
  type?: string | string[];
  oneOf?: SchemaNode[];
  [key: string]: unknown;
}

interface Problem {
  readonly path: (string | number)[];
  readonly message: string;
  /** Point at the key rather than its value (unknown, missing or misplaced fields). */
  readonly atKey: boolean;
}

/** The validators, compiled ahead of time from the schema (scripts/gen-validators.mjs; a test checks they match it). */
const validators = compiled as unknown as Record<Kind, ValidateFunction>;
let schemaDefs: Record<string, SchemaNode> | undefined;

/** The schema's $defs, read when a message first needs a description. */
function defs(): Record<string, SchemaNode> {
  schemaDefs ??= (JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $defs: Record<string, SchemaNode> }).$defs;
  return schemaDefs;
}

/** Checks one document against the schema; returns every problem, pinned to the text. */
export function validateDocument(parsed: ParsedDocument): Diagnostic[] {
  const toDiagnostic = ({ path, message, atKey }: Problem): Diagnostic => {
    const { line, column } = positionOf(parsed, path, atKey);
    return { file: parsed.source.name, line, column, field: fieldPath(path), message, severity: 'error' };
  };
  const header = checkHeader(parsed.value);
  if (header.kind === undefined) return header.problems.map(toDiagnostic);
  const validate = validators[header.kind];
  if (validate(parsed.value)) return header.problems.map(toDiagnostic);
  return [...header.problems, ...relevantErrors(validate.errors ?? []).map(describe)].map(toDiagnostic);
}

/** apiVersion and kind, checked first: without a kind there is no schema to check the rest against. */
function checkHeader(value: unknown): { kind?: Kind; problems: Problem[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [{ path: [], message: `a document must be a mapping with apiVersion and kind, not ${showValue(value)}`, atKey: false }] };
  }
  const { apiVersion, kind } = value as Record<string, unknown>;
  const problems: Problem[] = [];
  if (apiVersion === undefined) problems.push({ path: [], message: `missing required field 'apiVersion' (apiVersion: ${API_VERSION})`, atKey: false });
  else if (apiVersion !== API_VERSION)
    problems.push({ path: ['apiVersion'], message: `unsupported apiVersion ${showValue(apiVersion)}; this rmm reads ${API_VERSION}`, atKey: false });
  if (kind === undefined) {
    problems.push({ path: [], message: `missing required field 'kind' (${oneOfList([...KINDS])})`, atKey: false });
    return { problems };
  }
  if (typeof kind !== 'string' || !(KINDS as readonly string[]).includes(kind)) {
    const hint = typeof kind === 'string' ? didYouMean(kind, KINDS) : '';
    problems.push({ path: ['kind'], message: `unknown kind ${showValue(kind)}; must be ${oneOfList([...KINDS])}${hint}`, atKey: false });
    return { problems };
  }
  return { kind: kind as Kind, problems };
}

/**
 * Drops what would only repeat or obscure another message: the header (checked above), the failed branches
 * of a oneOf, a length limit next to the pattern that explains it, and a missing field that an unknown
 * field nearby is a misspelling of.
 */
function relevantErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const oneOfPaths = errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath);
  const patternPaths = new Set(errors.filter((e) => e.keyword === 'pattern' && e.propertyName === undefined).map((e) => e.instancePath));
  const misspelt = new Set(errors.map(misspeltField).filter((f) => f !== undefined));
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (e.keyword === 'if' || e.keyword === 'propertyNames') return false;
    if (e.instancePath === '' && e.keyword === 'required' && ['apiVersion', 'kind'].includes(String(e.params.missingProperty))) return false;
    if (e.instancePath === '/apiVersion' || e.instancePath === '/kind') return false;
    if (e.keyword !== 'oneOf' && oneOfPaths.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`))) return false;
    if ((e.keyword === 'minLength' || e.keyword === 'maxLength') && patternPaths.has(e.instancePath)) return false;
    if (e.keyword === 'required' && misspelt.has(`${e.instancePath}/${String(e.params.missingProperty)}`)) return false;
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** For an unknown field close to an allowed one, the pointer of the field it was meant to be. */
function misspeltField(err: ErrorObject): string | undefined {
  if (err.keyword !== 'additionalProperties') return undefined;
  const meant = closest(String(err.params.additionalProperty), allowedFields(err));
  return meant === undefined ? undefined : `${err.instancePath}/${meant}`;
}

function allowedFields(err: ErrorObject): string[] {
  return Object.keys((err.parentSchema as { properties?: object }).properties ?? {});
}

function describe(err: ErrorObject): Problem {
  const path = toPath(err.instancePath);
  const params = err.params as Record<string, unknown>;
  const got = showValue(err.data);
  const at = (message: string): Problem => ({ path, message, atKey: false });
  switch (err.keyword) {
    case 'additionalProperties':
      return unknownField(path, String(params.additionalProperty), allowedFields(err));
    case 'required':
      return { path, message: `missing required field '${String(params.missingProperty)}'`, atKey: path.length > 0 };
    case 'type':
      return at(`must be ${typeNames(String(params.type))}, not ${showTyped(err.data)}${quotingHint(String(params.type), err.data)}`);
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const hint = typeof err.data === 'string' ? didYouMean(err.data, allowed) : '';
      return at(`must be ${oneOfList(allowed)}, not ${got}${hint}`);
    }
    case 'const':
      return at(`must be ${showValue(params.allowedValue)}, not ${got}`);
    case 'pattern':
      return patternProblem(err, path);
    case 'minimum':
      return at(`must be at least ${String(params.limit)}, not ${got}`);
    case 'maximum':
      return at(`must be at most ${String(params.limit)}, not ${got}`);
    case 'exclusiveMinimum':
      return at(`must be more than ${String(params.limit)}, not ${got}`);
    case 'exclusiveMaximum':
      return at(`must be less than ${String(params.limit)}, not ${got}`);
    case 'minItems':
      return at(params.limit === 1 ? 'must not be an empty list' : `must have at least ${String(params.limit)} items`);
    case 'maxItems':
      return at(`must have at most ${String(params.limit)} items`);
    case 'uniqueItems':
      return repeatedItem(path, err.data as unknown[], params.i as number, params.j as number);
    case 'minLength':
      return at(params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long, not ${got}`);
    case 'maxLength':
      return at(`must be at most ${String(params.limit)} characters long, not ${(err.data as string).length}`);
    case 'oneOf':
      return at(`must be ${oneOfList(alternatives(err.parentSchema as SchemaNode))}, not ${got}`);
    default:
      return at(err.message ?? 'is not valid');
  }
}

function toPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function unknownField(path: (string | number)[], name: string, allowed: readonly string[]): Problem {
  const here = [...path, name];
  if (SECRET_KEYS.has(name.toLowerCase())) {
    const message = `'${name}' is not allowed: secrets never appear in the file; use auth.keyFile, auth.keyEnv or auth.agent, and auth.passphraseEnv`;
    return { path: here, message, atKey: true };
  }
  const hint = closest(name, allowed);
  const help = hint ? ` (did you mean '${hint}'?)` : allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : '';
  return { path: here, message: `unknown field '${name}'${help}`, atKey: true };
}

/** ajv reports the pair in either order depending on the item type; the later one is the repeat. */
function repeatedItem(path: (string | number)[], list: readonly unknown[], i: number, j: number): Problem {
  const [first, repeat] = i < j ? [i, j] : [j, i];
  return { path: [...path, repeat], message: `${showValue(list[repeat])} is already listed as item ${first}`, atKey: false };
}

function patternProblem(err: ErrorObject, path: (string | number)[]): Problem {
  const pattern = String((err.params as { pattern: string }).pattern);
  const def = /#\/\$defs\/([A-Za-z]+)\/pattern$/.exec(err.schemaPath)?.[1];
  const described = def === undefined ? undefined : defs()[def]?.description;
  const meaning = described ? lowerArticle(described.replace(/\.$/, '')) : (INLINE_PATTERN_MEANINGS[pattern] ?? `text matching ${pattern}`);
  if (err.propertyName !== undefined) {
    return { path: [...path, err.propertyName], message: `${showValue(err.propertyName)} is not ${meaning}`, atKey: true };
  }
  const flaw = def === 'Name' && typeof err.data === 'string' ? nameFlaw(err.data) : '';
  // A webhook's URL may carry a token: never shown.
  if (path.at(-1) === 'url') return { path, message: `is not ${meaning}`, atKey: false };
  return { path, message: `${showValue(err.data)} is not ${meaning}${flaw}`, atKey: false };
}

/** What is wrong with a name, since the rule that it breaks is long. */
function nameFlaw(name: string): string {
  const flaws: string[] = [];
  if (name.length > 63) flaws.push(`${name.length} characters`);
  if (/[A-Z]/.test(name)) flaws.push('upper-case letters');
  const odd = [...new Set(name.replace(/[A-Za-z0-9-]/g, ''))].map((c) => showValue(c));
  if (odd.length > 0) flaws.push(oneOfList(odd).replace(/ or /, ' and '));
  if (/^-|-$/.test(name)) flaws.push("a '-' at an end");
  return flaws.length > 0 ? `; it has ${flaws.join(', ')}` : '';
}

/** What each branch of a oneOf accepts, in a few words: true, a path on the machine that runs rmm. */
function alternatives(node: SchemaNode): string[] {
  return (node.oneOf ?? []).map((branch) => {
    if ('const' in branch) return showValue(branch.const);
    if (branch.$ref) return lowerArticle(shortDescription(defs()[branch.$ref.replace('#/$defs/', '')]));
    if (branch.type) return typeNames(String(branch.type));
    return 'another form';
  });
}

/** The description of a schema node up to its first ':', ';' or end of sentence. */
function shortDescription(node: SchemaNode | undefined): string {
  const text = node?.description ?? 'a value of another form';
  return (/^[^:;]*?(?=[:;]|\.(\s|$)|$)/.exec(text)?.[0] ?? text).trim();
}

function lowerArticle(s: string): string {
  return /^(A|An) /.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

function typeNames(types: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
    null: 'null',
  };
  return oneOfList(types.split(',').map((t) => names[t] ?? t));
}

/** YAML reads 3 and true as a number and a boolean unless quoted, and '22' as a string when quoted. */
function quotingHint(expected: string, data: unknown): string {
  const types = expected.split(',');
  if (types.includes('string') && (typeof data === 'number' || typeof data === 'boolean')) return ` (write "${String(data)}" in quotes)`;
  if (typeof data !== 'string') return '';
  const numeric = /^-?\d+(\.\d+)?$/.test(data) && (types.includes('integer') || types.includes('number'));
  const boolean = /^(true|false)$/.test(data) && types.includes('boolean');
  return numeric || boolean ? ' (remove the quotes)' : '';
}
