import { describe, expect, it } from 'vitest';
import { parseProgress, parseRsyncStats, reanchor, rsyncAtLeast, rsyncOptions } from '../../src/sync/rsync.js';

describe('rsync options', () => {
  it('re-anchors root-anchored exclusions at each filesystem, and keeps unanchored ones everywhere', () => {
    expect(reanchor('/var/tmp/*', '')).toBe('/var/tmp/*');
    expect(reanchor('/srv/data/cache/*', 'srv/data')).toBe('/cache/*');
    expect(reanchor('/var/tmp/*', 'srv/data')).toBeUndefined();
    expect(reanchor('*.swp', 'srv/data')).toBe('*.swp');
    expect(reanchor('/srv/data', 'srv/data')).toBeUndefined();
  });

  it('protects nested mounts, limits bandwidth in KiB/s and links to the last point', () => {
    expect(
      rsyncOptions({ excludePaths: ['/tmp/*'], nestedMounts: ['srv/data', 'boot'], relativePath: '', bandwidthBytesPerSecond: 50 * 1024 * 1024, linkDest: '/r/points/1' }),
    ).toEqual(['--exclude=/srv/data/*', '--exclude=/boot/*', '--exclude=/tmp/*', '--bwlimit=51200', '--link-dest=/r/points/1']);
  });
});

describe('rsync output', () => {
  const stats = `
Number of files: 10,523 (reg: 10,001, dir: 512, link: 10)
Number of created files: 0
Number of deleted files: 0
Number of regular files transferred: 100
Total file size: 25,123,456 bytes
Total transferred file size: 250,000 bytes
Literal data: 240,000 bytes
Matched data: 10,000 bytes
File list size: 0
Total bytes sent: 260,123
Total bytes received: 2,345

sent 260,123 bytes  received 2,345 bytes  104,987.20 bytes/sec
total size is 25,123,456  speedup is 95.72
`;
  it('parses --stats with thousands separators', () => {
    expect(parseRsyncStats(stats)).toEqual({
      files: 10523,
      filesTransferred: 100,
      bytesTotal: 25123456,
      bytesTransferred: 250000,
      literalBytes: 240000,
      matchedBytes: 10000,
      bytesSent: 260123,
      bytesReceived: 2345,
    });
  });

  it('parses --info=progress2 lines and ignores others', () => {
    expect(parseProgress('    123,456,789  45%   12.34MB/s    0:00:10 (xfr#10, to-chk=5/100)')).toEqual({
      bytes: 123456789,
      percent: 45,
      rate: '12.34MB/s',
      eta: '0:00:10',
      bytesPerSecond: Math.round(12.34 * 1024 ** 2),
      etaSeconds: 10,
      files: 10,
      listed: true,
      checked: 95,
      listedEntries: 100,
    });
    // While rsync still walks the tree (incremental recursion), its percent is of what it found so far.
    expect(parseProgress('     32,768   3%   31.25kB/s    0:00:00 (xfr#2, ir-chk=1020/1030)')).toMatchObject({ percent: 3, files: 2, listed: false, checked: 10, listedEntries: 1030 });
    expect(parseProgress('  7,000  100%  512.00kB/s    1:02:03')).toMatchObject({ bytesPerSecond: 512 * 1024, etaSeconds: 3723, files: 0, listed: false });
    expect(parseProgress('sending incremental file list')).toBeUndefined();
  });
});

describe('a copy into a snapshot of the last point, walked in full', () => {
  it('deletes what the view excludes now, but never what other filesystems copy inside it', () => {
    const args = rsyncOptions({ excludePaths: ['/var/tmp/*'], nestedMounts: ['srv/data', 'u02'], relativePath: '', deleteExcluded: true, protectMounts: ['srv/data', 'odd*name'] });
    expect(args).toContain('--delete-excluded');
    expect(args).toContain('--filter=P /srv/data/*');
    expect(args).toContain('--filter=P /odd\\*name/*');
    expect(args).not.toContain('--filter=P /u02/*');
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: '' })).not.toContain('--delete-excluded');
  });
});

describe('rsync versions', () => {
  it('writes in place with --sparse only from 3.1.3, which punches holes', () => {
    expect(rsyncAtLeast('rsync  version 3.2.7  protocol version 31\nCopyright (C) 1996-2022')).toBe(true);
    expect(rsyncAtLeast('rsync  version v3.2.3  protocol version 31')).toBe(true);
    expect(rsyncAtLeast('rsync  version 3.1.3  protocol version 31')).toBe(true);
    expect(rsyncAtLeast('rsync  version 3.1.2  protocol version 31')).toBe(false);
    expect(rsyncAtLeast('rsync  version 3.0.9  protocol version 30')).toBe(false);
    expect(rsyncAtLeast('rsync  version 4.0.0  protocol version 32')).toBe(true);
    expect(rsyncAtLeast('sh: rsync: not found')).toBe(false);
  });
});
