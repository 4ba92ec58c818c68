import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { diffListings, filtersSignature, isPlainPath, listingHash, ListingError, nulList, parseListing } from '../../src/sync/delta.js';

/** A listing as the manifest walk prints it: `root`, `mount`, and `INODE CTIME MTIME SIZE MODE UID GID LINKS TYPE ./PATH` records. */
const entry = (path: string, type = 'f', ctime = '1.5', size = 10, inode = 100, links = 1) => `${inode} ${ctime} 1.0 ${size} 644 0 0 ${links} ${type} ./${path}`;
const listing = (...records: string[]) => Buffer.from(records.map((r) => `${r}\0`).join(''), 'latin1');
const base = ['root 755 0 0', 'mount ./mnt', entry('etc', 'd'), entry('etc/hosts'), entry('etc/gone'), entry('dir', 'd'), entry('dir/a'), entry('dir/b'), entry('link', 'l'), entry('pair-1', 'f', '1.5', 10, 7, 2), entry('pair-2', 'f', '1.5', 10, 7, 2)];

describe('a view listing', () => {
  it('reads records by path, names that are not UTF-8 byte for byte', () => {
    const name = Buffer.concat([Buffer.from('0 1.0 1.0 3 644 0 0 1 f ./caf'), Buffer.from([0xe9]), Buffer.from([0])]);
    const parsed = parseListing(Buffer.concat([listing(...base), name]));
    expect(parsed.get('.')?.type).toBe('d');
    expect(parsed.get('mnt')?.type).toBe('m');
    expect(parsed.get('etc/hosts')).toMatchObject({ type: 'f', size: 10, links: 1 });
    expect(parsed.get('pair-1')).toMatchObject({ links: 2 });
    expect(parsed.get('dir')?.type).toBe('d');
    expect(parsed.has(`caf${String.fromCharCode(0xe9)}`)).toBe(true);
    // A newline is part of a name, not a record's end.
    expect(parseListing(listing(entry('a\nb'))).has('a\nb')).toBe(true);
  });

  it('refuses a listing from a host that names a path out of the copy, twice, or ends mid-record', () => {
    for (const bad of [listing(entry('../etc/passwd')), listing(entry('a/../../x')), listing(entry('a//b')), listing(entry('a/./b')), listing('1 2 3 /abs'), listing(entry('x'), entry('x')), Buffer.from(`${entry('x')}`), listing('rm -rf /')]) {
      expect(() => parseListing(bad)).toThrow(ListingError);
    }
    expect(isPlainPath('a/b c/d')).toBe(true);
    expect(isPlainPath('/a')).toBe(false);
  });

  it('hashes as the walk piped through sha256sum does', () => {
    const bytes = listing(...base);
    expect(listingHash(bytes)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});

describe('what changed since the last point', () => {
  const diff = (after: string[], renew: string[] = []) => diffListings(parseListing(listing(...base)), parseListing(listing(...after)), renew);
  /** What is sent besides the root and the mount point, which always are. */
  const sent = (d: { send: readonly string[] }) => d.send.filter((p) => p !== '.' && p !== 'mnt').sort();

  it('finds nothing in an unchanged view, and counts its entries and bytes', () => {
    // The root and mount points are listed without their times: always sent, never dropped.
    expect(diff(base)).toEqual({ drop: [], send: ['.', 'mnt'], entries: 11, bytes: 60, sendBytes: 0, kept: [] });
  });

  it('sends a changed file and drops it from the copy; a folder whose attributes changed is sent, never dropped', () => {
    const after = base.map((r) => (r === entry('etc/hosts') ? entry('etc/hosts', 'f', '2.5') : r === entry('dir', 'd') ? entry('dir', 'd', '2.5') : r));
    const d = diff(after);
    expect(sent(d)).toEqual(['dir', 'etc/hosts']);
    expect(d.drop).toEqual(['etc/hosts']);
    // The bytes of the regular files sent (etc/hosts's, not the folder's), for progress.
    expect(d.sendBytes).toBe(10);
  });

  it('sends the root when its attributes changed', () => {
    expect(diff(base.map((r) => (r === 'root 755 0 0' ? 'root 700 0 0' : r)))).toMatchObject({ send: ['.', 'mnt'], drop: [] });
  });

  it('drops what went, a gone folder once for all that was in it', () => {
    const d = diff(base.filter((r) => !r.includes('./dir') && r !== entry('etc/gone')));
    expect([...d.drop].sort()).toEqual(['dir', 'etc/gone']);
    expect(sent(d)).toEqual([]);
  });

  it('sends new entries only', () => {
    const d = diff([...base, entry('new', 'd'), entry('new/file')]);
    expect(sent(d)).toEqual(['new', 'new/file']);
    expect(d.drop).toEqual([]);
  });

  it('drops and sends an entry whose type changed: a file that became a folder, a folder that became a file, a changed link', () => {
    const after = [...base.filter((r) => !r.includes('./dir') && r !== entry('etc/hosts') && r !== entry('link', 'l')), entry('dir', 'f', '3'), entry('etc/hosts', 'd', '3'), entry('etc/hosts/inside', 'f', '3'), entry('link', 'l', '3')];
    const d = diff(after);
    expect([...d.drop].sort()).toEqual(['dir', 'etc/hosts', 'link']);
    expect(sent(d)).toEqual(['dir', 'etc/hosts', 'etc/hosts/inside', 'link']);
  });

  it('sends every name of a hard-linked inode whose link count changed', () => {
    const after = [...base.filter((r) => !r.includes('pair')), '7 2.5 1.0 10 644 0 0 1 f ./pair-1'];
    const d = diff(after);
    expect(sent(d)).toEqual(['pair-1']);
    expect([...d.drop].sort()).toEqual(['pair-1', 'pair-2']);
  });

  it('into a snapshot of the last point (keepChanged): keeps a changed entry of the same type for rsync to update in place, drops one gone, of another type, or that had other names', () => {
    const after = [...base.filter((r) => !r.includes('./dir') && r !== entry('etc/hosts') && r !== entry('link', 'l') && r !== entry('etc/gone') && !r.includes('pair')), entry('dir', 'f', '3'), entry('etc/hosts', 'f', '3'), entry('link', 'l', '3'), '7 2.5 1.0 10 644 0 0 1 f ./pair-1'];
    const d = diffListings(parseListing(listing(...base)), parseListing(listing(...after)), ['etc/renamed-by-fixup'], { keepChanged: true });
    // pair-1 had another name (pair-2): written in place it would change that one too.
    expect([...d.drop].sort()).toEqual(['dir', 'etc/gone', 'etc/renamed-by-fixup', 'pair-1', 'pair-2']);
    expect(sent(d)).toEqual(['dir', 'etc/hosts', 'link', 'pair-1']);
    expect(d.kept).toEqual(['etc/hosts', 'link']);
  });

  it('into hard-linked points (keepChanged, a function): keeps only the changed files it accepts (large ones, made reflinks), drops the rest', () => {
    const big = (path: string, ctime: string) => entry(path, 'f', ctime, 4 << 20, 200);
    const before = [...base, big('big', '1.5'), big('big-gone', '1.5'), entry('dir/c', 'f', '1.5', 4 << 20, 300, 2), entry('dir/d', 'f', '1.5', 4 << 20, 300, 2)];
    const after = [...base.filter((r) => r !== entry('etc/hosts') && r !== entry('dir/a')), entry('etc/hosts', 'f', '3'), big('big', '3'), big('new-big', '3'), entry('dir/c', 'f', '3', 4 << 20, 300, 2), entry('dir/d', 'f', '3', 4 << 20, 300, 2), entry('dir/a', 'f', '3', 4 << 20)];
    const d = diffListings(parseListing(listing(...before)), parseListing(listing(...after)), ['big'], { keepChanged: (b) => b.type === 'f' && b.size >= 1 << 20 });
    // big is rewritten by a fixup (always renewed); dir/c and dir/d have each other's name; dir/a
    // grew large but was small in the last point; etc/hosts is small; new-big is new.
    expect(d.kept).toEqual([]);
    const d2 = diffListings(parseListing(listing(...before)), parseListing(listing(...after)), [], { keepChanged: (b) => b.type === 'f' && b.size >= 1 << 20 });
    expect(d2.kept).toEqual(['big']);
    expect([...d2.drop].sort()).toEqual(['big-gone', 'dir/a', 'dir/c', 'dir/d', 'etc/hosts']);
    expect(sent(d2)).toEqual(['big', 'dir/a', 'dir/c', 'dir/d', 'etc/hosts', 'new-big']);
  });

  it('renews the files fixups rewrote: dropped always, sent when the view has them', () => {
    const d = diff(base, ['etc/hosts', 'etc/renamed-by-fixup', '../outside', '/abs']);
    expect([...d.drop].sort()).toEqual(['etc/hosts', 'etc/renamed-by-fixup']);
    expect(sent(d)).toEqual(['etc/hosts']);
  });

  it('gives rsync and xargs NUL-terminated names', () => {
    expect(nulList(['a', 'b c'])).toEqual(Buffer.from('a\0b c\0'));
  });

  it('signs the filters a listing was taken with', () => {
    const inputs = { excludePaths: ['/var/tmp/*'], nestedMounts: ['srv/data'], innerMounts: ['srv/data'], relativePath: '' };
    expect(filtersSignature(inputs)).toMatch(/^[0-9a-f]{16}$/);
    expect(filtersSignature({ ...inputs, excludePaths: [] })).not.toBe(filtersSignature(inputs));
    expect(filtersSignature({ ...inputs, innerMounts: [] })).not.toBe(filtersSignature(inputs));
  });
});
