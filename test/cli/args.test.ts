import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectError, expectOutput } from '../support/json-contract.js';
import { rmm } from '../support/cli.js';

describe('the command line', () => {
  it('refuses a stray argument with usage and exit 2, before reading any file', async () => {
    const { code, err } = await rmm('plan', '-f', 'examples/migration-p2v.yaml', 'extra-arg');
    expect(code).toBe(2);
    expect(err).toContain("rmm plan: unexpected argument 'extra-arg' (files go after -f)");
    expect(err).toContain('Usage: rmm plan');
    expect((await rmm('validate', '-f', 'examples/migration-p2v.yaml', 'a', 'b')).err).toContain("unexpected arguments 'a' 'b'");
    expect((await rmm('validate', '-f', 'examples/migration-p2v.yaml')).code).toBe(0);
  });
});

describe('the command line forgives a typo by naming what was meant', () => {
  it.each([
    [['pln'], "rmm: unknown command 'pln' (did you mean 'plan'?)"],
    [['valdate', '-f', 'x.yaml'], "rmm: unknown command 'valdate' (did you mean 'validate'?)"],
    [['--verison'], "rmm: unknown option '--verison' (did you mean '--version'?)"],
    [['plan', '--fiel', 'x.yaml'], "rmm plan: unknown option '--fiel' (did you mean '--file'?)"],
    [['apply', '--yes', '--plna', 'saved.json'], "rmm apply: unknown option '--plna' (did you mean '--plan'?)"],
    [['plan', '-f'], "rmm plan: option '-f, --file <value>' needs a value"],
  ])('rmm %j: exit 2 and %s', async (args, first) => {
    const { code, out, err } = await rmm(...args);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err.split('\n')[0]).toBe(first);
  });

  it('suggests the replica meant by --sync-now', async () => {
    const { code, err } = await rmm('plan', '-f', 'examples/migration-p2v.yaml', '--sync-now', 'db-01-mv');
    expect(code).toBe(2);
    expect(err).toMatch(/--sync-now: no replica named 'db-01-mv' \(did you mean 'db-01-vm'\?\)/);
  });

  it('says a usage error as JSON under -o json', async () => {
    for (const args of [['plan', '-o', 'json', '--fiel', 'x.yaml'], ['pln', '-o', 'json']]) {
      const { code, err } = await rmm(...args);
      expect(code).toBe(2);
      expect(expectError(err)).toMatchObject({ code: 'cli.usage', message: expect.stringMatching(/did you mean/) });
    }
  });

  it('says a configuration error as one JSON line under -o json, before connecting anywhere', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rmm-args-')), 'bad.yaml');
    writeFileSync(file, readFileSync('examples/migration-p2v.yaml', 'utf8').replace('kind: Origin', 'kind: Origni'));
    const { code, out, err } = await rmm('plan', '-f', file, '-o', 'json');
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(expectError(err)).toMatchObject({ code: 'config.invalid' });
  });

  it('prints the version for --version and -V, and takes -y for --yes', async () => {
    expect((await rmm('--version')).out).toMatch(/^rmm \d+\.\d+\.\d+/);
    expect((await rmm('-V')).code).toBe(0);
    expect(expectOutput('version', (await rmm('version', '-o', 'json')).out)).toMatchObject({ formatVersion: 1, apiVersion: 'rmm/v1' });
    expect((await rmm('apply', '--help')).out).toContain('-y, --yes');
  });

  it('says what watch does, and refuses what it cannot watch before starting', async () => {
    const help = await rmm('watch', '--help');
    expect(help.out).toContain('an invalid one is reported (file:line) and the last valid configuration');
    expect((await rmm('watch')).err).toContain('watch needs at least one -f FILE');
    const stdin = await rmm('watch', '-f', '-');
    expect(stdin.code).toBe(2);
    expect(stdin.err).toContain('not - (stdin)');
    expect((await rmm('watch', '-f', 'examples/migration-p2v.yaml', '--parallelism', '0')).code).toBe(2);
  });
});
