import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { AddressRemap } from '../../src/fixup/remap.js';
import type { IpRemap } from '../../src/config/spec.js';
import type { FixupResult, NicIdentity } from '../../src/fixup/types.js';

export type Transform = (text: string, remap: AddressRemap, nics: NicIdentity) => FixupResult;

/** One fixture file run through a transform with one remap; `expected` is the file beside it that holds the whole output. */
export interface FixtureCase {
  readonly file: string;
  readonly expected: string;
  readonly remap: IpRemap;
  readonly nics?: { names?: Record<string, string>; macs?: Record<string, string | undefined> };
}

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'fixup');

export function nicIdentity(nics: FixtureCase['nics']): NicIdentity {
  return { names: new Map(Object.entries(nics?.names ?? {})), macs: new Map(Object.entries(nics?.macs ?? {})) };
}

/**
 * Runs a fixture and checks what an operator would: the whole output is the expected file; every line
 * no change names is byte-identical (the output is the input with exactly the changed lines replaced);
 * each change says why; and a second run changes nothing. `RMM_UPDATE_FIXTURES=1` writes a missing
 * expected file, to be read and checked by a person before it is committed.
 */
export function checkFixture(format: string, transform: Transform, c: FixtureCase): FixupResult {
  const input = readFileSync(join(FIXTURES, format, c.file), 'utf8');
  const remap = new AddressRemap(c.remap);
  const nics = nicIdentity(c.nics);
  const result = transform(input, remap, nics);
  expect(result.kind, result.kind === 'unparsable' ? result.problem : '').not.toBe('unparsable');
  if (result.kind === 'unparsable') return result;
  const expectedPath = join(FIXTURES, format, c.expected);
  if (process.env.RMM_UPDATE_FIXTURES === '1' && !existsSync(expectedPath)) writeFileSync(expectedPath, result.text);
  expect(result.text).toBe(readFileSync(expectedPath, 'utf8'));
  expectOnlyChangedLines(input, result);
  const again = transform(result.text, remap, nics);
  expect(again.kind === 'changed' ? again.changes : []).toEqual([]);
  expect(again.kind).toBe('unchanged');
  return result;
}

/** The output must be the input with the changed lines, and only those, replaced. */
export function expectOnlyChangedLines(input: string, result: FixupResult): void {
  if (result.kind !== 'changed') {
    if (result.kind === 'unchanged') expect(result.text).toBe(input);
    return;
  }
  const pieces = input.split(/(\r?\n)/);
  const byLine = new Map(result.changes.map((c) => [c.line, c]));
  for (const change of result.changes) {
    expect(pieces[(change.line - 1) * 2], `line ${change.line} before`).toBe(change.before);
    expect(change.reason, `line ${change.line} reason`).not.toBe('');
  }
  const rebuilt = pieces.map((piece, i) => (i % 2 === 0 ? (byLine.get(i / 2 + 1)?.after ?? piece) : piece)).join('');
  expect(rebuilt).toBe(result.text);
}
