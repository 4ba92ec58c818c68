import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const src = path.resolve(import.meta.dirname, '../src');

/** Every .ts file under src, generated validators aside. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.includes('validator') ? [p] : [];
  });
}

it('every error code rmm gives has one style: area.what_went_wrong', () => {
  const codes = new Map<string, string>();
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    // The code is the first argument of an error's constructor, or of super() in an error class
    // (a first argument with spaces is a message: UsageError's).
    for (const m of text.matchAll(/(?:new [A-Z][A-Za-z]*Error\(|super\()\s*'([^'\s]+)'/g)) codes.set(m[1]!, path.relative(src, file));
    // ... or a code given in place of an error's (an event's, a record's).
    for (const m of text.matchAll(/\bcode: (?:[^,}]*\? [^,}]* : )?'([^'\s]+)'/g)) codes.set(m[1]!, path.relative(src, file));
  }
  expect(codes.size).toBeGreaterThan(40);
  const odd = [...codes].filter(([code]) => !/^[a-z]+\.[a-z]+(?:_[a-z]+)*$/.test(code));
  expect(odd).toEqual([]);
});
