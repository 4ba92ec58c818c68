import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MAKE_AND_SHOW, readMadeFolder } from '../../src/sync/tar.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

// MAKE_AND_SHOW on a real filesystem mounted with and without grpid: where new files take their
// folder's group, tar --no-same-owner would give a root file the folder's group, so no stream may.
describe.skipIf(!isRoot)("the copy's folder on a filesystem mounted grpid (needs root for a loop mount)", () => {
  let dir: string;
  let mnt: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rmm-grpid-'));
    mnt = path.join(dir, 'mnt');
    await run('truncate', ['-s', '16M', path.join(dir, 'fs.img')]);
    await run('mkfs.ext4', ['-q', '-F', path.join(dir, 'fs.img')]);
    await run('mkdir', [mnt]);
    await run('mount', ['-o', 'loop,grpid', path.join(dir, 'fs.img'), mnt]);
  });

  afterAll(async () => {
    await run('umount', [mnt]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  const show = async (folder: string): Promise<string> => (await run('sh', ['-c', MAKE_AND_SHOW, 'rmm-dest', folder])).stdout;

  it('gives every owner while the filesystem is mounted grpid, and leaves them to tar when it is not', async () => {
    // What grpid does: a file made by root in a folder of group 4000 takes group 4000.
    await run('mkdir', [path.join(mnt, 'theirs')]);
    await run('chgrp', ['4000', path.join(mnt, 'theirs')]);
    await writeFile(path.join(mnt, 'theirs', 'mine'), '');
    expect((await stat(path.join(mnt, 'theirs', 'mine'))).gid).toBe(4000);

    const grpid = await show(path.join(mnt, 'copy'));
    expect(grpid.split('\n')[3]).toMatch(/(^|,)grpid(,|$)/);
    expect(readMadeFolder(grpid)).toEqual({ acl: 'xattrs' });

    await run('mount', ['-o', 'remount,nogrpid', mnt]);
    expect(readMadeFolder(await show(path.join(mnt, 'copy')))).toEqual({ acl: 'xattrs', tarUser: { uid: 0, gid: 0 } });
  });
});
