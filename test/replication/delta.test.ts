/**
 * A later sync by what changed (src/sync/delta.ts, src/apply/delta-copy.ts) between real lab hosts,
 * onto an xfs target (the new point starts as hard links to the last point's files) and a btrfs one
 * (each point a subvolume, the new one a snapshot of the last): rsync sends only the entries whose
 * listing record changed. After every kind of change the whole tree equals the origin, and the last
 * point is untouched; a kill mid-copy leaves it intact and the next apply converges.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { describeTree, diffTrees } from '../support/tree.js';

const isRoot = process.getuid?.() === 0;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');
const SKIP = ['proc', 'sys', 'dev', 'run', 'tmp', 'u02', 'var/tmp', 'var/log'];

const TARGETS = [
  {
    fs: 'xfs',
    path: '/srv/replicas',
    start: /the new point starts as hard links to recovery point/,
  },
  {
    fs: 'btrfs',
    path: '/srv/snapshots',
    start: /the new point starts as a btrfs snapshot of recovery point/,
  },
] as const;

describe.skipIf(!isRoot)('a later sync sends what changed (needs root)', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await labUp();
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  describe.each(TARGETS)('onto a $fs target', (target) => {
    let origin: string;
    let replicaDir: string;
    let spec: string;

    const record = (): ReplicaRecord => JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
    const current = (): string => path.join(replicaDir, readlinkSync(path.join(replicaDir, 'current')));
    const app = (...p: string[]) => path.join(origin, 'srv/app', ...p);
    const data = (...p: string[]) => path.join(origin, 'srv/data', ...p);
    const sameAsOrigin = () => expect(diffTrees(describeTree(origin, SKIP), describeTree(current(), SKIP))).toEqual([]);

    const isSubvolume = (dir: string) =>
      statSync(dir).ino === 256 &&
      execFileSync('stat', ['-f', '-c', '%T', dir], {
        encoding: 'utf8',
      }).trim() === 'btrfs';

    beforeAll(() => {
      origin = lab.hosts.origin.root;
      replicaDir = path.join(lab.hosts.target.root, target.path, 'origin-copy');
      makeData(origin, target.fs === 'xfs');
      // Three points: the one before the last stays, to be compared after each sync.
      spec = writeLabSpec(lab, {
        policy: { retention: { recoveryPoints: 3 } },
        targetPath: target.path,
      });
    });

    it('keeps each filesystem\'s listing with the first point', async () => {
      const { code, out } = await rmm('apply', '-f', spec, '--yes');
      expect(out).toContain('consistent at recovery point');
      expect(code).toBe(0);
      sameAsOrigin();
      const id = record().points.at(-1)!.id;
      const kept = readdirSync(path.join(replicaDir, '.rmm/points', id)).filter((n) => n.startsWith('listing-'));
      expect(kept.map((n) => n.replace(/\.[0-9a-f]{16}\.gz$/, '')).sort()).toEqual(['listing-%2F', 'listing-%2Fsrv%2Fdata']);
      expect(isSubvolume(current())).toBe(target.fs === 'btrfs');
    });

    it('sends only the changed entries after every kind of change, and leaves the last point as it was', async () => {
      const last = current();
      const before = describeTree(last, SKIP);
      changeEverything(origin);
      const { code, out } = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
      expect(code, out).toBe(0);
      expect(out).toMatch(/copy \/: \d+ of \d+ entries changed or new since recovery point/);
      expect(out).toMatch(/copy \/srv\/data: \d+ of \d+ entries changed or new since recovery point/);
      expect(out).toMatch(target.start);
      expect(isSubvolume(current())).toBe(target.fs === 'btrfs');
      // Into a snapshot, a changed file is written in place (its changed blocks), never into the last
      // point; into hard-linked points, one of 1 GiB or more (huge.img) as a reflink of the point's.
      expect(/changed files are updated in place/.test(out)).toBe(target.fs === 'btrfs');
      // A large file written in place (on xfs only: huge.img) has an rsync of its own, beside the other entries'.
      expect(/copy \/: 1 large file\(s\) written in place by an rsync of their own/.test(out)).toBe(target.fs === 'xfs');
      expect(/copy \/: 1 changed file\(s\) of 1 GiB or more updated in place, as reflinks of recovery point/.test(out)).toBe(target.fs === 'xfs');
      expect(out).not.toMatch(/copy \/srv\/data: \d+ (large file|changed file\(s\) of 1 GiB)/);
      sameAsOrigin();
      // The last point: not one file, mode, owner, link or xattr changed by the new one.
      expect(diffTrees(before, describeTree(last, SKIP))).toEqual([]);
      expect(current()).not.toBe(last);
      // A file replaced without its time changing is caught by its change time.
      expect(readFileSync(path.join(current(), 'srv/app/same-time'), 'utf8')).toBe('after!\n');
      expect(statSync(path.join(current(), 'srv/app/sparse-later')).blocks * 512).toBeLessThan(1024 * 1024);
      expect(statSync(path.join(current(), 'srv/app/dense')).blocks * 512).toBeLessThan(2 * 1024 * 1024);
      if (target.fs === 'xfs') {
        // The 4 KiB written inside huge.img was all that was written: the rest of it is the last point's blocks.
        const huge = path.join(current(), 'srv/app/huge.img');
        expect(statSync(huge).ino).not.toBe(statSync(path.join(last, 'srv/app/huge.img')).ino);
        expect(execFileSync('filefrag', ['-v', huge], { encoding: 'utf8' })).toMatch(/shared/);
        expect(statSync(huge).blocks * 512).toBeLessThan(4 * 1024 * 1024);
      }
      const stats = record().points.at(-1)!.stats!;
      expect(stats.files).toBeGreaterThan(2000); // every entry of the point, not only those sent
      expect(stats.filesTransferred).toBeLessThan(200);
      expect(execFileSync('getfacl', ['-p', path.join(current(), 'srv/data/new-acl-dir')], { encoding: 'utf8' })).toContain('default:user:1234:rwx');
      // Excluded paths stay out: a change there sends nothing.
      expect(existsSync(path.join(current(), 'var/tmp/cache-file'))).toBe(false);
    });

    it('copies a filesystem in full when its kept listing is not the one its record names, and still equals the origin', async () => {
      const id = record().points.at(-1)!.id;
      const dir = path.join(replicaDir, '.rmm/points', id);
      const file = readdirSync(dir).find((n) => n.startsWith('listing-%2Fsrv%2Fdata'))!;
      execFileSync('sh', ['-c', `printf 'planted' | gzip > "$1"`, 'sh', path.join(dir, file)]);
      writeFileSync(data('after-planted'), 'x\n');
      writeFileSync(app('many/d00/f0001.dat'), 'changed again\n');
      const { code, out } = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
      expect(code, out).toBe(0);
      expect(out).toMatch(/copy \/: \d+ of \d+ entries changed or new/);
      expect(out).not.toMatch(/copy \/srv\/data: \d+ of \d+ entries changed/);
      expect(out).toMatch(target.start);
      sameAsOrigin();
    });

    it('keeps every filesystem whole when only an inner one has a usable listing, and drops what a new exclusion covers', async () => {
      // `/` without a usable listing, /srv/data with one: / is walked in full, never into /srv/data's folder.
      const dir = path.join(replicaDir, '.rmm/points', record().points.at(-1)!.id);
      const rootListing = readdirSync(dir).find((n) => n.startsWith('listing-%2F.'))!;
      execFileSync('sh', ['-c', `printf 'planted' | gzip > "$1"`, 'sh', path.join(dir, rootListing)]);
      writeFileSync(data('after-root-planted'), 'w\n');
      writeFileSync(app('many/d04/f0401.dat'), 'changed while / is copied in full\n');
      const first = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
      expect(first.code, first.out).toBe(0);
      expect(first.out).toMatch(/copy \/srv\/data: \d+ of \d+ entries changed or new/);
      expect(first.out).not.toMatch(/copy \/: \d+ of \d+ entries changed/);
      sameAsOrigin();
      // A new exclusion: what the last point holds there is not in the new one, and stays in the last.
      const narrower = writeLabSpec(lab, { policy: { retention: { recoveryPoints: 3 } }, targetPath: target.path, exclude: { mounts: ['/u02'], paths: ['/var/tmp/*', '/srv/app/many/d09/*'] } });
      const last = current();
      const second = await rmm('apply', '-f', narrower, '--yes', '--sync-now', 'origin-copy');
      expect(second.code, second.out).toBe(0);
      expect(readdirSync(path.join(current(), 'srv/app/many/d09'))).toEqual([]);
      expect(readdirSync(path.join(last, 'srv/app/many/d09'))).toHaveLength(100);
      const but = (root: string) => describeTree(root, [...SKIP, 'srv/app/many/d09']);
      expect(diffTrees(but(origin), but(current()))).toEqual([]);
      // Back to the first exclusions: the folder's files are copied again.
      const third = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
      expect(third.code, third.out).toBe(0);
      sameAsOrigin();
    });

    it('leaves the last point intact when rmm is killed mid-copy, and the next apply converges and compares again', async () => {
      const last = current();
      const before = describeTree(last, SKIP);
      for (let i = 0; i < 20; i++) chmodSync(app('many', 'd01', `f${String(100 + i).padStart(4, '0')}.dat`), 0o600);
      // New content with its size and time put back, not yet sent when rmm is killed: only the
      // listing's change time tells, so the next apply must compare again, not trust rsync's quick check.
      const was = statSync(app('big.bin'), { bigint: true }).mtimeNs;
      writeFileSync(app('big.bin'), randomBytes(48 * 1024 * 1024));
      execFileSync('touch', ['-m', '-d', `@${was / 1_000_000_000n}.${String(was % 1_000_000_000n).padStart(9, '0')}`, app('big.bin')]);
      // On the xfs target a reflink of the last point's, written in place when rmm is killed.
      if (target.fs === 'xfs') writeInside(app('huge.img'), HUGE_DATA_AT + 65536);
      const slow = writeLabSpec(lab, {
        policy: { retention: { recoveryPoints: 3 }, bandwidthLimit: '8MiB/s' },
        targetPath: target.path,
      });
      const child = spawn(process.execPath, [cli, 'apply', '-f', slow, '--yes', '--sync-now', 'all'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      const start = Date.now();
      while (!/copy \/: \d+ of \d+ entries changed/.test(text)) {
        if (Date.now() - start > 60_000) throw new Error(`no delta copy started:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 2500));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(current()).toBe(last);
      expect(diffTrees(before, describeTree(last, SKIP))).toEqual([]);
      expect(record().state).toBe('in-progress');
      const inPlaceList = path.join(replicaDir, '.rmm/partial-in-place');
      if (target.fs === 'xfs') expect(readFileSync(inPlaceList, 'latin1')).toContain('./srv/app/huge.img\0');

      // The lock's holder lets go once rmm's connection is gone.
      const apply = async () => {
        for (let i = 0; ; i++) {
          const r = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
          if (r.code === 0 || i === 20) return r;
          await new Promise((res) => setTimeout(res, 2000));
        }
      };
      const resumed = await apply();
      expect(resumed.code, resumed.out).toBe(0);
      expect(record().state).toBe('consistent');
      // big.bin's new content, with its old size and time, is there: not linked from the last point.
      sameAsOrigin();
      // The interrupted copy goes to the trash (for a new snapshot on btrfs, hard links again on xfs), and is compared again.
      expect(resumed.out).toMatch(/the copy an interrupted run left goes to the trash[^]*entries changed or new/);
      // The list of the files it was writing in place goes with it.
      expect(existsSync(inPlaceList)).toBe(false);
      // An unchanged file is the last point's (a hard link, or the same inode in a snapshot), not a copy of it.
      expect(statSync(app('appended').replace(origin, current())).ino).toBe(statSync(app('appended').replace(origin, last)).ino);
      expect(diffTrees(before, describeTree(last, SKIP))).toEqual([]);

      writeFileSync(app('after-kill'), 'y\n');
      const next = await apply();
      expect(next.code, next.out).toBe(0);
      expect(next.out).toMatch(/copy \/: \d+ of \d+ entries changed or new/);
      sameAsOrigin();
    });
    it.runIf(target.fs === 'btrfs')('with no listing to compare, still starts from a snapshot, and prunes a point by deleting its subvolume', async () => {
      const last = current();
      const before = describeTree(last, SKIP);
      const id = record().points.at(-1)!.id;
      const dir = path.join(replicaDir, '.rmm/points', id);
      for (const file of readdirSync(dir).filter((n) => n.startsWith('listing-'))) execFileSync('sh', ['-c', `printf 'planted' | gzip > "$1"`, 'sh', path.join(dir, file)]);
      writeFileSync(app('many/d02/f0201.dat'), 'changed once more\n');
      writeFileSync(data('after-both-planted'), 'z\n');
      const { code, out } = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
      expect(code, out).toBe(0);
      expect(out).toMatch(target.start);
      expect(out).not.toMatch(/entries changed or new/);
      sameAsOrigin();
      expect(diffTrees(before, describeTree(last, SKIP))).toEqual([]);
      // Retention keeps 3: the points' folders are those the record names, each a subvolume, once
      // the pruned ones (moved to the trash) are deleted after the run.
      const ids = () => readdirSync(path.join(replicaDir, 'points')).sort();
      const trash = path.join(replicaDir, '.rmm/trash');
      for (let i = 0; i < 100 && existsSync(trash) && readdirSync(trash).length > 0; i++) await new Promise((r) => setTimeout(r, 300));
      expect(readdirSync(trash)).toEqual([]);
      expect(ids()).toEqual(
        record()
          .points.map((p) => p.id)
          .sort(),
      );
      expect(record().points).toHaveLength(3);
      for (const p of ids()) expect(isSubvolume(path.join(replicaDir, 'points', p))).toBe(true);
      const volumes = execFileSync('btrfs', ['subvolume', 'list', '-o', path.join(lab.hosts.target.root, target.path)], { encoding: 'utf8' });
      expect(
        volumes
          .split('\n')
          .filter((l) => l.includes('origin-copy/'))
          .map((l) => l.replace(/^.* path /, '').replace(/^.*origin-copy\//, ''))
          .sort(),
      ).toEqual(ids().map((p) => `points/${p}`));
    });
  });
});

/** `huge`: with a file of 1 GiB (sparse), which an xfs target's hard-linked points take in place. */
function makeData(root: string, huge: boolean): void {
  rmSync(path.join(root, 'srv/app'), { recursive: true, force: true });
  // /srv/data is a mount point: what an earlier run put in it goes, the folder stays.
  for (const name of readdirSync(path.join(root, 'srv/data'))) rmSync(path.join(root, 'srv/data', name), { recursive: true, force: true });
  for (let d = 0; d < 20; d++) {
    mkdirSync(path.join(root, 'srv/app/many', `d${String(d).padStart(2, '0')}`), { recursive: true });
    for (let i = 0; i < 100; i++) writeFileSync(path.join(root, 'srv/app/many', `d${String(d).padStart(2, '0')}`, `f${String(d * 100 + i).padStart(4, '0')}.dat`), randomBytes(500 + ((d * 100 + i) % 1500)));
  }
  const a = (...p: string[]) => path.join(root, 'srv/app', ...p);
  writeFileSync(a('same-time'), 'before\n');
  utimesSync(a('same-time'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
  writeFileSync(a('appended'), 'one\n');
  writeFileSync(a('to-delete'), 'gone soon\n');
  mkdirSync(a('dir-to-delete/inner'), { recursive: true });
  writeFileSync(a('dir-to-delete/inner/f'), 'inner\n');
  writeFileSync(a('to-rename'), 'renamed\n');
  writeFileSync(a('to-move'), 'moved\n');
  writeFileSync(a('linked-a'), 'a pair\n');
  linkSync(a('linked-a'), a('linked-b'));
  writeFileSync(a('gets-a-link'), 'alone first\n');
  writeFileSync(a('dense'), randomBytes(4 * 1024 * 1024));
  writeFileSync(a('big.bin'), randomBytes(48 * 1024 * 1024));
  if (huge) {
    // 1 GiB, sparse but for 1 MiB: written in place when it changes (src/apply/delta-copy.ts IN_PLACE_MIN_BYTES).
    writeFileSync(a('huge.img'), '');
    truncateSync(a('huge.img'), 1024 * 1024 * 1024);
    const fd = openSync(a('huge.img'), 'r+');
    writeSync(fd, randomBytes(1024 * 1024), 0, 1024 * 1024, HUGE_DATA_AT);
    closeSync(fd);
  }
  writeFileSync(a('file-to-dir'), 'a file first\n');
  mkdirSync(a('dir-to-file'));
  writeFileSync(a('dir-to-file/x'), 'x\n');
  symlinkSync('same-time', a('link-retarget'));
  symlinkSync('appended', a('link-to-file'));
  writeFileSync(a('mode-only'), 'mode\n');
  writeFileSync(a('owner-only'), 'owner\n');
  writeFileSync(a('xattr-only'), 'xattr\n');
  writeFileSync(a('acl-only'), 'acl\n');
  writeFileSync(path.join(root, 'srv/data/payload.bin'), randomBytes(4 * 1024 * 1024));
  writeFileSync(path.join(root, 'srv/data/keep.txt'), 'kept\n');
  // xfs keeps a default ACL as an xattr the copy must not remove (src/sync/rsync.ts).
  mkdirSync(path.join(root, 'srv/data/acl-dir'), { recursive: true });
  execFileSync('setfacl', ['-d', '-m', 'u:1234:rwx', path.join(root, 'srv/data/acl-dir')]);
  mkdirSync(path.join(root, 'var/tmp'), { recursive: true });
  writeFileSync(path.join(root, 'u02/asm-disk-contents'), 'must never leave the origin\n');
}

/** Where huge.img holds its data; the rest of it is a hole. */
const HUGE_DATA_AT = 512 * 1024 * 1024;

/** 4 KiB of new data at `offset` of a file, in place. */
function writeInside(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, randomBytes(4096), 0, 4096, offset);
  closeSync(fd);
}

function changeEverything(root: string): void {
  const a = (...p: string[]) => path.join(root, 'srv/app', ...p);
  if (existsSync(a('huge.img'))) writeInside(a('huge.img'), HUGE_DATA_AT + 8192);
  // Content changed, size and time put back: only the change time tells.
  writeFileSync(a('same-time'), 'after!\n'.slice(0, 7));
  utimesSync(a('same-time'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
  writeFileSync(a('appended'), 'two\n', { flag: 'a' });
  for (let i = 0; i < 20; i++) writeFileSync(a('many/d03', `f${String(300 + i).padStart(4, '0')}.dat`), randomBytes(700));
  mkdirSync(a('new-dir/deeper'), { recursive: true });
  writeFileSync(a('new-dir/deeper/new'), 'new\n');
  unlinkSync(a('to-delete'));
  rmSync(a('dir-to-delete'), { recursive: true });
  renameSync(a('to-rename'), a('renamed'));
  renameSync(a('to-move'), a('many/d05/moved'));
  unlinkSync(a('linked-b'));
  linkSync(a('gets-a-link'), a('many/d06/the-link'));
  // A dense file made sparse, and a sparse copy of zeros.
  execFileSync('fallocate', ['--punch-hole', '--offset', '0', '--length', String(3 * 1024 * 1024), a('dense')]);
  writeFileSync(a('zeros'), Buffer.alloc(4 * 1024 * 1024));
  execFileSync('cp', ['--reflink=never', '--sparse=always', a('zeros'), a('sparse-later')]);
  unlinkSync(a('zeros'));
  unlinkSync(a('file-to-dir'));
  mkdirSync(a('file-to-dir'));
  writeFileSync(a('file-to-dir/now-inside'), 'inside\n');
  rmSync(a('dir-to-file'), { recursive: true });
  writeFileSync(a('dir-to-file'), 'a file now\n');
  unlinkSync(a('link-retarget'));
  symlinkSync('appended', a('link-retarget'));
  unlinkSync(a('link-to-file'));
  writeFileSync(a('link-to-file'), 'a file, was a link\n');
  chmodSync(a('mode-only'), 0o600);
  chownSync(a('owner-only'), 4242, 4343);
  execFileSync('setfattr', ['-n', 'user.rmm-delta', '-v', 'set', a('xattr-only')]);
  execFileSync('setfacl', ['-m', 'u:1234:rw', a('acl-only')]);
  chmodSync(a('many/d07'), 0o700);
  // The fsfreeze'd xfs: content in place, a new file, a mode.
  const fd = openSync(path.join(root, 'srv/data/payload.bin'), 'r+');
  writeSync(fd, randomBytes(4096), 0, 4096, 1024 * 1024);
  closeSync(fd);
  truncateSync(path.join(root, 'srv/data/payload.bin'), 5 * 1024 * 1024);
  writeFileSync(path.join(root, 'srv/data/new.txt'), 'new on xfs\n');
  mkdirSync(path.join(root, 'srv/data/new-acl-dir'));
  execFileSync('setfacl', ['-d', '-m', 'u:1234:rwx,g:2345:rx', path.join(root, 'srv/data/new-acl-dir')]);
  writeFileSync(path.join(root, 'srv/data/acl-dir/inherits'), 'inherits the default ACL\n');
  chmodSync(path.join(root, 'srv/data/keep.txt'), 0o640);
  writeFileSync(path.join(root, 'var/tmp/cache-file'), 'excluded by path\n');
}
