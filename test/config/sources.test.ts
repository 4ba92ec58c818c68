import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/run.js';
import { loadSources } from '../../src/config/load.js';
import { MAX_FILE_BYTES, readSources } from '../../src/config/source.js';
import { expectOutput } from '../support/json-contract.js';
import { captureIo } from '../support/io.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures');
const splitEstate = path.join(fixtures, 'estate-split');

async function validate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo();
  const code = await main(['validate', ...args], io);
  return { code, stdout: io.stdoutText(), stderr: io.stderrText() };
}

describe('rmm validate -f DIR', () => {
  it('reads every *.yaml and *.yml file of the folder as one estate', async () => {
    const { code, stdout, stderr } = await validate('-f', splitEstate, '-o', 'json');
    const result = expectOutput('validate', stdout) as { valid: boolean; files: string[]; replicas: string[] };
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result.files.map((f) => path.basename(f))).toEqual([
      '00-defaults.yaml',
      '10-origins.yaml',
      '20-environments.yaml',
      '30-policies.yaml',
      '40-replicas.yml',
    ]);
    expect(result.replicas).toEqual(['db-01-dr', 'web-01-dr', 'web-02-dr']);
  });

  describe('with a copy of the estate', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'rmm-estate-'));
      await cp(splitEstate, dir, { recursive: true });
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('points a name defined in two files at the later file, naming the first', async () => {
      await writeFile(
        path.join(dir, '50-more.yaml'),
        'apiVersion: rmm/v1\nkind: Origin\nmetadata:\n  name: web-02\nspec:\n  address: 10.1.2.13\n',
      );
      const { code, stderr } = await validate('-f', dir);
      expect(stderr.split(`${dir}${path.sep}`).join('')).toBe(
        "50-more.yaml:4:9: metadata.name: duplicate Origin name 'web-02'; it is also defined at 10-origins.yaml:9\n" +
          '1 error; nothing was changed\n',
      );
      expect(code).toBe(2);
    });

    it('reports a folder without YAML files', async () => {
      const empty = await mkdtemp(path.join(dir, 'empty-'));
      const { code, stderr } = await validate('-f', empty);
      expect(stderr).toContain(`${empty}: the directory holds no *.yaml files`);
      expect(code).toBe(2);
    });
  });
});

describe('input limits', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rmm-limits-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('refuses a file over the size limit without parsing it', async () => {
    const big = path.join(dir, 'big.yaml');
    await writeFile(big, Buffer.alloc(MAX_FILE_BYTES + 1, '#'));
    const { code, stderr } = await validate('-f', big);
    expect(stderr).toBe(
      `${big}: the file is ${MAX_FILE_BYTES + 1} bytes; the limit is ${MAX_FILE_BYTES} bytes\n1 error; nothing was changed\n`,
    );
    expect(code).toBe(2);
  });

  it('accepts a file at the size limit', async () => {
    const origin = 'apiVersion: rmm/v1\nkind: Origin\nmetadata: { name: web-01 }\nspec: { address: 10.1.2.11 }\n';
    const padded = origin + '#'.repeat(MAX_FILE_BYTES - origin.length - 1) + '\n';
    const { files, diagnostics } = await readSources([await writeTemp(dir, 'limit.yaml', padded)]);
    expect(diagnostics).toEqual([]);
    expect(files).toHaveLength(1);
  });

  it('refuses stdin over the size limit', async () => {
    const { files, diagnostics } = await readSources(['-'], { stdin: Readable.from([Buffer.alloc(MAX_FILE_BYTES + 1, '#')]) });
    expect(files).toEqual([]);
    expect(diagnostics.map((d) => `${d.file}: ${d.message}`)).toEqual([`<stdin>: the input is longer than the limit of ${MAX_FILE_BYTES} bytes`]);
  });

  it('names a missing file in the words of ls', async () => {
    const { code, stderr } = await validate('-f', path.join(dir, 'nope.yaml'));
    expect(stderr).toContain(`${path.join(dir, 'nope.yaml')}: cannot read: no such file or directory`);
    expect(code).toBe(2);
  });
});

describe('rmm validate -f -', () => {
  afterEach(() => vi.restoreAllMocks());

  function stdinOf(text: string): void {
    vi.spyOn(process, 'stdin', 'get').mockReturnValue(Readable.from([Buffer.from(text)]) as unknown as typeof process.stdin);
  }

  it('reads the estate from stdin and names it <stdin> in messages', async () => {
    stdinOf('apiVersion: rmm/v1\nkind: Origin\nmetadata:\n  name: Web-01\nspec:\n  address: 10.1.2.11\n');
    const { code, stderr } = await validate('-f', '-');
    expect(stderr.split('\n')[0]).toBe(
      "<stdin>:4:9: metadata.name: 'Web-01' is not a name: lower-case letters, digits and '-', 1 to 63 characters, " +
        'starting and ending with a letter or digit (a DNS label); it has upper-case letters',
    );
    expect(code).toBe(2);
  });

  it('combines stdin with files', async () => {
    stdinOf(
      'apiVersion: rmm/v1\nkind: Replica\nmetadata: { name: web-01-dr2 }\nspec: { origin: web-01, environment: dr-lyon, host: store-02, path: /srv/other }\n',
    );
    const { code, stdout } = await validate('-f', splitEstate, '-f', '-');
    expect(stdout).toMatch(/<stdin>: valid, 4 replicas\n$/);
    expect(code).toBe(0);
  });
});

describe('loadSources', () => {
  it('checks text without touching the disk', () => {
    const result = loadSources([{ name: 'inline.yaml', baseDir: '/nonexistent', text: 'apiVersion: rmm/v1\nkind: Origin\n' }]);
    expect(result.spec).toBeUndefined();
    expect(result.diagnostics.map((d) => `${d.line}:${d.column}: ${d.message}`)).toEqual([
      "1:1: missing required field 'metadata'",
      "1:1: missing required field 'spec'",
    ]);
  });
});

async function writeTemp(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}
