import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { INLINE_PATTERN_MEANINGS, SCHEMA_URL } from '../../src/config/schema.js';

const root = path.resolve(import.meta.dirname, '../..');
const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $defs: Record<string, Record<string, unknown>> };

/** Every `pattern` in the schema, with the JSON pointer where it is written. */
function patterns(node: unknown, at = ''): { at: string; pattern: string }[] {
  if (typeof node !== 'object' || node === null) return [];
  const own = typeof (node as { pattern?: unknown }).pattern === 'string' ? [{ at, pattern: (node as { pattern: string }).pattern }] : [];
  return [...own, ...Object.entries(node).flatMap(([key, child]) => patterns(child, `${at}/${key}`))];
}

describe('schema and generated types', () => {
  it('src/config/schema-types.ts is what scripts/gen-types.mjs makes of the schema', async () => {
    const run = promisify(execFile)(process.execPath, ['scripts/gen-types.mjs', '--check'], { cwd: root });
    await expect(run).resolves.toBeDefined();
  });

  it('src/config/schema-validators.ts is what scripts/gen-validators.mjs compiles of the schema', async () => {
    const run = promisify(execFile)(process.execPath, ['scripts/gen-validators.mjs', '--check'], { cwd: root });
    await expect(run).resolves.toBeDefined();
  });

  it('describes every $defs entry that has a pattern, since messages quote the description', () => {
    const undescribed = Object.entries(schema.$defs)
      .filter(([, def]) => typeof def.pattern === 'string' && typeof def.description !== 'string')
      .map(([name]) => name);
    expect(undescribed).toEqual([]);
  });

  it('explains every other pattern in src/config/schema.ts, so no message shows a regular expression', () => {
    const describedDef = (at: string): boolean => {
      const name = /^\/\$defs\/([^/]+)$/.exec(at)?.[1];
      return name !== undefined && typeof schema.$defs[name]?.description === 'string';
    };
    const unexplained = patterns(schema)
      .filter(({ at, pattern }) => !describedDef(at) && INLINE_PATTERN_MEANINGS[pattern] === undefined)
      .map(({ at }) => at);
    expect(unexplained).toEqual([]);
  });
});
