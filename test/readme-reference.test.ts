import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

it('README.md carries the configuration reference generated from the schema', () => {
  expect(() => execFileSync(process.execPath, ['scripts/gen-reference.mjs', '--check'], { cwd: root, stdio: 'pipe' })).not.toThrow();
});
