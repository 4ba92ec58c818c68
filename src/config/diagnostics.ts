import { InputError } from '../errors.js';

/** One problem found in the configuration, pinned to where the user wrote it. */
export interface Diagnostic {
  readonly file: string;
  /** 1-based; 0 when the problem concerns the whole file. */
  readonly line: number;
  readonly column: number;
  /** The dotted path of the field, e.g. `spec.ipRemap.networks[0].from`; empty for syntax errors. */
  readonly field: string;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  const prefix = d.severity === 'warning' ? 'warning: ' : '';
  return d.field ? `${where}: ${d.field}: ${prefix}${d.message}` : `${where}: ${prefix}${d.message}`;
}

export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.message.localeCompare(b.message),
  );
}

/** The configuration is invalid; carries every problem found, sorted by position. */
export class ConfigError extends InputError {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    super('config.invalid', `${errors.length} problem${errors.length === 1 ? '' : 's'} in the configuration`);
    this.diagnostics = sortDiagnostics(diagnostics);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), diagnostics: this.diagnostics };
  }
}

/** A short, single-line rendering of a user's value for messages: 'text', 42, true, null, a list, a mapping. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const clipped = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(clipped).replace(/^"|"$/g, "'");
  }
  if (typeof value === 'object') return Array.isArray(value) ? 'a list' : 'a mapping';
  return String(value);
}

/** Like showValue, but says the type of a scalar too, for type mismatches: the string '22', the number 3. */
export function showTyped(value: unknown): string {
  if (typeof value === 'string') return `the string ${showValue(value)}`;
  if (typeof value === 'number') return `the number ${showValue(value)}`;
  if (typeof value === 'boolean') return `the boolean ${showValue(value)}`;
  return showValue(value);
}

/** 'a', 'a or b', 'a, b or c'. */
export function oneOfList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]!}`;
}

export function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
