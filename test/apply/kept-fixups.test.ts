import { describe, expect, it } from 'vitest';
import { adaptedPath, keptPaths, rewrittenIn, unitHolding } from '../../src/apply/kept-fixups.js';
import type { PlannedFixupFile, PlannedUnit } from '../../src/plan/action.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KERNEL_FILES } from '../../src/plan/disks.js';
import { literalPattern, RSYNC_BASE, rsyncOptions } from '../../src/sync/rsync.js';

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

describe('keptPaths', () => {
  it('keeps out both the path and the new name, once each', () => {
    expect(
      keptPaths([
        file('/etc/hostname', { text: 'a' }),
        file('/etc/sysconfig/network-scripts/ifcfg-eth0', { text: 'b', renamedTo: '/etc/sysconfig/network-scripts/ifcfg-ens3' }),
        file('/etc/hostname', { text: 'c' }),
        file('/etc/x', { renamedTo: '/etc/hostname' }),
      ]),
    ).toEqual(['/etc/hostname', '/etc/sysconfig/network-scripts/ifcfg-eth0', '/etc/sysconfig/network-scripts/ifcfg-ens3', '/etc/x']);
  });

  it('is empty for no files', () => {
    expect(keptPaths([])).toEqual([]);
  });
});

describe('literalPattern', () => {
  it('leaves a path without a wildcard as it is, backslashes included', () => {
    expect(literalPattern('/etc/a b/c.conf')).toBe('/etc/a b/c.conf');
    expect(literalPattern('/etc/back\\slash')).toBe('/etc/back\\slash');
  });

  it('escapes *, ?, [ and backslash in a path that has a wildcard', () => {
    expect(literalPattern('/etc/foo[1]')).toBe('/etc/foo\\[1]');
    expect(literalPattern('/etc/what?')).toBe('/etc/what\\?');
    expect(literalPattern('/etc/*.conf')).toBe('/etc/\\*.conf');
    expect(literalPattern('/etc/a\\b*')).toBe('/etc/a\\\\b\\*');
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

  it('escapes a kept-out path after re-anchoring it, so a mount point with a wildcard in its name still holds it', () => {
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'srv/app', keepOutPaths: ['/srv/app/a[1]'] })).toEqual(['--exclude=/a\\[1]']);
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'srv/a*b', keepOutPaths: ['/srv/a*b/etc/conf'] })).toEqual(['--exclude=/etc/conf']);
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: '', keepOutPaths: ['/srv/a*b/etc/conf'] })).toEqual(['--exclude=/srv/a\\*b/etc/conf']);
  });

  it('escapes a nested mount point before its contents pattern', () => {
    expect(rsyncOptions({ excludePaths: [], nestedMounts: ['srv/a[1]'], relativePath: '' })).toEqual(['--exclude=/srv/a\\[1]/*']);
  });

  it('protects the kernel files inside the filesystem that holds them: sent, never deleted', () => {
    const protect = ['/boot/vmlinuz-*', '/lib/modules/*', '/usr/lib/modules/*'];
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: '', protect })).toEqual(['--filter=P /boot/vmlinuz-*', '--filter=P /lib/modules/*', '--filter=P /usr/lib/modules/*']);
    expect(rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: 'boot', protect })).toEqual(['--filter=P /vmlinuz-*']);
  });
});

describe('the options with a real rsync: a later sync onto a replica that boots', () => {
  it('sends a new kernel, keeps the one the origin removed, keeps the adapted files, deletes the rest', () => {
    const base = mkdtempSync(join(tmpdir(), 'rmm-kernels-'));
    try {
      const put = (dir: string, path: string, text: string) => {
        mkdirSync(dirname(join(base, dir, path)), { recursive: true });
        writeFileSync(join(base, dir, path), text);
      };
      // The replica as the last sync left it: kernel 1, the adapted network file, a file the origin removes since.
      for (const f of ['boot/vmlinuz-1', 'usr/lib/modules/1/x.ko', 'boot/initrd.img-1', 'srv/a*b/interfaces', 'etc/gone']) put('copy', f, 'old');
      put('copy', 'srv/a*b/interfaces', 'adapted');
      // The origin now: kernel 2 only, its own network file.
      for (const f of ['boot/vmlinuz-2', 'usr/lib/modules/2/x.ko', 'boot/initrd.img-2']) put('origin', f, 'new');
      put('origin', 'srv/a*b/interfaces', 'origin');
      const options = rsyncOptions({ excludePaths: [], nestedMounts: [], relativePath: '', keepOut: ['/boot/initrd.img-*'], keepOutPaths: ['/srv/a*b/interfaces'], protect: KERNEL_FILES, delayUpdates: true });
      const res = spawnSync('rsync', [...RSYNC_BASE.filter((o) => o !== '--info=progress2'), ...options, `${join(base, 'origin')}/`, `${join(base, 'copy')}/`], { encoding: 'utf8' });
      expect(res.status, res.stderr).toBe(0);
      const at = (p: string) => join(base, 'copy', p);
      expect(['boot/vmlinuz-1', 'usr/lib/modules/1/x.ko', 'boot/vmlinuz-2', 'usr/lib/modules/2/x.ko'].every((p) => existsSync(at(p)))).toBe(true);
      // The origin's initramfs images fit its hardware: neither sent nor deleted.
      expect(existsSync(at('boot/initrd.img-2'))).toBe(false);
      expect(readFileSync(at('boot/initrd.img-1'), 'utf8')).toBe('old');
      expect(readFileSync(at('srv/a*b/interfaces'), 'utf8')).toBe('adapted');
      expect(existsSync(at('etc/gone'))).toBe(false);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
