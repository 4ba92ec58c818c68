/**
 * Each test/fixtures/invalid/NAME.yaml is a broken configuration, and NAME.expected holds, line for line,
 * what `rmm validate -f NAME.yaml` prints on stderr (the diagnostics, then the summary line).
 *
 * File names: the test passes the fixture's absolute path and removes the fixtures folder from the
 * output, so expectations read `NAME.yaml:line:column: field: message` whatever the working directory.
 *
 * After a deliberate change of wording, rewrite the expectations with
 *   UPDATE_FIXTURES=1 npx vitest run test/config/invalid-fixtures.test.ts
 * and read the diff line by line, as the operator who will see it.
 *
 * binary-png.yaml (a PNG header: NUL bytes) and invalid-utf8.yaml (a Latin-1 é) hold bytes an editor
 * would mangle; they were written with `node -e "fs.writeFileSync(..., Buffer.from([...]))"`.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/run.js';
import { captureIo } from '../support/io.js';

const fixturesDir = path.resolve(import.meta.dirname, '../fixtures/invalid');
const fixtures = readdirSync(fixturesDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const update = process.env.UPDATE_FIXTURES === '1';

async function validate(name: string): Promise<{ code: number; lines: string[] }> {
  const io = captureIo();
  const code = await main(['validate', '-f', path.join(fixturesDir, name)], io);
  const stderr = io.stderrText().split(`${fixturesDir}${path.sep}`).join('');
  return { code, lines: stderr.split('\n').filter((line) => line !== '') };
}

function expectedOf(name: string): string[] {
  const text = readFileSync(path.join(fixturesDir, name.replace(/\.yaml$/, '.expected')), 'utf8');
  return text.split('\n').filter((line) => line !== '');
}

describe('invalid configuration fixtures', () => {
  it('has at least 45 fixtures, each with its expectation', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(45);
    const expectations = readdirSync(fixturesDir).filter((f) => f.endsWith('.expected'));
    expect(expectations.map((f) => f.replace(/\.expected$/, '.yaml')).sort()).toEqual(fixtures);
  });

  it.each(fixtures)('rmm validate -f %s prints the expected errors and exits 2', async (name) => {
    const { code, lines } = await validate(name);
    if (update) writeFileSync(path.join(fixturesDir, name.replace(/\.yaml$/, '.expected')), `${lines.join('\n')}\n`);
    expect(lines).toEqual(expectedOf(name));
    expect(code).toBe(2);
  });
});
