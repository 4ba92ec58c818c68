import { describe, expect, it } from 'vitest';
import { adaptedPath, keepOutPatterns, rewrittenIn, unitHolding } from '../../src/apply/kept-fixups.js';
import type { PlannedFixupFile, PlannedUnit } from '../../src/plan/action.js';
import { rsyncOptions } from '../../src/sync/rsync.js';

/** Only the mount point and relative path matter to these functions. */
function unit(mountPoint: string): PlannedUnit {
  return { fs: { mountPoint }, relativePath: mountPoint === '/' ? '' : mountPoint.slice(1) } as unknown as PlannedUnit;
}

function file(path: string, extra: { text?: string; renamedTo?: string } = {}): PlannedFixupFile {
  return { path, before: '0'.repeat(64), diff: '', ...extra };
}

const root = unit('/');
const boot = unit('/boot');
const app = unit('/srv/app');
const units = [root, app, boot];

describe('unitHolding', () => {
  it('picks the deepest mount point above the path', () => {
    expect(unitHolding('/etc/fstab', units)).toBe(root);
    expect(unitHolding('/boot/grub/grub.cfg', units)).toBe(boot);
    expect(unitHolding('/srv/app/x', units)).toBe(app);
    expect(unitHolding('/srv/app', units)).toBe(app);
  });

  it('does not take a sibling sharing a prefix for a parent', () => {
    expect(unitHolding('/srv/apple', units)).toBe(root);
    expect(unitHolding('/srv/apple/x', units)).toBe(root);
    expect(unitHolding('/bootstrap/x', units)).toBe(root);
  });

  it('finds no unit when the root filesystem is not among them and no mount point is above', () => {
    expect(unitHolding('/etc/fstab', [app, boot])).toBeUndefined();
    expect(unitHolding('/srv/app/conf', [boot, app])).toBe(app);
  });

  it('does not depend on the order of the units', () => {
    for (const order of [[root, boot, app], [app, boot, root], [boot, root, app]]) {
      expect(unitHolding('/srv/app/conf', order)).toBe(app);
      expect(unitHolding('/boot/x', order)).toBe(boot);
      expect(unitHolding('/etc/x', order)).toBe(root);
    }
  });
});

describe('rewrittenIn', () => {
  const hostname = file('/etc/hostname', { text: 'replica\n' });
  const moved = file('/etc/network/interfaces', { renamedTo: '/etc/network/interfaces.new' });
  const appConf = file('/srv/app/conf', { text: 'x=1\n' });
  const apple = file('/srv/apple/conf', { text: 'y=2\n' });
  const emptyText = file('/etc/motd', { text: '' });
  const files = [hostname, moved, appConf, apple, emptyText];

  it('keeps the files of the unit that get new text, skipping move-only files', () => {
    expect(rewrittenIn(root, units, files)).toEqual([hostname, apple, emptyText]);
  });

  it('skips the files other units hold', () => {
    expect(rewrittenIn(app, units, files)).toEqual([appConf]);
    expect(rewrittenIn(boot, units, files)).toEqual([]);
  });

  it('keeps a file whose new text is empty (it is still a rewrite)', () => {
    expect(rewrittenIn(root, units, [emptyText])).toEqual([emptyText]);
  });
});

describe('adaptedPath', () => {
  it('is the new name when the fixup renames, else the path', () => {
    expect(adaptedPath(file('/etc/hostname', { text: 'a' }))).toBe('/etc/hostname');
    expect(adaptedPath(file('/etc/a', { renamedTo: '/etc/b' }))).toBe('/etc/b');
  });
});

describe('keepOutPatterns', () => {
  it('keeps out both the path and the new name, once each', () => {
    expect(
      keepOutPatterns([
        file('/etc/hostname', { text: 'a' }),
        file('/etc/sysconfig/network-scripts/ifcfg-eth0', { text: 'b', renamedTo: '/etc/sysconfig/network-scripts/ifcfg-ens3' }),
        file('/etc/hostname', { text: 'c' }),
        file('/etc/x', { renamedTo: '/etc/hostname' }),
      ]),
    ).toEqual(['/etc/hostname', '/etc/sysconfig/network-scripts/ifcfg-eth0', '/etc/sysconfig/network-scripts/ifcfg-ens3', '/etc/x']);
  });

  it('is empty for no files', () => {
    expect(keepOutPatterns([])).toEqual([]);
  });

  it('leaves a path without a wildcard as it is, backslashes included', () => {
    expect(keepOutPatterns([file('/etc/a b/c.conf', { text: '' }), file('/etc/back\\slash', { text: '' })])).toEqual(['/etc/a b/c.conf', '/etc/back\\slash']);
  });

  it('escapes *, ?, [ and backslash in a path that has a wildcard', () => {
    expect(keepOutPatterns([file('/etc/foo[1]', { text: '' })])).toEqual(['/etc/foo\\[1]']);
    expect(keepOutPatterns([file('/etc/what?', { text: '' })])).toEqual(['/etc/what\\?']);
    expect(keepOutPatterns([file('/etc/*.conf', { text: '' })])).toEqual(['/etc/\\*.conf']);
    expect(keepOutPatterns([file('/etc/a\\b*', { text: '' })])).toEqual(['/etc/a\\\\b\\*']);
  });

  it('escapes the new name on its own terms', () => {
    expect(keepOutPatterns([file('/etc/plain', { renamedTo: '/etc/odd[name]' })])).toEqual(['/etc/plain', '/etc/odd\\[name]']);
  });
});

describe('rsyncOptions keepOut', () => {
  const keepOut = ['/etc/network/interfaces', '/srv/app/conf'];

  it('re-anchors the kept-out paths at the filesystem and drops those outside it', () => {
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'srv/app', keepOut })).toEqual(['--exclude=/conf']);
  });

  it('keeps every path out of the root filesystem, after the spec exclusions', () => {
    expect(rsyncOptions({ excludePaths: ['/tmp/*'], nestedMounts: ['srv/app'], relativePath: '', keepOut })).toEqual([
      '--exclude=/srv/app/*',
      '--exclude=/tmp/*',
      '--exclude=/etc/network/interfaces',
      '--exclude=/srv/app/conf',
    ]);
  });

  it('adds nothing without keepOut or when none falls inside', () => {
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'boot' })).toEqual([]);
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'boot', keepOut })).toEqual([]);
  });

  it('passes escaped patterns through unchanged', () => {
    const patterns = keepOutPatterns([file('/srv/app/a[1]', { text: '' })]);
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'srv/app', keepOut: patterns })).toEqual(['--exclude=/a\\[1]']);
  });
});
