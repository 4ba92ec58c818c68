import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AFTER_RUN, DROP, DROP_SPARES, FROM_POINT, PRUNE, REFLINK } from '../../src/target/directory/driver.js';

/**
 * The directory driver's scripts for a copy by what changed, run with sh on real folders as the
 * landing host runs them: the copy made of the last point's hard links (a spare made after the run,
 * or cp -al), entries dropped from it never through a symbolic link, pruned points moved to the
 * trash and emptied by the job that runs after the run.
 */

let base: string;
const sh = (script: string, args: string[], input?: Buffer) => spawnSync('sh', ['-c', script, 'rmm-test', ...args], { input, encoding: 'utf8' });
const put = (path: string, text = 'x\n') => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
};
const waitGone = async (pattern: string) => {
  for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', pattern]).status === 0; i++) await new Promise((r) => setTimeout(r, 100));
};

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'rmm-dir-scripts-'));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('the copy by what changed, on the landing host', () => {
  it('starts the copy as hard links to every file of the point, folders made anew', () => {
    const point = join(base, 'points/P');
    put(join(point, 'etc/hosts'));
    symlinkSync('hosts', join(point, 'etc/link'));
    const partial = join(base, 'points/.partial');
    mkdirSync(partial, { recursive: true });
    const res = sh(FROM_POINT, [point, partial, join(base, '.rmm/spare.P'), 'links', join(base, '.rmm/trash')]);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe('linked');
    expect(statSync(join(partial, 'etc/hosts')).ino).toBe(statSync(join(point, 'etc/hosts')).ino);
    expect(statSync(join(partial, 'etc')).ino).not.toBe(statSync(join(point, 'etc')).ino);
  });

  it('starts nothing without `links`, into a copy an interrupted run left, or from a point whose folder is gone (not a btrfs subvolume here)', () => {
    const point = join(base, 'points/P');
    put(join(point, 'f'));
    const partial = join(base, 'points/.partial');
    mkdirSync(partial, { recursive: true });
    const trash = join(base, '.rmm/trash');
    expect(sh(FROM_POINT, [point, partial, join(base, '.rmm/spare.P'), 'none', trash]).stdout.trim()).toBe('none');
    expect(readdirSync(partial)).toEqual([]);
    put(join(partial, 'left-by-a-killed-run'));
    expect(sh(FROM_POINT, [point, partial, join(base, '.rmm/spare.P'), 'links', trash]).stdout.trim()).toBe('none');
    expect(readdirSync(partial)).toEqual(['left-by-a-killed-run']);
    expect(sh(FROM_POINT, [join(base, 'points/GONE'), partial, join(base, '.rmm/spare.GONE'), 'links', trash]).stdout.trim()).toBe('none');
    expect(existsSync(trash)).toBe(false);
  });

  it('with `fresh`, moves what an interrupted run left to the trash first, then starts from the point', () => {
    const point = join(base, 'points/P');
    put(join(point, 'f'), 'the point\n');
    const partial = join(base, 'points/.partial');
    put(join(partial, 'f'), 'half written by a killed run\n');
    put(join(partial, 'extra'), 'a file the killed run made\n');
    const trash = join(base, '.rmm/trash');
    const res = sh(FROM_POINT, [point, partial, join(base, '.rmm/spare.P'), 'fresh', trash]);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe('linked replaced');
    expect(readdirSync(partial)).toEqual(['f']);
    expect(statSync(join(partial, 'f')).ino).toBe(statSync(join(point, 'f')).ino);
    expect(readdirSync(trash)).toHaveLength(1);
    // An empty copy with `fresh` is started as with `links`.
    rmSync(partial, { recursive: true });
    mkdirSync(partial);
    expect(sh(FROM_POINT, [point, partial, join(base, '.rmm/spare.P'), 'fresh', trash]).stdout.trim()).toBe('linked');
  });

  it('takes a whole spare of the point instead, by rename', () => {
    const point = join(base, 'points/P');
    put(join(point, 'f'));
    const spare = join(base, '.rmm/spare.P');
    put(join(spare, 'f'));
    const partial = join(base, 'points/.partial');
    mkdirSync(partial, { recursive: true });
    const res = sh(FROM_POINT, [point, partial, spare, 'links', join(base, '.rmm/trash')]);
    expect(res.stdout.trim()).toBe('spare');
    expect(existsSync(spare)).toBe(false);
    expect(readdirSync(partial)).toEqual(['f']);
  });

  it('leaves the copy empty when a file of the point cannot be linked (immutable on the target)', () => {
    const point = join(base, 'points/P');
    put(join(point, 'a/ok'));
    put(join(point, 'a/locked'));
    if (spawnSync('chattr', ['+i', join(point, 'a/locked')]).status !== 0) return; // a filesystem without flags
    try {
      const partial = join(base, 'points/.partial');
      mkdirSync(partial, { recursive: true });
      const res = sh(FROM_POINT, [point, partial, join(base, '.rmm/spare.P'), 'links', join(base, '.rmm/trash')]);
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout.trim()).toBe('unlinkable');
      expect(readdirSync(partial)).toEqual([]);
    } finally {
      spawnSync('chattr', ['-i', join(point, 'a/locked')]);
    }
  });

  it('drops entries, but never through a symbolic link in the copy', () => {
    const copy = join(base, 'copy');
    const outside = join(base, 'outside');
    put(join(outside, 'secret'));
    put(join(copy, 'dir/file'));
    put(join(copy, 'dir/keep'));
    put(join(copy, 'gone/deep/x'));
    put(join(copy, 'name with\nnewline'));
    symlinkSync(outside, join(copy, 'link'));
    const list = Buffer.from(['dir/file', 'gone', 'link/secret', 'name with\nnewline', 'missing/x', ''].join('\0'));
    const res = sh(DROP, [copy], list);
    expect(res.status, res.stderr).toBe(0);
    expect(existsSync(join(copy, 'dir/file'))).toBe(false);
    expect(existsSync(join(copy, 'dir/keep'))).toBe(true);
    expect(existsSync(join(copy, 'gone'))).toBe(false);
    expect(existsSync(join(copy, 'name with\nnewline'))).toBe(false);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('x\n');
    // The link itself is an entry like any other.
    expect(sh(DROP, [copy], Buffer.from('link\0')).status).toBe(0);
    expect(existsSync(join(copy, 'link'))).toBe(false);
    expect(existsSync(outside)).toBe(true);
  });

  it('makes changed files reflinks of the point\'s (or removes them where the filesystem cannot), removes new files the copy holds, never through a symbolic link, and lists them first', () => {
    const point = join(base, 'points/P');
    const copy = join(base, 'points/.partial');
    const outside = join(base, 'outside');
    const marker = join(base, '.rmm/partial-in-place');
    mkdirSync(join(base, '.rmm'), { recursive: true });
    put(join(outside, 'secret'));
    for (const f of ['db/data', 'db/other', 'db/stale-new']) {
      put(join(point, f), `${f}\n`);
      mkdirSync(join(copy, 'db'), { recursive: true });
      linkSync(join(point, f), join(copy, f));
    }
    symlinkSync(outside, join(copy, 'link'));
    symlinkSync(outside, join(point, 'link'));
    const records = Buffer.from(['kdb/data', 'klink/secret', 'ndb/stale-new', 'nnot/there', 'xdb/other', ''].join('\0'));
    const res = sh(REFLINK, [point, copy, marker], records);
    expect(res.status, res.stderr).toBe(0);
    const probe = spawnSync('cp', ['--reflink=always', join(point, 'db/other'), join(base, 'probe')]).status === 0;
    expect(res.stdout.trim()).toBe(probe ? 'reflinked' : 'dropped');
    if (probe) {
      expect(statSync(join(copy, 'db/data')).ino).not.toBe(statSync(join(point, 'db/data')).ino);
      expect(readFileSync(join(copy, 'db/data'), 'utf8')).toBe('db/data\n');
    } else expect(existsSync(join(copy, 'db/data'))).toBe(false);
    // The point's file is as it was, with one name less.
    expect(readFileSync(join(point, 'db/data'), 'utf8')).toBe('db/data\n');
    expect(statSync(join(point, 'db/data')).nlink).toBe(1);
    expect(existsSync(join(copy, 'db/stale-new'))).toBe(false);
    expect(existsSync(join(point, 'db/stale-new'))).toBe(true);
    // An unknown record's file stays linked; nothing outside is read or written.
    expect(statSync(join(copy, 'db/other')).ino).toBe(statSync(join(point, 'db/other')).ino);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('x\n');
    expect(readFileSync(marker, 'latin1').split('\0')).toEqual(['./db/data', '']);

    // A copy an interrupted run left drops what the list names before anything else, and the list goes.
    put(join(copy, 'db/data'), 'half written\n');
    const from = sh(FROM_POINT, [point, copy, join(base, '.rmm/spare.P'), 'links', join(base, '.rmm/trash'), marker]);
    expect(from.status, from.stderr).toBe(0);
    expect(from.stdout.trim()).toBe('none');
    expect(existsSync(join(copy, 'db/data'))).toBe(false);
    expect(existsSync(join(copy, 'db/other'))).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  it('prunes into the trash, and the job after the run makes the spare, then empties the trash', async () => {
    const points = join(base, 'points');
    put(join(points, 'OLD/f'));
    put(join(points, 'NEW/f'));
    linkSync(join(points, 'NEW/f'), join(points, 'NEW/g'));
    const trash = join(base, '.rmm/trash');
    const res = sh(PRUNE, [trash, join(points, 'OLD'), join(base, 'no-such')]);
    expect(res.status, res.stderr).toBe(0);
    expect(readdirSync(points)).toEqual(['NEW']);
    expect(readdirSync(trash)).toHaveLength(1);
    put(join(base, '.rmm/spare.OLD/stale'));
    const spare = join(base, '.rmm/spare');
    expect(sh(AFTER_RUN, [trash, join(points, 'NEW'), spare, 'NEW']).status).toBe(0);
    expect(readdirSync(trash)).toEqual([]);
    expect(existsSync(`${spare}.OLD`)).toBe(false);
    expect(statSync(`${spare}.NEW/f`).ino).toBe(statSync(join(points, 'NEW/f')).ino);
    expect(statSync(`${spare}.NEW/g`).ino).toBe(statSync(join(points, 'NEW/f')).ino);
    await waitGone(trash);
  });

  it("ends the replica's job after the run and trashes every spare before a point is rewritten", async () => {
    const trash = join(base, '.rmm/trash');
    const spare = join(base, '.rmm/spare');
    put(`${spare}.P/f`);
    put(`${spare}.making-1/f`);
    // A stand-in for the job after the run: named as AFTER_RUN's is, by its trash folder.
    spawnSync('sh', ['-c', 'setsid sh -c "sleep 31; :" rmm-after-run "$1" x y z </dev/null >/dev/null 2>&1 &', 'sh', trash]);
    await new Promise((r) => setTimeout(r, 200));
    expect(spawnSync('pgrep', ['-f', `rmm-after-run ${trash}`]).status).toBe(0);
    const res = sh(DROP_SPARES, [trash, spare]);
    expect(res.status, res.stderr).toBe(0);
    expect(readdirSync(join(base, '.rmm')).filter((n) => n.startsWith('spare'))).toEqual([]);
    expect(readdirSync(trash)).toHaveLength(2);
    await waitGone(`rmm-after-run ${trash}`);
    expect(spawnSync('pgrep', ['-f', `rmm-after-run ${trash}`]).status).toBe(1);
    expect(spawnSync('pgrep', ['-f', 'sleep 31']).status).toBe(1); // its child went with it
  });
});
