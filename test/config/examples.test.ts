import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/run.js';
import { expectOutput } from '../support/json-contract.js';
import { captureIo } from '../support/io.js';

const examplesDir = path.resolve(import.meta.dirname, '../../examples');
const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));

describe('examples', () => {
  it('has the examples the README promises', () => {
    expect(examples).toEqual(
      expect.arrayContaining(['migration-p2v.yaml', 'dr-ipremap-asm.yaml', 'cluster-to-one.yaml', 'backup-recovery-points.yaml']),
    );
  });

  it.each(examples)('rmm validate -f examples/%s exits 0 with no warnings', async (name) => {
    const io = captureIo();
    const code = await main(['validate', '-f', path.join(examplesDir, name)], io);
    expect(io.stderrText()).toBe('');
    expect(code).toBe(0);
  });

  it('reads a directory as one estate, so separate estates in it clash on their Defaults', async () => {
    const io = captureIo();
    const code = await main(['validate', '-f', examplesDir, '-o', 'json'], io);
    const result = expectOutput('validate', io.stdoutText()) as { valid: boolean; diagnostics: { message: string }[] };
    expect(code).toBe(2);
    expect(result.valid).toBe(false);
    expect(result.diagnostics.some((d) => d.message.startsWith('only one Defaults document is allowed'))).toBe(true);
  });

  it('starts every example with the schema line editors read', async () => {
    const { readFile } = await import('node:fs/promises');
    for (const name of examples) {
      const text = await readFile(path.join(examplesDir, name), 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../schemas/rmm.schema.json');
    }
  });
});
