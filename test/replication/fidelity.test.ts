/**
 * What a copy carries on the worst day: names no one should have made (newlines, leading dashes,
 * shell syntax, bytes that are not UTF-8, 255-byte parts, deep paths), special files, sparse files,
 * hard links across folders, chattr flags and times outside 1901-2038, through a first copy by tar
 * streams, an rsync delta and the relay. Needs root; the lab script sets everything up.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSidecar } from '../../src/sync/attributes.js';
import { rmm } from '../support/cli.js';
import { labCut, labDown, labJoin, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { describeTree, diffTrees, pathKey, readFlags } from '../support/tree.js';

const isRoot = process.getuid?.() === 0;

/** The file that `$(touch …)` or backticks in a name would make wherever a shell ran it. */
const SENTINEL = 'rmm-pwned';

/** Names that a shell, an option parser or a line-based reader would take for something else. */
const HOSTILE_NAMES: Buffer[] = [
  'new\nline',
  'tab\there',
  '-rf',
  '--delete',
  `$(touch ${SENTINEL})`,
  `\`touch ${SENTINEL}\``,
  `x; touch ${SENTINEL} #`,
  "single'quote",
  'double"quote',
  'back\\slash\\n',
  ' leading and trailing space ',
  '*',
  '[a-z]?',
  '\x01\x1b[31mcontrol',
  '..dots',
  'ünïcödé ✓',
  'a'.repeat(255),
].map((n) => Buffer.from(n));
// Bytes that are not UTF-8 (as a Latin-1 or broken system writes them).
HOSTILE_NAMES.push(Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from([0xff, 0xfe, 0x0a, 0x80]));

const join = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));

/** 60 folders of 50 bytes: a 3,000-byte path, under the 4,096 bytes rsync and tar can name (see the test below). */
const DEEP = Array.from({ length: 60 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(48)}`).join('/');

function makeHostileTree(dir: string): void {
  // A tree left by an earlier run (RMM_KEEP_LAB) holds immutable files.
  if (existsSync(dir)) execFileSync('chattr', ['-R', '-i', '-a', dir], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const name of HOSTILE_NAMES) {
    // Each name as a folder holding a file of the same name, and as a file beside it.
    mkdirSync(join(dir, 'folders', name), { recursive: true });
    writeFileSync(join(dir, 'folders', name, name), Buffer.concat([Buffer.from('inside '), name]));
    mkdirSync(join(dir, 'files'), { recursive: true });
    writeFileSync(join(dir, 'files', name), Buffer.concat([Buffer.from('named '), name]));
  }
  symlinkSync(`$(touch ${SENTINEL})\n-rf`, join(dir, 'files', 'link to a hostile target'));
  mkdirSync(path.join(dir, DEEP), { recursive: true });
  writeFileSync(join(dir, DEEP, `-rf $(touch ${SENTINEL})\n`), 'deep\n');
  // Special files and hard links across folders of one filesystem.
  const special = path.join(dir, 'special');
  mkdirSync(path.join(special, 'a'), { recursive: true });
  mkdirSync(path.join(special, 'b'), { recursive: true });
  execFileSync('mkfifo', [path.join(special, '-fifo\n')]);
  execFileSync('mknod', [path.join(special, 'char $(null)'), 'c', '1', '3']);
  execFileSync('mknod', [path.join(special, 'block `loop`'), 'b', '7', '200']);
  const sparse = path.join(special, 'a', 'sparse\tfile');
  writeFileSync(sparse, '');
  truncateSync(sparse, 32 * 1024 * 1024);
  const fd = openSync(sparse, 'r+');
  writeSync(fd, Buffer.alloc(4096, 9), 0, 4096, 16 * 1024 * 1024);
  closeSync(fd);
  writeFileSync(path.join(special, 'a', 'linked\nthrice'), 'one inode, three names\n');
  linkSync(path.join(special, 'a', 'linked\nthrice'), path.join(special, 'b', '-linked'));
  linkSync(path.join(special, 'a', 'linked\nthrice'), join(dir, DEEP, 'linked deep'));
  // tar skips sockets: a first copy that holds one ends with an rsync pass over the same names.
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path.join(special, `-socket $(touch ${SENTINEL})`)]);
  writeFileSync(path.join(special, 'owned'), 'owned by 4242:4343\n');
  execFileSync('chown', ['4242:4343', path.join(special, 'owned')]);
  chmodSync(path.join(special, 'owned'), 0o4750);
}

/** Files with chattr flags this filesystem takes (btrfs: C; xfs: S); returns nothing. */
function setFlags(dir: string, fsType: 'btrfs' | 'xfs'): void {
  const flagged = path.join(dir, 'flagged');
  mkdirSync(flagged, { recursive: true });
  const set = (name: string, flags: string, content = `${flags}\n`): void => {
    writeFileSync(path.join(flagged, name), content);
    execFileSync('chattr', [flags, '--', path.join(flagged, name)]);
  };
  set('immutable', '+i');
  set('append-only', '+a');
  set('noatime', '+A');
  set('-nodump\n', '+d');
  set('several', '+Ad');
  if (fsType === 'btrfs') {
    const nocow = path.join(flagged, 'nocow');
    writeFileSync(nocow, ''); // nocow takes only on an empty file
    execFileSync('chattr', ['+C', nocow]);
    writeFileSync(nocow, 'no copy on write\n');
  } else {
    set('sync', '+S');
  }
  execFileSync('chattr', ['+A', flagged]);
}

/** Times outside what a signed 32-bit time_t holds: before 1901, after 2038, after xfs's bigtime. */
const TIMES = { 'before-1901': Date.UTC(1850, 0, 1) / 1000, 'after-2038': Date.UTC(2100, 0, 1) / 1000, 'after-2486': Date.UTC(2500, 0, 1) / 1000 } as const;
const XFS_MIN = -(2 ** 31); // 1901-12-13T20:45:52Z
const XFS_BIGTIME_MAX = 16299260424; // 2486-07-02T20:20:24Z

function setTimes(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, seconds] of Object.entries(TIMES)) {
    writeFileSync(path.join(dir, name), `${name}\n`);
    // Not utimesSync: Node takes a negative time for "now".
    execFileSync('touch', ['-h', '-d', `@${seconds}`, path.join(dir, name)]);
  }
}

const mtime = (file: string): number => Number(lstatSync(file, { bigint: true }).mtimeNs / 1_000_000_000n);

describe.skipIf(!isRoot)('what a copy carries on the worst day (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  const replicaDir = (name: string): string => path.join(lab.hosts.target.root, 'srv/replicas', name);
  const current = (name: string): string => path.join(replicaDir(name), readlinkSync(path.join(replicaDir(name), 'current')));
  // The trees copied from each filesystem of the origin: the btrfs root and the xfs /srv/data.
  const TREES = ['hostile', 'srv/data/hostile'] as const;

  /** Every difference between the origin's hostile trees and the replica's; flags and times have checks of their own. */
  const differences = (replica: string): string[] =>
    TREES.flatMap((tree) => diffTrees(describeTree(path.join(originRoot, tree), ['times']), describeTree(path.join(current(replica), tree), ['times'])).map((d) => `${tree}: ${d}`));

  /** Where a shell could have run a name: the origin, the target and this host. */
  const sentinels = (): string[] => {
    const found = execFileSync('find', [originRoot, lab.hosts.target.root, '-xdev', '-name', `${SENTINEL}*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const dir of [process.cwd(), '/tmp', '/root', '/', lab.stateDir]) if (existsSync(path.join(dir, SENTINEL))) found.push(path.join(dir, SENTINEL));
    return found;
  };

  /** The flags sidecar of a filesystem in the replica's current point, as rmm wrote it. */
  const sidecar = (replica: string, mountPoint: string): Map<string, string> => {
    const point = path.basename(current(replica));
    const file = path.join(replicaDir(replica), '.rmm/points', point, `attributes-${encodeURIComponent(mountPoint)}`);
    return parseSidecar(readFileSync(file), file);
  };

  /** The origin's flags under `tree` as the sidecar of its filesystem must hold them, and what that sidecar holds there. */
  const flagsOf = (replica: string, tree: string, mountPoint: string, within: string): { origin: Map<string, string>; recorded: Map<string, string> } => {
    const origin = new Map([...readFlags(path.join(originRoot, tree))].map(([rel, f]) => [rel === '.' ? within : `${within}/${rel}`, f]));
    const recorded = new Map([...sidecar(replica, mountPoint)].filter(([rel]) => rel === within || rel.startsWith(`${within}/`)).map(([rel, f]) => [pathKey(Buffer.from(rel, 'latin1')), f]));
    return { origin, recorded };
  };

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    makeHostileTree(path.join(originRoot, 'hostile'));
    makeHostileTree(path.join(originRoot, 'srv/data/hostile'));
    setFlags(path.join(originRoot, 'hostile'), 'btrfs');
    setFlags(path.join(originRoot, 'srv/data/hostile'), 'xfs');
    setTimes(path.join(originRoot, 'hostile/times'));
    setTimes(path.join(originRoot, 'srv/data/hostile/times'));
  }, 600_000);

  afterAll(async () => {
    if (!isRoot || process.env.RMM_KEEP_LAB) return;
    await labJoin().catch(() => {});
    await labDown();
  });

  it('copies hostile names, special files and hard links exactly by tar streams on a first copy, and runs none of them', async () => {
    const spec = writeLabSpec(lab, { replica: 'fidelity', exclude: { mounts: ['/u02'] } });
    const { code, out } = await rmm('apply', '-f', spec, '--yes');
    expect(code, out).toBe(0);
    expect(out).toContain('copy /: 2 tar stream(s) into an empty copy');
    expect(out).toContain('copy /srv/data: 2 tar stream(s) into an empty copy');
    // The walk sees every hostile name, byte for byte.
    const origin = describeTree(path.join(originRoot, 'hostile')).entries;
    for (const name of HOSTILE_NAMES) expect(origin.get(pathKey(join('files', name)))?.type).toBe('file');
    expect(origin.get(pathKey(join(DEEP, 'linked deep')))?.hardLinks).toContain('special/b/-linked');
    expect(differences('fidelity')).toEqual([]);
    expect(sentinels()).toEqual([]);
  });

  it('records every chattr flag with the recovery point and sets none on the replica', () => {
    for (const [tree, mountPoint, within] of [['hostile', '/', 'hostile'], ['srv/data/hostile', '/srv/data', 'hostile']] as const) {
      const { origin, recorded } = flagsOf('fidelity', tree, mountPoint, within);
      expect(origin.get(`${within}/flagged/immutable`)).toBe('i');
      expect(recorded).toEqual(origin);
      // Not on the replica: an immutable or append-only inode there would break linking and pruning.
      expect(readFlags(path.join(current('fidelity'), tree))).toEqual(new Map());
    }
  });

  /** Each tree's times on the replica: what the origin has, clamped to what the target's xfs (bigtime) holds. */
  const expectTimes = (replica: string): void => {
    const copy = current(replica);
    for (const tree of TREES) {
      const at = (root: string, name: string) => mtime(path.join(root, tree, 'times', name));
      expect(at(copy, 'after-2038')).toBe(at(originRoot, 'after-2038'));
      expect(at(copy, 'before-1901')).toBe(Math.max(XFS_MIN, at(originRoot, 'before-1901')));
      expect(at(copy, 'after-2486')).toBe(Math.min(XFS_BIGTIME_MAX, at(originRoot, 'after-2486')));
    }
  };

  it('keeps times after 2038 everywhere, and times before 1901 where the filesystem can (btrfs -> xfs: clamped to 1901-12-13)', () => {
    expectTimes('fidelity');
    expect(mtime(path.join(current('fidelity'), 'hostile/times/after-2038'))).toBe(TIMES['after-2038']);
    // The origin's btrfs holds any 64-bit time; its xfs clamps as the target's does.
    expect(mtime(path.join(originRoot, 'hostile/times/before-1901'))).toBe(TIMES['before-1901']);
    expect(mtime(path.join(originRoot, 'srv/data/hostile/times/before-1901'))).toBe(XFS_MIN);
  });

  it('carries renames and changes of hostile names by an rsync delta, flags included', async () => {
    for (const tree of TREES) {
      const dir = path.join(originRoot, tree);
      renameSync(join(dir, 'files', 'new\nline'), join(dir, 'files', 'renamed\nline -rf'));
      renameSync(join(dir, 'folders', '-rf'), join(dir, 'folders', '--delete=renamed'));
      writeFileSync(join(dir, 'files', `$(touch ${SENTINEL})`), 'changed content\n');
      writeFileSync(join(dir, 'files', Buffer.from([0x63, 0x61, 0x66, 0xe9])), 'changed, still not UTF-8\n');
      writeFileSync(join(dir, DEEP, `\`touch ${SENTINEL}\` new`), 'new deep file\n');
      unlinkSync(path.join(dir, 'special/b/-linked'));
      linkSync(path.join(dir, 'special/a/linked\nthrice'), path.join(dir, 'special/b/--relinked'));
      execFileSync('chattr', ['-A', '+d', '--', path.join(dir, 'flagged/noatime')]);
      execFileSync('chattr', ['-i', '--', path.join(dir, 'flagged/immutable')]);
      writeFileSync(path.join(dir, 'flagged/immutable'), 'no longer immutable\n');
      execFileSync('chattr', ['+i', '--', path.join(dir, 'flagged/immutable')]);
      // New times out of range, so that rsync carries them (the first copy's went by tar).
      execFileSync('touch', ['-h', '-d', '@-5364662400', path.join(dir, 'times/before-1901')]); // 1800
      execFileSync('touch', ['-h', '-d', '@7258118400', path.join(dir, 'times/after-2038')]); // 2200
    }
    // Someone made files of the last point immutable on the target: rsync cannot link them
    // (link(2) fails with EPERM), and rm cannot prune them.
    const last = current('fidelity');
    for (const file of ['etc/hostname', 'srv/data/hostile/special/owned']) execFileSync('chattr', ['+i', path.join(last, file)]);
    const spec = writeLabSpec(lab, { replica: 'fidelity', exclude: { mounts: ['/u02'] } });
    const { code, out } = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'fidelity');
    expect(code, out).toBe(0);
    expect(out).not.toContain('tar stream');
    expect(existsSync(last), 'the last point was pruned (one point kept)').toBe(false);
    expect(differences('fidelity')).toEqual([]);
    expectTimes('fidelity');
    expect(mtime(path.join(current('fidelity'), 'hostile/times/after-2038'))).toBe(7258118400);
    const { origin, recorded } = flagsOf('fidelity', 'hostile', '/', 'hostile');
    expect(origin.get('hostile/flagged/noatime')).toBe('d');
    expect(recorded).toEqual(origin);
    expect(sentinels()).toEqual([]);
  });

  it('carries the same through the relay: a first copy by tar streams and an rsync delta', async () => {
    await labCut();
    try {
      const spec = writeLabSpec(lab, { replica: 'fidelity-relay', transfer: 'relay', exclude: { mounts: ['/u02'] } });
      const first = await rmm('apply', '-f', spec, '--yes');
      expect(first.code, first.out).toBe(0);
      expect(first.out).toContain('copy /: 2 tar stream(s) into an empty copy');
      expect(first.out).toContain('copy /srv/data: 2 tar stream(s) into an empty copy');
      expect(differences('fidelity-relay')).toEqual([]);
      expectTimes('fidelity-relay');
      for (const tree of TREES) renameSync(join(originRoot, tree, 'files', 'tab\there'), join(originRoot, tree, 'files', `tab\there; touch ${SENTINEL}`));
      const delta = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'fidelity-relay');
      expect(delta.code, delta.out).toBe(0);
      expect(delta.out).not.toContain('tar stream');
      expect(differences('fidelity-relay')).toEqual([]);
      expectTimes('fidelity-relay');
      const { origin, recorded } = flagsOf('fidelity-relay', 'srv/data/hostile', '/srv/data', 'hostile');
      expect(recorded).toEqual(origin);
      expect(sentinels()).toEqual([]);
    } finally {
      await labJoin();
    }
  });

  it('names a path too long for rsync and tar (4,096 bytes) instead of failing vaguely, and converges once it is gone', async () => {
    // Made through relative walks: no tool here can name it by one path either.
    const deep = path.join(originRoot, 'srv/data/hostile/too-deep');
    execFileSync('python3', ['-c', 'import os,sys\nos.makedirs(sys.argv[1],exist_ok=True)\nfd=os.open(sys.argv[1],os.O_RDONLY)\nfor i in range(70):\n  os.mkdir("e"*63,dir_fd=fd); n=os.open("e"*63,os.O_RDONLY,dir_fd=fd); os.close(fd); fd=n\nopen(os.open("leaf",os.O_WRONLY|os.O_CREAT,dir_fd=fd),"w").write("deep\\n")', deep]);
    const before = readlinkSync(path.join(replicaDir('fidelity'), 'current'));
    const spec = writeLabSpec(lab, { replica: 'fidelity', exclude: { mounts: ['/u02'] } });
    const failed = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'fidelity');
    expect(failed.code, failed.out).toBe(1);
    expect(failed.out).toContain('which neither rsync nor tar can copy');
    expect(readlinkSync(path.join(replicaDir('fidelity'), 'current'))).toBe(before);
    execFileSync('python3', ['-c', 'import shutil,sys; shutil.rmtree(sys.argv[1])', deep]);
    const again = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'fidelity');
    expect(again.code, again.out).toBe(0);
    expect(differences('fidelity')).toEqual([]);
  });
});
