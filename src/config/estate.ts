import { fieldPath, type Diagnostic } from './diagnostics.js';
import { positionOf, type ParsedDocument } from './parse.js';
import type {
  DefaultsDocument,
  EnvironmentDocument,
  OriginDocument,
  PolicyDocument,
  ReplicaDocument,
} from './schema-types.js';

/** A schema-valid document together with where it was written. */
export interface Declared<T> {
  readonly parsed: ParsedDocument;
  readonly doc: T;
}

/** The documents of all files, indexed by kind and name. */
export interface Estate {
  readonly defaults?: Declared<DefaultsDocument>;
  readonly origins: ReadonlyMap<string, Declared<OriginDocument>>;
  readonly environments: ReadonlyMap<string, Declared<EnvironmentDocument>>;
  readonly policies: ReadonlyMap<string, Declared<PolicyDocument>>;
  readonly replicas: ReadonlyMap<string, Declared<ReplicaDocument>>;
  /** Names of documents that failed the schema: references to them are not reported as dangling. */
  readonly invalidNames: ReadonlySet<string>;
}

type AnyDocument = DefaultsDocument | OriginDocument | EnvironmentDocument | PolicyDocument | ReplicaDocument;

/** A diagnostic at a field of a declared document. */
export function diagnosticAt(
  where: Declared<unknown>,
  path: readonly (string | number)[],
  message: string,
  severity: Diagnostic['severity'] = 'error',
  atKey = false,
): Diagnostic {
  const { line, column } = positionOf(where.parsed, path, atKey);
  return { file: where.parsed.source.name, line, column, field: fieldPath(path), message, severity };
}

export function describeLocation(where: Declared<unknown>): string {
  const { line } = positionOf(where.parsed, []);
  return `${where.parsed.source.name}:${line}`;
}

/** `Kind/name` of a document that failed the schema, when it has a readable name at all. */
export function nameOf(value: unknown): string | undefined {
  const doc = value as { kind?: unknown; metadata?: { name?: unknown } } | null;
  if (typeof doc?.kind !== 'string' || typeof doc.metadata?.name !== 'string') return undefined;
  return `${doc.kind}/${doc.metadata.name}`;
}

export function indexDocuments(
  parsed: readonly ParsedDocument[],
  invalidNames: ReadonlySet<string> = new Set(),
): { estate: Estate; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  let defaults: Declared<DefaultsDocument> | undefined;
  const byKind = {
    Origin: new Map<string, Declared<OriginDocument>>(),
    Environment: new Map<string, Declared<EnvironmentDocument>>(),
    Policy: new Map<string, Declared<PolicyDocument>>(),
    Replica: new Map<string, Declared<ReplicaDocument>>(),
  };
  for (const p of parsed) {
    const doc = p.value as AnyDocument;
    const where = { parsed: p, doc };
    if (doc.kind === 'Defaults') {
      if (defaults) {
        diagnostics.push(
          diagnosticAt(where, ['kind'], `only one Defaults document is allowed; another is at ${describeLocation(defaults)}`),
        );
      } else defaults = where as Declared<DefaultsDocument>;
      continue;
    }
    const map = byKind[doc.kind] as Map<string, Declared<AnyDocument>>;
    const name = doc.metadata.name;
    const earlier = map.get(name);
    if (earlier) {
      diagnostics.push(
        diagnosticAt(where, ['metadata', 'name'], `duplicate ${doc.kind} name '${name}'; it is also defined at ${describeLocation(earlier)}`),
      );
      continue;
    }
    map.set(name, where);
  }
  return {
    estate: {
      ...(defaults ? { defaults } : {}),
      origins: byKind.Origin,
      environments: byKind.Environment,
      policies: byKind.Policy,
      replicas: byKind.Replica,
      invalidNames,
    },
    diagnostics,
  };
}
