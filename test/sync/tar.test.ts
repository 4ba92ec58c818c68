import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createArgv, extractCommand, extractFoldersCommand, parseEntry, readMadeFolder, showsAcl, RecordSplitter, routeNames, ShareDealer, type ListedFile } from '../../src/sync/tar.js';
import { PrefetchFeed } from '../../src/sync/prefetch.js';

const file = (path: string, size: number, inode = path, links = 1, type = 'f', more: Partial<ListedFile> = {}): ListedFile => ({ path, type, size, inode, links, uid: 0, gid: 0, mode: 0o644, ...more });
const folder = (path: string, more: Partial<ListedFile> = {}): ListedFile => file(path, 0, path, 2, 'd', { mode: 0o755, ...more });

describe('dealing a first copy to tar streams', () => {
  it('balances bytes and file counts as entries arrive, and counts what it dealt', () => {
    const dealer = new ShareDealer(3);
    const dealt = [file('big', 900 << 20), file('mid', 300 << 20), ...Array.from({ length: 1000 }, (_, i) => file(`small-${i}`, 1000))].map((f) => dealer.deal(f));
    expect(dealt.slice(0, 2)).toEqual([0, 1]);
    // The small files go where the load is lightest: the third stream takes them first.
    expect(dealt.filter((i) => i === 2).length).toBeGreaterThan(dealt.filter((i) => i === 1).length);
    expect(dealer.files).toBe(1002);
    expect(dealer.bytes).toBe((1200 << 20) + 1000 * 1000);
  });

  it('deals every name of a hard-linked inode to one stream, so tar links them', () => {
    const dealer = new ShareDealer(4);
    const streams = new Set(['a/one', 'z/two', 'y/three'].map((p) => dealer.deal(file(p, 10, '4242', 3))));
    expect(streams.size).toBe(1);
  });

  it('sends a folder to every stream, so no tar creates a missing parent while another does', () => {
    const dealer = new ShareDealer(3);
    expect(dealer.route(folder('./usr/lib'))).toEqual([0, 1, 2]);
    expect(dealer.route(file('./usr/lib/a', 10))).toHaveLength(1);
    expect(dealer.files).toBe(1);
  });

  it('needs an rsync pass after the streams only for a socket, which tar skips', () => {
    const quiet = new ShareDealer(2);
    for (const f of [file('a', 1), file('l', 0, 'l', 1, 'l'), file('p', 0, 'p', 1, 'p')]) quiet.deal(f);
    expect(quiet.needsRsync).toBe(false);
    const withSocket = new ShareDealer(2);
    for (const f of [file('a', 1), file('s', 0, 's', 1, 's')]) withSocket.deal(f);
    expect(withSocket.needsRsync).toBe(true);
  });

  it("reads the manifest find's records split anywhere across chunks, names with spaces and newlines included", () => {
    const records: string[] = [];
    const splitter = new RecordSplitter();
    const chunks = ['root 2755 0 4000\x0012 1795614211.3089985450 1795614211.3089985450 300 644 0 0 1 f ./a', ' b\x0013 1.5 2.5 0 2755 4242 4343 2 s ./line\nbr', 'eak\x00mount ./proc\x00'];
    for (const chunk of chunks) splitter.push(chunk, (r) => records.push(r));
    expect(records.map(parseEntry)).toEqual([
      { path: '.', type: 'd', size: 0, inode: '', links: 2, mode: 0o2755, uid: 0, gid: 4000 },
      file('./a b', 300, '12'),
      file('./line\nbreak', 0, '13', 2, 's', { uid: 4242, gid: 4343, mode: 0o2755 }),
      { path: './proc', type: 'd', size: 0, inode: '', links: 2, mode: 0o755, uid: 0, gid: 0 },
    ]);
    expect(parseEntry('garbage')).toBeUndefined();
  });

  it('writes each stream its names once per chunk of the listing, and holds the listing while a stream is full', async () => {
    const writes: string[][] = [[], []];
    const pending: (() => void)[] = [];
    // A sink that takes a write only when the test lets it: full after one write.
    const sink = (i: number) =>
      new Writable({
        highWaterMark: 1,
        write(chunk: Buffer, _enc, done) {
          writes[i]!.push(chunk.toString('latin1'));
          pending.push(done);
        },
      });
    const listing = new PassThrough();
    const dealer = new ShareDealer(2);
    routeNames(listing, [sink(0), sink(1)], dealer);
    const names = ['1 1.5 2.5 0 755 0 0 2 d ./dir', ...Array.from({ length: 6 }, (_, i) => `${10 + i} 1.5 2.5 100 644 0 0 1 f ./dir/f${i}`), '20 1.5 2.5 1 644 0 0 1 f ./caf\xe9'];
    listing.write(Buffer.from(names.slice(0, 4).join('\0') + '\0', 'latin1'));
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.length)).toEqual([1, 1]);
    expect(listing.isPaused()).toBe(true);
    listing.write(Buffer.from(names.slice(4).join('\0') + '\0', 'latin1'));
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.length)).toEqual([1, 1]); // nothing more until both have drained
    while (pending.length) pending.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.length)).toEqual([2, 2]);
    const all = writes.map((w) => w.join('').split('\0').filter(Boolean));
    expect(all[0]![0]).toBe('./dir');
    expect(all[1]![0]).toBe('./dir');
    expect([dealer.folders, dealer.files]).toEqual([1, 7]);
    expect([...all[0]!, ...all[1]!].filter((n) => n !== './dir').sort()).toEqual([...Array.from({ length: 6 }, (_, i) => `./dir/f${i}`), './caf\xe9'].sort());
  });

  it('sends the read-ahead the regular files with data, in the order it deals them, and never waits for it; collects the folders', async () => {
    const listing = new PassThrough();
    const streams = [new PassThrough(), new PassThrough()];
    const readAhead = new PassThrough({ highWaterMark: 16 });
    let ready!: (w: PassThrough) => void;
    const folders: Buffer[] = [];
    routeNames(listing, streams, new ShareDealer(2), { prefetch: new PrefetchFeed(new Promise((r) => (ready = r))), folders });
    const send = async (records: string[]): Promise<void> => {
      listing.write(Buffer.from(records.join('\0') + '\0', 'latin1'));
      await new Promise((r) => setImmediate(r));
    };
    await send(['9 1.5 2.5 5 644 0 0 1 f ./before']); // listed before the helper has started: not read ahead
    ready(readAhead);
    await new Promise((r) => setImmediate(r));
    await send(['1 1.5 2.5 0 755 0 0 2 d ./dir', '2 1.5 2.5 0 644 0 0 1 f ./dir/empty', '3 1.5 2.5 4 777 0 0 1 l ./dir/link', '4 1.5 2.5 7 644 0 0 1 f ./dir/a', '5 1.5 2.5 0 644 0 0 1 p ./dir/fifo', '6 1.5 2.5 3 644 0 0 1 f ./dir/caf\xe9']);
    expect(readAhead.read()?.toString('latin1')).toBe('./dir/a\0./dir/caf\xe9\0');
    // Its window full, names are skipped, and the streams still get theirs.
    readAhead.write(Buffer.alloc(64));
    await send(['7 1.5 2.5 9 644 0 0 1 f ./dir/b']);
    expect(listing.isPaused()).toBe(false);
    expect(streams.map((s) => s.read()?.toString('latin1') ?? '').join('')).toContain('./dir/b');
    expect(readAhead.read()?.toString('latin1')).not.toContain('./dir/b');
    expect(Buffer.concat(folders).toString('latin1')).toBe('./dir\0'); // for the folders pass
  });

  it("keeps apart what tar must give an owner: others' files, hard links, what a setgid folder would hand its group", () => {
    const dealer = new ShareDealer(2, { uid: 0, gid: 0 });
    expect([dealer.loads.length, dealer.opened]).toEqual([4, [true, true, false, false]]);
    expect([0, 1, 2, 3].map((i) => dealer.givesOwners(i))).toEqual([false, false, true, true]);
    expect(dealer.route(folder('.'))).toEqual([0, 1]);
    // Root's, with one link, in a plain folder: what tar --no-same-owner creates as root is right.
    const plain = [file('./a', 10), file('./l', 1, 'l', 1, 'l', { mode: 0o777 }), file('./setuid', 10, 's', 1, 'f', { mode: 0o4755 })].map((f) => dealer.deal(f));
    expect(plain.every((i) => i < 2)).toBe(true);
    expect(dealer.opened).toEqual([true, true, false, false]);
    // Anything else opens a stream that gives owners, then the next.
    expect(dealer.deal(file('./user', 10, 'u', 1, 'f', { uid: 1000 }))).toBe(2);
    expect(dealer.opened).toEqual([true, true, true, false]);
    expect(dealer.route(folder('./srv'))).toEqual([0, 1, 2]);
    expect(dealer.deal(file('./group', 10, 'g', 1, 'f', { gid: 4 }))).toBe(3);
    expect(dealer.deal(file('./linked', 10, '77', 2))).toBeGreaterThanOrEqual(2);
    expect(dealer.deal(file('./fifo', 0, 'p', 1, 'p'))).toBeGreaterThanOrEqual(2);
    // A setgid folder hands new entries its group, and so does every folder made below it.
    dealer.route(folder('./shared', { gid: 4000, mode: 0o2775 }));
    dealer.route(folder('./shared/below', { gid: 4000, mode: 0o755 }));
    dealer.route(folder('./plain'));
    expect(dealer.deal(file('./shared/roots', 10))).toBeGreaterThanOrEqual(2);
    expect(dealer.deal(file('./shared/below/roots', 10))).toBeGreaterThanOrEqual(2);
    expect(dealer.deal(file('./plain/roots', 10))).toBeLessThan(2);
    // Without knowing who tar runs as, every stream gives owners, all open from the start.
    const plainOnly = new ShareDealer(2);
    expect([plainOnly.loads.length, plainOnly.opened, plainOnly.givesOwners(0)]).toEqual([2, [true, true], true]);
  });

  it('gives a stream opened late every folder listed before it, ahead of its first entry', async () => {
    const streams = [new PassThrough(), new PassThrough(), new PassThrough(), new PassThrough()];
    const listing = new PassThrough();
    const opened: number[] = [];
    routeNames(listing, streams, new ShareDealer(2, { uid: 0, gid: 0 }), { onOpen: (i) => opened.push(i) });
    const send = async (records: string[]): Promise<void> => {
      listing.write(Buffer.from(records.join('\0') + '\0', 'latin1'));
      await new Promise((r) => setImmediate(r));
    };
    await send(['root 755 0 0', '2 1.5 2.5 0 755 0 0 2 d ./a', '3 1.5 2.5 5 644 0 0 1 f ./a/mine']);
    expect(opened).toEqual([]);
    await send(['4 1.5 2.5 0 755 0 0 2 d ./b', '5 1.5 2.5 5 644 1000 1000 1 f ./b/theirs', '6 1.5 2.5 0 755 0 0 2 d ./c', '7 1.5 2.5 5 644 0 0 1 f ./c/mine']);
    expect(opened).toEqual([2]);
    const names = (s: PassThrough): string[] => String(s.read()?.toString('latin1') ?? '').split('\0').filter(Boolean);
    expect(names(streams[2]!)).toEqual(['.', './a', './b', './b/theirs', './c']);
    expect(names(streams[3]!)).toEqual([]);
    expect(names(streams[0]!).filter((n) => !n.includes('mine'))).toEqual(['.', './a', './b', './c']);
  });

  it("reads the copy's folder and who unpacks into it: ACL mode, and whether entries come out as tar's own", () => {
    const made = (ls: string, probe: string): string => `${ls} 2 0 0 6 Nov 25 12:00 /srv/r/.partial\n0\n0\n${probe}\n`;
    expect(readMadeFolder(made('drwxr-xr-x', '0:0'))).toEqual({ acl: 'xattrs', tarUser: { uid: 0, gid: 0 } });
    expect(readMadeFolder(made('drwxr-xr-x+', '0:0'))).toEqual({ acl: 'acls' });
    // In a setgid folder new entries take its group, not tar's; where a file made in a folder of
    // another group took that group (grpid), or another owner (NFS root_squash), or the probe could
    // not run, tar gives every owner.
    expect(readMadeFolder(made('drwxr-sr-x', '0:0'))).toEqual({ acl: 'xattrs' });
    expect(readMadeFolder(made('drwxr-Sr-x', '0:0'))).toEqual({ acl: 'xattrs' });
    expect(readMadeFolder(made('drwxr-xr-x', '0:1'))).toEqual({ acl: 'xattrs' });
    expect(readMadeFolder(made('drwxr-xr-x', '65534:65534'))).toEqual({ acl: 'xattrs' });
    expect(readMadeFolder(made('drwxr-xr-x', 'unknown'))).toEqual({ acl: 'xattrs' });
    expect(readMadeFolder('drwxr-xr-x 2 0 0 6 Nov 25 12:00 /srv/r/.partial\n0\n0\n')).toEqual({ acl: 'xattrs' });
    expect(readMadeFolder('drwxr-xr-x 2 0 0 6 Nov 25 12:00 /srv/r/.partial\n')).toEqual({ acl: 'xattrs' });
    expect(extractCommand('/srv/r', false, 'xattrs', false)).toContain(' -p --no-same-owner ');
    expect(extractCommand('/srv/r', false, 'xattrs', false)).not.toContain('--numeric-owner');
  });

  it('quotes the target folder and uses sudo only for a non-root user', () => {
    expect(extractCommand("/srv/it's here", false, 'xattrs')).toBe(
      "tar -x -b 2048 --read-full-records -p --numeric-owner --xattrs '--xattrs-include=*' '--xattrs-exclude=trusted.SGI_*' '--xattrs-exclude=xfsroot.*' --xattrs-exclude=system.posix_acl_default -C '/srv/it'\\''s here' -f -",
    );
    expect(extractCommand('/srv/r', true, 'xattrs')).toMatch(/^sudo -n tar -x .* -C \/srv\/r -f -$/);
    expect(extractFoldersCommand('/srv/r', true)).toBe('sudo -n tar -x -p --numeric-owner --xattrs --xattrs-include=system.posix_acl_default -C /srv/r -f -');
  });

  it("carries ACLs as xattrs, holding back folders' default ACLs, unless the copy's folder inherits an ACL: then by tar's --acls", () => {
    expect(createArgv('/snap', 'xattrs')).not.toContain('--acls');
    expect(extractCommand('/srv/r', false, 'xattrs')).toContain('--xattrs-exclude=system.posix_acl_default');
    expect(extractCommand('/srv/r', false, 'xattrs')).not.toContain('--acls');
    expect(createArgv('/snap', 'acls')).toContain('--acls');
    expect(extractCommand('/srv/r', false, 'acls')).toContain('--acls');
    expect(extractCommand('/srv/r', false, 'acls')).not.toContain('posix_acl_default');
    expect(showsAcl('drwxr-xr-x+ 2 root root 6 Nov 25 12:00 /srv/replicas/r/points/.partial\n')).toBe(true);
    expect(showsAcl('drwxr-xr-x. 2 root root 6 Nov 25 12:00 /srv/r\n')).toBe(false); // an SELinux context only
    expect(showsAcl('drwxr-xr-x 2 root root 6 Nov 25 12:00 /srv/r+\n')).toBe(false);
  });
});
