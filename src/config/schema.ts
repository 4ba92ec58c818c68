import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { fieldPath, showValue, type Diagnostic } from './diagnostics.js';
import { positionOf, type ParsedDocument } from './parse.js';
import { didYouMean } from './suggest.js';

export const SCHEMA_URL = new URL('../../schemas/rmm.schema.json', import.meta.url);
export const API_VERSION = 'rmm/v1';
export const KINDS = ['Defaults', 'Origin', 'Environment', 'Policy', 'Replica'] as const;
export type Kind = (typeof KINDS)[number];

/** Keys people reach for to put a secret inline; the language has none on purpose. */
const SECRET_KEYS = new Set(['password', 'passwd', 'privatekey', 'private_key', 'key', 'passphrase', 'secret', 'token']);

interface SchemaNode {
  description?: string;
  $ref?: string;
  [key: string]: unknown;
}

let validators: Map<Kind, ValidateFunction> | undefined;
let schemaDefs: Record<string, SchemaNode> = {};

function load(): Map<Kind, ValidateFunction> {
  if (validators) return validators;
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $id: string; $defs: Record<string, SchemaNode> };
  schemaDefs = schema.$defs;
  const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
  ajv.addSchema(schema);
  validators = new Map(
    KINDS.map((kind) => [kind, ajv.getSchema(`${schema.$id}#/$defs/${kind}Document`)!] as const),
  );
  return validators;
}

/** Checks one document against the schema; returns every problem, pinned to the text. */
export function validateDocument(parsed: ParsedDocument): Diagnostic[] {
  const value = parsed.value;
  const out: Diagnostic[] = [];
  const report = (path: (string | number)[], message: string, atKey = false): void => {
    const { line, column } = positionOf(parsed, path, atKey);
    out.push({ file: parsed.source.name, line, column, field: fieldPath(path), message, severity: 'error' });
  };

  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    report([], `a document must be a mapping with apiVersion and kind, not ${showValue(value)}`);
    return out;
  }
  const header = value as Record<string, unknown>;
  if (header.apiVersion === undefined) report([], "missing required field 'apiVersion' (use apiVersion: rmm/v1)");
  else if (header.apiVersion !== API_VERSION)
    report(['apiVersion'], `unsupported apiVersion ${showValue(header.apiVersion)}; this rmm reads ${API_VERSION}`);
  if (header.kind === undefined) {
    report([], `missing required field 'kind' (one of ${KINDS.join(', ')})`);
    return out;
  }
  if (typeof header.kind !== 'string' || !(KINDS as readonly string[]).includes(header.kind)) {
    report(['kind'], `unknown kind ${showValue(header.kind)}; must be one of ${KINDS.join(', ')}${didYouMean(String(header.kind), KINDS)}`);
    return out;
  }
  const validate = load().get(header.kind as Kind)!;
  if (validate(value)) return out;
  for (const err of relevantErrors(validate.errors ?? [])) {
    if (err.keyword === 'const' && err.instancePath === '/apiVersion') continue; // reported above
    const { path, message, atKey } = describe(err);
    report(path, message, atKey);
  }
  return out;
}

function toPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Drops the noise of alternatives: inside a failed oneOf, only the oneOf itself is reported. */
function relevantErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf').map((e) => e.schemaPath);
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (e.keyword === 'if' || e.keyword === 'propertyNames') return false;
    if (e.keyword !== 'oneOf' && oneOfs.some((p) => e.schemaPath.startsWith(`${p}/`))) return false;
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function describe(err: ErrorObject): { path: (string | number)[]; message: string; atKey: boolean } {
  const path = toPath(err.instancePath);
  const params = err.params as Record<string, unknown>;
  const got = showValue(err.data);
  switch (err.keyword) {
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      const allowed = Object.keys((err.parentSchema as { properties?: object }).properties ?? {});
      if (SECRET_KEYS.has(name.toLowerCase()))
        return {
          path: [...path, name],
          message: `'${name}' is not allowed: secrets never appear in the file; use auth.keyFile, auth.keyEnv or auth.agent, and auth.passphraseEnv`,
          atKey: true,
        };
      return { path: [...path, name], message: `unknown field '${name}'${didYouMean(name, allowed)}`, atKey: true };
    }
    case 'required':
      return { path, message: `missing required field '${String(params.missingProperty)}'`, atKey: path.length > 0 };
    case 'type':
      return { path, message: `must be ${article(String(params.type))}, not ${typeName(err.data)} ${got}`.replace(/ (a list|a mapping|null)$/, ''), atKey: false };
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      return { path, message: `must be one of ${allowed.join(', ')}, not ${got}${didYouMean(String(err.data), allowed)}`, atKey: false };
    }
    case 'const':
      return { path, message: `must be ${showValue(params.allowedValue)}, not ${got}`, atKey: false };
    case 'pattern':
      return { path, message: `${got} is not ${patternMeaning(err)}`, atKey: false };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { path, message: `must be ${String(params.comparison)} ${String(params.limit)}, not ${got}`, atKey: false };
    case 'minItems':
      return { path, message: `must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`, atKey: false };
    case 'maxItems':
      return { path, message: `must have at most ${String(params.limit)} items`, atKey: false };
    case 'uniqueItems':
      return { path: [...path, params.i as number], message: `repeats item ${String(params.j)}: ${showValue((err.data as unknown[])[params.i as number])}`, atKey: false };
    case 'minLength':
      return { path, message: params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters, not ${got}`, atKey: false };
    case 'maxLength':
      return { path, message: `must be at most ${String(params.limit)} characters long`, atKey: false };
    case 'oneOf':
      return { path, message: `${got} is not ${lowerFirst(describeSchema(err.parentSchema as SchemaNode) ?? 'an allowed value')}`, atKey: false };
    default:
      return { path, message: err.message ?? 'is not valid', atKey: false };
  }
}

function patternMeaning(err: ErrorObject): string {
  const ref = /#\/\$defs\/([A-Za-z]+)\/pattern$/.exec(err.schemaPath)?.[1];
  const description = ref ? schemaDefs[ref]?.description : describeSchema(err.parentSchema as SchemaNode);
  if (err.instancePath.includes('/labels/') || err.propertyName !== undefined) return 'a valid label name';
  return description ? lowerFirst(description).replace(/\.$/, '') : `matching ${String((err.params as { pattern: string }).pattern)}`;
}

function describeSchema(node: SchemaNode | undefined): string | undefined {
  if (!node) return undefined;
  if (node.description) return firstSentence(node.description);
  if (node.$ref) return describeSchema(schemaDefs[node.$ref.replace('#/$defs/', '')]);
  return undefined;
}

function firstSentence(text: string): string {
  return (/^[^.]*(?:\.(?=\S)[^.]*)*/.exec(text)?.[0] ?? text).trim();
}

function lowerFirst(s: string): string {
  return /^(A|An) /.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

function article(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
    null: 'null',
  };
  return type
    .split(',')
    .map((t) => names[t] ?? t)
    .join(' or ');
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return Number.isInteger(value) ? 'the number' : 'the number';
  if (typeof value === 'boolean') return 'the boolean';
  return 'the string';
}
