import { describe, expect, it } from 'vitest';
import { extractCommand, finishingPass, parseEntries, splitIntoShares, type ListedFile } from '../../src/sync/tar.js';

const file = (path: string, size: number, inode = path, links = 1, type = 'f'): ListedFile => ({ path, type, size, inode, links });

describe('splitting a first copy into tar streams', () => {
  it('balances bytes and file counts, largest first, and loses no file', () => {
    const files = [file('big', 900 * 1024 * 1024), ...Array.from({ length: 1000 }, (_, i) => file(`small-${i}`, 1000)), file('mid', 300 * 1024 * 1024)];
    const shares = splitIntoShares(files, 3);
    expect(shares.flatMap((s) => s.paths).sort()).toEqual(files.map((f) => f.path).sort());
    expect(shares[0]!.paths).toEqual(['big']);
    expect(shares[1]!.paths[0]).toBe('mid');
    // The small files go where the load is lightest: the third share takes them first.
    expect(shares[2]!.paths.length).toBeGreaterThan(shares[1]!.paths.length);
    expect(shares.reduce((n, s) => n + s.bytes, 0)).toBe(1200 * 1024 * 1024 + 1000 * 1000);
  });

  it('keeps every name of a hard-linked inode in one share, so tar links them', () => {
    const files = [file('a/one', 10, '42', 3), file('b', 5000), file('c', 4000), file('z/two', 10, '42', 3), file('y/three', 10, '42', 3)];
    const shares = splitIntoShares(files, 3);
    const withLinks = shares.filter((s) => s.paths.some((p) => ['a/one', 'z/two', 'y/three'].includes(p)));
    expect(withLinks).toHaveLength(1);
    expect(withLinks[0]!.paths).toEqual(expect.arrayContaining(['a/one', 'z/two', 'y/three']));
  });

  it('reads find -printf records, names with spaces and newlines included', () => {
    expect(parseEntries('f 12 1 300 a b\0' + 's 13 2 0 line\nbreak\0')).toEqual([file('a b', 300, '12'), file('line\nbreak', 0, '13', 2, 's')]);
  });

  it('finishes with a folders-only rsync pass unless a socket needs the whole pass', () => {
    expect(finishingPass([file('a', 1), file('l', 0, 'l', 1, 'l'), file('p', 0, 'p', 1, 'p')])).toBe('folders');
    expect(finishingPass([file('a', 1), file('s', 0, 's', 1, 's')])).toBe('all');
  });

  it('quotes the target folder and uses sudo only for a non-root user', () => {
    expect(extractCommand("/srv/it's here", false)).toBe("mkdir -p -- '/srv/it'\\''s here' && tar -x -b 2048 --read-full-records -p --numeric-owner --acls --xattrs '--xattrs-include=*' '--xattrs-exclude=trusted.SGI_*' '--xattrs-exclude=xfsroot.*' -C '/srv/it'\\''s here' -f -");
    expect(extractCommand('/srv/r', true)).toMatch(/^sudo -n mkdir -p -- \/srv\/r && sudo -n tar -x /);
  });
});
