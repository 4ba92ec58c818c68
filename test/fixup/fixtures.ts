import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { FixupResult } from '../../src/fixup/types.js';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'fixup');

export function readFixture(format: string, file: string): string {
  return readFileSync(join(FIXTURES, format, file), 'utf8');
}

/**
 * What a user checks on a fixed-up file: the whole output is the reviewed `.expected` file beside the
 * input; every line no change names is byte-identical to the input; every change says why; and a
 * second run changes nothing. `RMM_UPDATE_EXPECTED=1` writes the `.expected` files for review.
 */
export function expectFixture(format: string, file: string, transform: (text: string) => FixupResult): FixupResult {
  const input = readFixture(format, file);
  const result = transform(input);
  if (result.kind === 'unparsable') throw new Error(`${file}: unparsable at line ${result.line}: ${result.problem}`);
  const expectedPath = join(FIXTURES, format, `${file}.expected`);
  if (process.env.RMM_UPDATE_EXPECTED === '1') writeFileSync(expectedPath, result.text);
  if (!existsSync(expectedPath)) throw new Error(`${file}: no ${file}.expected yet (RMM_UPDATE_EXPECTED=1 writes it for review)`);
  expect(result.text).toBe(readFileSync(expectedPath, 'utf8'));

  const changed = new Map(result.kind === 'changed' ? result.changes.map((c) => [c.line, c]) : []);
  const rebuilt = input.split('\n').map((line, i) => {
    const change = changed.get(i + 1);
    if (!change) return line;
    expect(change.before).toBe(line);
    expect(change.reason.length).toBeGreaterThan(0);
    return change.after;
  });
  expect(rebuilt.join('\n')).toBe(result.text);

  const again = transform(result.text);
  expect(again).toEqual({ kind: 'unchanged', text: result.text });
  return result;
}
