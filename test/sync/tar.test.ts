import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createArgv, extractCommand, extractFoldersCommand, parseEntry, showsAcl, RecordSplitter, routeNames, ShareDealer, type ListedFile } from '../../src/sync/tar.js';
import { PrefetchFeed } from '../../src/sync/prefetch.js';

const file = (path: string, size: number, inode = path, links = 1, type = 'f'): ListedFile => ({ path, type, size, inode, links });

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
    expect(dealer.route(file('./usr/lib', 0, '7', 2, 'd'))).toEqual([0, 1, 2]);
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

  it('reads find -printf records split anywhere across chunks, names with spaces and newlines included', () => {
    const records: string[] = [];
    const splitter = new RecordSplitter();
    for (const chunk of ['f 12 1 300 a', ' b\0s 13 2 0 line\nbr', 'eak\0']) splitter.push(chunk, (r) => records.push(r));
    expect(records.map(parseEntry)).toEqual([file('a b', 300, '12'), file('line\nbreak', 0, '13', 2, 's')]);
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
    const names = ['d 1 2 0 ./dir', ...Array.from({ length: 6 }, (_, i) => `f ${10 + i} 1 100 ./dir/f${i}`), 'f 20 1 1 ./caf\xe9'];
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
    await send(['f 9 1 5 ./before']); // listed before the helper has started: not read ahead
    ready(readAhead);
    await new Promise((r) => setImmediate(r));
    await send(['d 1 2 0 ./dir', 'f 2 1 0 ./dir/empty', 'l 3 1 4 ./dir/link', 'f 4 1 7 ./dir/a', 'p 5 1 0 ./dir/fifo', 'f 6 1 3 ./dir/caf\xe9']);
    expect(readAhead.read()?.toString('latin1')).toBe('./dir/a\0./dir/caf\xe9\0');
    // Its window full, names are skipped, and the streams still get theirs.
    readAhead.write(Buffer.alloc(64));
    await send(['f 7 1 9 ./dir/b']);
    expect(listing.isPaused()).toBe(false);
    expect(streams.map((s) => s.read()?.toString('latin1') ?? '').join('')).toContain('./dir/b');
    expect(readAhead.read()?.toString('latin1')).not.toContain('./dir/b');
    expect(Buffer.concat(folders).toString('latin1')).toBe('./dir\0'); // for the folders pass
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
