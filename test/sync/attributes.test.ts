import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttributesError, FLAGS_LISTING, flagLetters, flagsFindArgs, formatSidecar, parseFlagsListing, parseSidecar, FlagsListingReader } from '../../src/sync/attributes.js';
import { tooLong } from '../../src/sync/copy.js';

/** FLAGS_LISTING's output for batches of [name, lsattr's field or undefined when it printed nothing]. */
function listing(...batches: [string, string | undefined][][]): string {
  return batches.map((batch) => `${batch.map(([n]) => `${n}\0`).join('')}\0${batch.map(([n, f]) => (f === undefined ? '' : `${f} ${n}\n`)).join('')}\0`).join('');
}

describe('the flags listing', () => {
  it('reads each name\'s flags, whatever the name holds', () => {
    const out = listing(
      [
        ['.', '----------------------'],
        ['./new\nline', '----i-----------------'],
        ['./forged\n--------------------- ./x', '-----a----------------'],
        ['./-rf $(touch x)', '------dA--------------'],
      ],
      [['./caf\xe9', '---------------C------']],
    );
    expect(parseFlagsListing(out)).toEqual(
      new Map([
        ['new\nline', 'i'],
        ['forged\n--------------------- ./x', 'a'],
        ['-rf $(touch x)', 'Ad'],
        ['caf\xe9', 'C'],
      ]),
    );
  });

  it('skips a name lsattr printed nothing for (vanished, or no flags on its filesystem)', () => {
    const out = listing([
      ['./gone', undefined],
      ['./kept', '----i-----------------'],
      ['./also gone', undefined],
    ]);
    expect(parseFlagsListing(out)).toEqual(new Map([['kept', 'i']]));
  });

  it('leaves out the flags the kernel sets by itself (extents, indexed folders, inline data)', () => {
    expect(flagLetters('-------------e--I-----')).toBe('');
    expect(flagLetters('----ia-A------e-------')).toBe('Aai');
  });

  it('reads a listing that arrives in chunks cut anywhere as it reads it whole', () => {
    const out = listing(
      [
        ['.', '----------------------'],
        ['./a', '----i-----------------'],
        ['./gone', undefined],
      ],
      [['./b\nc', '-----a----------------']],
      [['./only gone', undefined]],
      [['./d', '------dA--------------']],
    );
    const whole = parseFlagsListing(out);
    for (let cut = 0; cut <= out.length; cut++) {
      for (const size of [1, 3, 7]) {
        const reader = new FlagsListingReader();
        reader.push(out.slice(0, cut));
        for (let at = cut; at < out.length; at += size) reader.push(out.slice(at, at + size));
        expect(reader.rest()).toBe('');
        expect(reader.flags).toEqual(whole);
      }
    }
    expect(whole).toEqual(new Map([['a', 'i'], ['b\nc', 'a'], ['d', 'Ad']]));
    // A batch of no names (xargs never makes one) holds no flags and ends where its NUL is.
    expect(parseFlagsListing(`\0\0${out}`)).toEqual(whole);
  });

  it('refuses a listing cut off in the middle', () => {
    expect(() => parseFlagsListing('./a\0./b')).toThrow(AttributesError);
    expect(() => parseFlagsListing('./a\0\0---- ./a\n')).toThrow(AttributesError);
  });

  it('walks the root first, then prunes rmm\'s snapshot and mount points', () => {
    const args = flagsFindArgs({ dir: '/', fsType: 'btrfs', mountPoints: ['srv/data'], excludePaths: [], ownSnapshot: '.rmm-snap.x' });
    expect(args.slice(0, 8)).toEqual(['find', '.', '-xdev', '(', '-path', '.', '-print0', ')']);
    expect(args).toContain('./srv/data');
    expect(args).toContain('./.rmm-snap.x');
  });

  // lsattr needs a filesystem with flags; tmpfs has none, and then every name is skipped.
  it.skipIf(process.getuid?.() !== 0)('runs as a shell script with names that are options or shell syntax, and runs none of them', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rmm-flags-'));
    try {
      const names = ['-rf', '--help', '$(touch pwned)', '`touch pwned`', 'new\nline'];
      mkdirSync(path.join(dir, 'sub'));
      for (const n of names) writeFileSync(path.join(dir, 'sub', n), n);
      const out = execFileSync('sh', ['-c', FLAGS_LISTING, 'rmm-flags', dir, ...flagsFindArgs({ dir, fsType: 'ext4', mountPoints: [], excludePaths: [] })], { cwd: dir }).toString('latin1');
      const listed = out.split('\0');
      for (const n of names) expect(listed).toContain(`./sub/${n}`);
      parseFlagsListing(out);
      expect(execFileSync('find', [dir, '-name', 'pwned'], { encoding: 'utf8' })).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the flags sidecar', () => {
  it('reads back what it wrote, names that are not UTF-8 included', () => {
    const flags = new Map([
      ['.', 'A'],
      ['etc/-rf\nx', 'i'],
      ['caf\xe9/f', 'Aad'],
    ]);
    const data = formatSidecar(flags);
    expect(data.includes(Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toBe(true);
    expect(parseSidecar(data, 'target:/x')).toEqual(flags);
    expect(parseSidecar(formatSidecar(new Map()), 'target:/x')).toEqual(new Map());
  });

  it.each([
    ['no header', 'i\0a\0'],
    ['a newer version', 'rmm-attributes 2\ni\0a\0'],
    ['a cut record', 'rmm-attributes 1\ni\0a'],
    ['an odd field count', 'rmm-attributes 1\ni\0a\0d\0'],
    ['flags that are not letters', 'rmm-attributes 1\ni;rm\0a\0'],
    ['an absolute path', 'rmm-attributes 1\ni\0/etc/passwd\0'],
    ['a path leaving the filesystem', 'rmm-attributes 1\ni\0a/../../x\0'],
    ['an empty part', 'rmm-attributes 1\ni\0a//b\0'],
    ['a path twice', 'rmm-attributes 1\ni\0a\0d\0a\0'],
  ])('refuses a sidecar with %s', (_, text) => {
    expect(() => parseSidecar(Buffer.from(text, 'latin1'), 'target:/x')).toThrow(AttributesError);
  });
});

describe('a path too long to copy', () => {
  it('is named from rsync\'s and tar\'s messages', () => {
    expect(tooLong('rsync: [sender] filename overflows max-path len by 64: srv/a/b/c\nrsync error: some files/attrs were not transferred (code 23)')).toBe('srv/a/b/c');
    expect(tooLong('tar: ./srv/a/b: Cannot stat: File name too long\ntar: Exiting with failure status')).toBe('./srv/a/b');
    expect(tooLong('rsync: [sender] link_stat "/run/.rmm-snap/x/srv/a/b" failed: File name too long (36)\nrsync error: some files/attrs were not transferred (code 23)')).toBe('/run/.rmm-snap/x/srv/a/b');
    expect(tooLong(`tar: ${'d/'.repeat(100)}: Cannot stat: File name too long`)).toMatch(/^(d\/){60}\.\.\.$/);
    expect(tooLong('rsync error: some files/attrs were not transferred')).toBeUndefined();
  });
});
