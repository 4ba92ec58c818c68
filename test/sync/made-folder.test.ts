import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MAKE_AND_SHOW, readMadeFolder } from '../../src/sync/tar.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

// MAKE_AND_SHOW on real filesystems where new files take their folder's group (grpid as a mount
// option, and as the ext4 superblock's default, which no mount option shows): tar --no-same-owner
// would give a root file the folder's group there, so no stream may skip giving owners.
describe.skipIf(!isRoot)("the copy's folder where new files take the folder's group (needs root for loop mounts)", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rmm-grpid-'));
  });

  afterAll(async () => {
    for (const name of ['a', 'b']) await run('umount', [path.join(dir, name)]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  /** A fresh 16 MiB ext4 mounted at DIR/NAME; `defaults` go into its superblock (tune2fs -o). */
  const ext4 = async (name: string, { options, defaults }: { options?: string; defaults?: string }): Promise<string> => {
    const image = path.join(dir, `${name}.img`);
    const mnt = path.join(dir, name);
    await run('truncate', ['-s', '16M', image]);
    await run('mkfs.ext4', ['-q', '-F', image]);
    if (defaults) await run('tune2fs', ['-o', defaults, image]);
    await run('mkdir', [mnt]);
    await run('mount', ['-o', `loop${options ? `,${options}` : ''}`, image, mnt]);
    return mnt;
  };
  const show = async (folder: string): Promise<string> => (await run('sh', ['-c', MAKE_AND_SHOW, 'rmm-dest', folder])).stdout;
  const groupOfNewFile = async (mnt: string): Promise<number> => {
    await run('mkdir', ['-p', path.join(mnt, 'theirs')]);
    await run('chgrp', ['4000', path.join(mnt, 'theirs')]);
    await writeFile(path.join(mnt, 'theirs', 'mine'), '');
    return (await stat(path.join(mnt, 'theirs', 'mine'))).gid;
  };

  it('gives every owner on a filesystem mounted grpid, and leaves owners to tar once it is not', async () => {
    const mnt = await ext4('a', { options: 'grpid' });
    expect(await groupOfNewFile(mnt)).toBe(4000);
    expect(readMadeFolder(await show(path.join(mnt, 'copy')))).toEqual({ acl: 'xattrs' });

    await run('mount', ['-o', 'remount,nogrpid', mnt]);
    expect(readMadeFolder(await show(path.join(mnt, 'copy')))).toEqual({ acl: 'xattrs', tarUser: { uid: 0, gid: 0 } });
    expect((await readdir(path.join(mnt, 'copy'))).filter((n) => n.startsWith('.rmm-probe'))).toEqual([]);
  });

  it('gives every owner where grpid is the superblock default, which the mount options do not show', async () => {
    const mnt = await ext4('b', { defaults: 'bsdgroups' });
    expect((await run('findmnt', ['-n', '-o', 'OPTIONS', '-T', mnt])).stdout).not.toMatch(/grpid|bsdgroups/);
    expect(await groupOfNewFile(mnt)).toBe(4000);
    expect(readMadeFolder(await show(path.join(mnt, 'copy')))).toEqual({ acl: 'xattrs' });
    expect((await readdir(path.join(mnt, 'copy'))).filter((n) => n.startsWith('.rmm-probe'))).toEqual([]);
  });
});
