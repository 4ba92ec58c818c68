import { ConfigError, sortDiagnostics, type Diagnostic } from './diagnostics.js';
import { indexDocuments, nameOf } from './estate.js';
import { parseSource, type ParsedDocument } from './parse.js';
import { resolveEstate } from './resolve.js';
import { validateDocument } from './schema.js';
import { checkEstate } from './semantic.js';
import { readSources, type SourceFile } from './source.js';
import type { Spec } from './spec.js';

export interface LoadResult {
  /** Present only when there is no error. */
  readonly spec?: Spec;
  /** Errors and warnings, sorted by file and position. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Parses, validates and resolves configuration text. Pure: touches no host. */
export function loadSources(files: readonly SourceFile[], readProblems: readonly Diagnostic[] = []): LoadResult {
  const diagnostics: Diagnostic[] = [...readProblems];
  const valid: ParsedDocument[] = [];
  const invalidNames = new Set<string>();
  for (const file of files) {
    const parsed = parseSource(file);
    diagnostics.push(...parsed.diagnostics);
    for (const name of parsed.brokenNames) invalidNames.add(name);
    for (const doc of parsed.documents) {
      const problems = validateDocument(doc);
      diagnostics.push(...problems);
      if (problems.length === 0) valid.push(doc);
      else {
        const name = nameOf(doc.value);
        if (name) invalidNames.add(name);
      }
    }
  }
  const { estate, diagnostics: indexProblems } = indexDocuments(valid, invalidNames);
  diagnostics.push(...indexProblems, ...checkEstate(estate));
  const sorted = sortDiagnostics(diagnostics);
  if (sorted.some((d) => d.severity === 'error')) return { diagnostics: sorted };
  return { spec: resolveEstate(estate, files.map((f) => f.name)), diagnostics: sorted };
}

/** Reads `-f` arguments and loads them; throws ConfigError with every problem when invalid. */
export async function loadSpec(args: readonly string[]): Promise<{ spec: Spec; warnings: readonly Diagnostic[] }> {
  const { files, diagnostics } = await readSources(args);
  const result = loadSources(files, diagnostics);
  if (!result.spec) throw new ConfigError(result.diagnostics);
  return { spec: result.spec, warnings: result.diagnostics };
}
