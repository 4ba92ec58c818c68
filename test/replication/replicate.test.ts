/**
 * Replication between real lab hosts (network namespaces, sshd, btrfs and xfs, rsync): what an
 * operator would check after `rmm apply`. Needs root; the lab script sets everything up.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, truncateSync, openSync, writeSync, closeSync, linkSync, symlinkSync, chownSync, chmodSync, lchownSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labCut, labDown, labExec, labJoin, labUp, type Lab } from '../support/lab/lab.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { describeTree, diffTrees } from '../support/tree.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { expectOutput, expectStatus } from '../support/json-contract.js';

const isRoot = process.getuid?.() === 0;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');


describe.skipIf(!isRoot)('replication between lab hosts (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let replicaDir: string;
  let spec: string;

  const record = (name = 'origin-copy'): ReplicaRecord =>
    JSON.parse(readFileSync(path.join(lab.hosts.target.root, 'srv/replicas', name, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
  const current = (): string => path.join(replicaDir, readlinkSync(path.join(replicaDir, 'current')));
  // srv/data/names holds a name that is not UTF-8, which the tree walk cannot name: checked on its own.
  const SKIP = ['proc', 'sys', 'dev', 'run', 'tmp', 'u02', 'var/tmp', 'var/log', 'srv/data/names'];
  const LATIN1_NAME = Buffer.concat([Buffer.from('srv/data/names/caf'), Buffer.from([0xe9]), Buffer.from('.txt')]);

  /** Starts `rmm apply` in its own process on a big new file at 8 MiB/s, and returns once rsync is copying. */
  async function startSlowSync(bigFile: string) {
    writeFileSync(path.join(originRoot, 'srv/app', bigFile), randomBytes(64 * 1024 * 1024));
    const slow = writeLabSpec(lab, { policy: { bandwidthLimit: '8MiB/s' } });
    const child = spawn(process.execPath, [cli, 'apply', '-f', slow, '--yes', '--sync-now', 'all'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    await waitFor(() => text.includes('sync / ->'), 60_000, () => text);
    await new Promise((r) => setTimeout(r, 2500));
    return { child, slow, output: () => text };
  }

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    replicaDir = path.join(lab.hosts.target.root, 'srv/replicas/origin-copy');
    makeOriginData(originRoot);
    spec = writeLabSpec(lab);
  });

  afterAll(async () => {
    // RMM_KEEP_LAB=1 leaves the lab up to look at after a failure.
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it('plans an initial sync with the snapshot of each filesystem, and exits 3 (changes pending)', async () => {
    const { code, out } = await rmm('plan', '-f', spec);
    expect(out).toContain('initial sync');
    expect(out).toContain('copy / (btrfs) from a btrfs snapshot');
    expect(out).toContain('copy /srv/data (xfs) from a fsfreeze snapshot');
    expect(out).toContain('skip /u02 (exclude.mounts /u02)');
    expect(code).toBe(3);
  });

  it('makes the target identical to the origin on the first apply, as a non-root user with sudo', async () => {
    const { code, out } = await rmm('apply', '-f', spec, '--yes');
    expect(out).toContain('consistent at recovery point');
    expect(code).toBe(0);
    const diff = diffTrees(describeTree(originRoot, SKIP), describeTree(current(), SKIP));
    expect(diff).toEqual([]);
    expect(record().state).toBe('consistent');
    expect(record().points).toHaveLength(1);
    expect(record().origin.machineId).toBe(readFileSync(path.join(originRoot, 'etc/machine-id'), 'utf8').trim());
    // /srv/data went by tar streams, fed names as bytes.
    const at = (root: string) => Buffer.concat([Buffer.from(`${root}/`), LATIN1_NAME]);
    expect(readFileSync(at(current())).toString()).toBe('not UTF-8\n');
    // The first copy's manifests came from its tar streams' listings: a scan of the origin now finds the same.
    expect(out).toContain('copy /srv/data: 2 tar stream(s) into an empty copy');
    const again = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
    expect(again.out).toContain(`recovery point ${record().points[0]!.id} verified, nothing to copy`);
  });

  it('keeps exclusions off the target: the excluded volume and the excluded paths', () => {
    expect(existsSync(path.join(current(), 'u02'))).toBe(true); // the mount point stays, empty
    expect(execFileSync('ls', ['-A', path.join(current(), 'u02')], { encoding: 'utf8' })).toBe('');
    expect(existsSync(path.join(current(), 'var/tmp/cache-file'))).toBe(false);
    expect(existsSync(path.join(current(), 'srv/data/payload.bin'))).toBe(true);
  });

  it('plans nothing the second time and exits 0', async () => {
    const { code, out } = await rmm('plan', '-f', spec);
    expect(out).toContain('no changes');
    expect(code).toBe(0);
    const applied = await rmm('apply', '-f', spec, '--yes');
    expect(applied.code).toBe(0);
    expect(applied.out).not.toContain('sync (run');
  });

  it('sends about the 1% of files that changed', async () => {
    for (let i = 0; i < 10_000; i += 100) writeFileSync(manyFile(originRoot, i), randomBytes(1000 + (i % 3000)));
    const { code } = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
    expect(code).toBe(0);
    const stats = record().points.at(-1)!.stats!;
    expect(stats.filesTransferred).toBeGreaterThanOrEqual(100);
    expect(stats.filesTransferred).toBeLessThan(120);
    expect(stats.bytesSent).toBeLessThan(stats.bytesTotal * 0.05);
    expect(diffTrees(describeTree(originRoot, SKIP), describeTree(current(), SKIP))).toEqual([]);
  });

  it('verifies instead of copying when nothing changed, and copies again after a change to metadata only', async () => {
    const before = record().points;
    const unchanged = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
    expect(unchanged.code).toBe(0);
    expect(unchanged.out).toContain(`recovery point ${before.at(-1)!.id} verified, nothing to copy`);
    expect(record().points.map((p) => p.id)).toEqual(before.map((p) => p.id));
    expect(record().points.at(-1)!.verifiedAt).toBeDefined();
    expect(record().state).toBe('consistent');

    // No content changes: an xattr on the fsfreeze'd xfs, a mode on the btrfs root.
    execFileSync('setfattr', ['-n', 'user.rmm-test', '-v', 'changed', path.join(originRoot, 'srv/data/payload.bin')]);
    chmodSync(manyFile(originRoot, 7), 0o640);
    const changed = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'origin-copy');
    expect(changed.code).toBe(0);
    expect(changed.out).toContain('consistent at recovery point');
    expect(record().points.at(-1)!.id).not.toBe(before.at(-1)!.id);
    expect(diffTrees(describeTree(originRoot, SKIP), describeTree(current(), SKIP))).toEqual([]);
  });

  it('leaves no ephemeral key on the target and no work folder on the origin after a direct sync', async () => {
    for (const home of ['root', 'home/rmm']) {
      const keys = path.join(lab.hosts.target.root, home, '.ssh/authorized_keys');
      expect(readFileSync(keys, 'utf8')).not.toContain('rmm-ephemeral');
    }
    expect(execFileSync('ls', ['-A', path.join(originRoot, 'tmp')], { encoding: 'utf8' })).not.toContain('.rmm-');
    expect((await labExec('origin', ['ls', '-A', '/run'])).stdout).not.toContain('.rmm-origin-copy');
  });

  it('relays through rmm when origin and target cannot reach each other', async () => {
    await labCut();
    try {
      writeFileSync(path.join(originRoot, 'srv/app/relayed.txt'), 'came through the rmm host\n');
      const relaySpec = writeLabSpec(lab, { transfer: 'relay' });
      const { code, out } = await rmm('apply', '-f', relaySpec, '--yes', '--sync-now', 'all');
      expect(out).toContain('consistent at recovery point');
      expect(code).toBe(0);
      expect(readFileSync(path.join(current(), 'srv/app/relayed.txt'), 'utf8')).toBe('came through the rmm host\n');
      expect(diffTrees(describeTree(originRoot, SKIP), describeTree(current(), SKIP))).toEqual([]);
    } finally {
      await labJoin();
    }
  });

  it('carries a first copy by relay as tar streams through rmm, identical to the origin', async () => {
    await labCut();
    const dir = path.join(lab.hosts.target.root, 'srv/replicas/relay-first');
    try {
      const relayFirst = writeLabSpec(lab, { replica: 'relay-first', transfer: 'relay', policy: { parallelStreams: 3 }, exclude: { mounts: ['/u02'] } });
      const { code, out } = await rmm('apply', '-f', relayFirst, '--yes');
      expect(out).toContain('copy /srv/data: 3 tar stream(s) into an empty copy');
      expect(code, out).toBe(0);
      const copy = path.join(dir, readlinkSync(path.join(dir, 'current')));
      expect(diffTrees(describeTree(originRoot, SKIP), describeTree(copy, SKIP))).toEqual([]);
    } finally {
      await labJoin();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a target whose host key changed, and writes nothing', async () => {
    const knownHosts = path.join(path.dirname(spec), 'known_hosts.wrong');
    const fake = path.join(path.dirname(spec), 'fake_key');
    rmSync(fake, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', fake]);
    const fakeKey = readFileSync(`${fake}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const lines = readFileSync(lab.knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith(lab.hosts.target.address));
    writeFileSync(knownHosts, [...lines, `${lab.hosts.target.address} ${fakeKey}`, ''].join('\n'));
    const wrong = writeLabSpec(lab, { replica: 'hostkey-check', knownHosts });
    const { code, out } = await rmm('apply', '-f', wrong, '--yes');
    expect(out).toMatch(/host key.*changed/i);
    expect(code).toBe(1);
    expect(existsSync(path.join(lab.hosts.target.root, 'srv/replicas/hostkey-check'))).toBe(false);
  });

  it('keeps the last consistent copy when rmm is killed mid-sync, and the next apply converges', async () => {
    const before = readlinkSync(path.join(replicaDir, 'current'));
    const { child, slow } = await startSlowSync('big.bin');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    expect(readlinkSync(path.join(replicaDir, 'current'))).toBe(before);
    expect(record().state).toBe('in-progress');
    expect(record().points.at(-1)!.id).toBe(before.replace('points/', ''));
    // The freeze of /srv/data ends with the connection: the origin can write there again.
    execFileSync('timeout', ['20', 'sh', '-c', `echo thawed > ${path.join(originRoot, 'srv/data/after-kill.txt')}`]);
    // The lock's holder saw rmm's connection end without a release: the one-run key went with it.
    const keys = path.join(lab.hosts.target.root, 'home/rmm/.ssh/authorized_keys');
    await waitFor(() => !readFileSync(keys, 'utf8').includes('rmm-ephemeral'), 30_000, () => readFileSync(keys, 'utf8'));

    const plan = await rmm('plan', '-f', slow);
    expect(plan.out).toMatch(/did not finish/);
    const { code } = await rmm('apply', '-f', spec, '--yes');
    expect(code).toBe(0);
    expect(record().state).toBe('consistent');
    expect(diffTrees(describeTree(originRoot, SKIP), describeTree(current(), SKIP))).toEqual([]);
    expect(execFileSync('sh', ['-c', `ls -A ${originRoot} | grep -c rmm-snap || true`], { encoding: 'utf8' }).trim()).toBe('0');
  });

  it('keeps the last consistent copy when the connection to the origin dies mid-sync, and the next apply converges', async () => {
    const before = readlinkSync(path.join(replicaDir, 'current'));
    const { child, output } = await startSlowSync('big2.bin');
    // The origin's sshd processes that serve rmm's login: killing them cuts rmm's connection there.
    const killed = killSessions(originRoot, 'rmm');
    expect(killed).toBeGreaterThan(0);
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(output()).toContain('FAILED');
    expect(readlinkSync(path.join(replicaDir, 'current'))).toBe(before);
    expect(record().state).not.toBe('consistent');

    const { code: again } = await rmm('apply', '-f', spec, '--yes');
    expect(again).toBe(0);
    expect(record().state).toBe('consistent');
    expect(diffTrees(describeTree(originRoot, SKIP), describeTree(current(), SKIP))).toEqual([]);
  });

  it('runs hooks around the sync on the origin, the target and the rmm host, with the documented environment', async () => {
    const dir = path.dirname(spec);
    const localMarker = path.join(dir, 'local-hook.txt');
    writeFileSync(path.join(dir, 'adapt.sh'), '#!/bin/sh\nset -eu\necho "adapted by $RMM_PHASE of $RMM_REPLICA" > "$RMM_TARGET_PATH/current/srv/app/adapted.txt"\n');
    chmodSync(path.join(dir, 'adapt.sh'), 0o755);
    const hooked = writeLabSpec(lab, {
      hooks: {
        preSnapshot: [{ command: ['sh', '-c', 'echo "$RMM_ORIGIN $RMM_PHASE" > /srv/app/pre-snapshot.txt'], on: 'origin', sudo: true }],
        postSync: [
          { script: path.join(dir, 'adapt.sh'), on: 'target', sudo: true },
          { command: ['sh', '-c', `echo "$RMM_REPLICA $RMM_RUN_ID" > ${localMarker}`], on: 'local' },
        ],
      },
    });
    const { code, out } = await rmm('apply', '-f', hooked, '--yes', '--sync-now', 'all');
    expect(out).toContain('preSnapshot hook');
    expect(code).toBe(0);
    // The pre-snapshot hook ran before the snapshot, so its file is in the copy.
    expect(readFileSync(path.join(current(), 'srv/app/pre-snapshot.txt'), 'utf8')).toBe('origin preSnapshot\n');
    expect(readFileSync(path.join(current(), 'srv/app/adapted.txt'), 'utf8')).toBe('adapted by postSync of origin-copy\n');
    expect(readFileSync(localMarker, 'utf8')).toMatch(/^origin-copy \S+\n$/);
  });

  it('fails the sync when a hook fails, and keeps the last consistent copy', async () => {
    const before = readlinkSync(path.join(replicaDir, 'current'));
    // preSync hooks run before a copy; an unchanged origin is verified without one.
    writeFileSync(path.join(originRoot, 'srv/app/before-failing-hook.txt'), 'changed\n');
    const failing = writeLabSpec(lab, { hooks: { preSync: [{ command: ['sh', '-c', 'echo database not ready >&2; exit 7'], on: 'origin' }] } });
    const { code, out } = await rmm('apply', '-f', failing, '--yes', '--sync-now', 'all');
    expect(code).toBe(1);
    expect(out).toContain('preSync hook sh -c');
    expect(out).toContain('database not ready');
    expect(readlinkSync(path.join(replicaDir, 'current'))).toBe(before);
    expect(record().state).toBe('failed');
    expect((await rmm('apply', '-f', spec, '--yes')).code).toBe(0);
  });

  it('applies a saved plan only while the world is as it was planned', async () => {
    const planFile = path.join(path.dirname(spec), 'saved.plan');
    expect((await rmm('plan', '-f', spec, '--sync-now', 'all', '--out', planFile)).code).toBe(3);
    expect((await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all')).code).toBe(0);
    const stale = await rmm('apply', '-f', spec, '--plan', planFile);
    expect(stale.err).toContain('the saved plan is stale');
    expect(stale.err).toContain('the target changed since the plan');
    expect(stale.code).toBe(1);
    expect((await rmm('plan', '-f', spec, '--sync-now', 'all', '--out', planFile)).code).toBe(3);
    const fresh = await rmm('apply', '-f', spec, '--plan', planFile);
    expect(fresh.out).toMatch(/consistent at recovery point|verified, nothing to copy/);
    expect(fresh.code).toBe(0);
  });

  it('discovers the origin: OS, filesystems with free space, tools, network files', async () => {
    const { code, out } = await rmm('discover', 'origin', '-f', spec, '-o', 'json');
    expect(code).toBe(0);
    const { facts, attention } = expectOutput('discover', out) as unknown as { facts: { os: { id: string }; filesystems: { mountPoint: string; fsType: string; availableBytes: number }[]; tools: Record<string, boolean>; networkConfigFiles: string[] }; attention: string[] };
    expect(facts.os.id).toBe('debian');
    // Root first, then by depth: a parent is always listed before what is mounted inside it.
    expect(facts.filesystems.map((f) => [f.mountPoint, f.fsType])).toEqual([
      ['/', 'btrfs'],
      ['/u02', 'xfs'],
      ['/srv/data', 'xfs'],
    ]);
    // The lab's hosts have a blank machine-id, as some images do: discover says why that matters.
    expect(facts.filesystems.every((f) => f.availableBytes > 0)).toBe(true);
    expect(facts.tools.rsync).toBe(true);
    expect(facts.networkConfigFiles).toContain('/etc/network/interfaces');
    expect(attention).toEqual([expect.stringMatching(/^machine-id is blank \(\/etc\/machine-id\): rmm tells a server from another .* run systemd-machine-id-setup on it$/)]);
    const text = await rmm('discover', 'origin', '-f', spec);
    expect(text.out).toContain('machine-id (blank)');
    expect(text.out).toContain(`needs attention:\n  ! ${attention[0]}`);
    // In path order, a mount point right before what is mounted below it.
    expect(text.out.match(/^ {2}(\/\S*) +(?:btrfs|xfs)/gm)?.map((l) => l.trim().split(/ +/)[0])).toEqual(['/', '/srv/data', '/u02']);
    // Any host, without a configuration file.
    const adHoc = await rmm('discover', `rmm@${lab.hosts.origin.address}`, '-i', lab.clientKey, '--known-hosts', lab.knownHosts, '--sudo');
    expect(adHoc.out).toMatch(/btrfs/);
    expect(adHoc.code).toBe(0);
  });

  it('copies a first copy in parallel streams and keeps every guarantee: hard links across shares, ACLs (default ones too), xattrs, sparse files', async () => {
    // No exclude.paths: a filesystem with exclusion patterns is copied in one stream (next test).
    // 8 streams, the lister and the freeze of /srv/data hold 10 channels: more than one connection has.
    const parallel = writeLabSpec(lab, { replica: 'parallel-copy', policy: { parallelStreams: 8 }, exclude: { mounts: ['/u02'] } });
    // One folder written by every stream: the first to end sets its time, the others write into it after.
    const spread = path.join(originRoot, 'srv/data/spread');
    mkdirSync(spread);
    for (let i = 0; i < 24; i++) writeFileSync(path.join(spread, `part-${i}`), randomBytes(2 << 20));
    // A default ACL that the parts, written before it, do not have: a stream that set it while another
    // still created parts would hand them an ACL. What comes after inherits it, on the origin too.
    execFileSync('setfacl', ['-d', '-m', 'u:1234:rwx,g:2345:rx', spread]);
    writeFileSync(path.join(spread, 'inherits'), 'an ACL from the folder\n');
    mkdirSync(path.join(spread, 'inherits-too'));
    const { code, out } = await rmm('apply', '-f', parallel, '--yes');
    expect(out).toContain('copy /: 8 tar stream(s) into an empty copy');
    expect(code, out).toBe(0);
    const copy = path.join(lab.hosts.target.root, 'srv/replicas/parallel-copy/current');
    // Folder times too (but the root's: rmm's snapshot came and went there): the last stream sends the folders again.
    const timed = { folderTimes: true };
    expect(diffTrees(describeTree(originRoot, SKIP, timed), describeTree(path.join(copy, '..', readlinkSync(copy)), SKIP, timed))).toEqual([]);
    expect(existsSync(path.join(copy, 'var/tmp/cache-file'))).toBe(true); // nothing excluded it here
    // A file deleted on the origin is gone from the next point too (the re-sync is one stream with --delete).
    rmSync(path.join(originRoot, 'srv/app/special/fifo'));
    expect((await rmm('apply', '-f', parallel, '--yes', '--sync-now', 'all')).code).toBe(0);
    expect(existsSync(path.join(copy, 'srv/app/special/fifo'))).toBe(false);
    expect(diffTrees(describeTree(originRoot, SKIP), describeTree(path.join(copy, '..', readlinkSync(copy)), SKIP))).toEqual([]);
    rmSync(spread, { recursive: true });
  });

  it("copies a first copy into storage with a default ACL without handing the copy that ACL", async () => {
    // --acls on every entry replaces what it inherits; the cheaper xattrs would keep it.
    const replica = 'inherits-acl';
    const spec = writeLabSpec(lab, { replica, policy: { parallelStreams: 2 }, exclude: { mounts: ['/u02'] } });
    const dir = path.join(lab.hosts.target.root, 'srv/replicas', replica);
    mkdirSync(dir, { recursive: true });
    execFileSync('setfacl', ['-d', '-m', 'g:4000:rwx', dir]);
    // Without its socket, / needs no rsync pass after the streams, which would repair what they left.
    const socket = path.join(originRoot, 'srv/app/special/socket');
    rmSync(socket);
    try {
      const { code, out } = await rmm('apply', '-f', spec, '--yes');
      expect(code, out).toBe(0);
      expect(out).toContain("copy /: 2 tar stream(s) into an empty copy (every entry's ACL set by tar, as the copy's folder inherits one)");
      const copy = path.join(dir, readlinkSync(path.join(dir, 'current')));
      expect(diffTrees(describeTree(originRoot, SKIP), describeTree(copy, SKIP))).toEqual([]);
    } finally {
      execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socket]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives owners only where tar must: its own entries unpacked as created, the rest by streams that give owners", async () => {
    const replica = 'owners';
    const spec = writeLabSpec(lab, { replica, policy: { parallelStreams: 2 }, exclude: { mounts: ['/u02'] } });
    const owners = path.join(originRoot, 'srv/app/owners');
    const shared = path.join(owners, 'shared');
    mkdirSync(path.join(shared, 'below'), { recursive: true });
    chownSync(shared, 0, 4000);
    chmodSync(shared, 0o2775);
    // In a setgid folder a new entry takes the folder's group, and a new folder its setgid bit too.
    writeFileSync(path.join(shared, 'groups'), "the folder's group\n");
    chownSync(path.join(shared, 'groups'), 0, 4000);
    writeFileSync(path.join(shared, 'roots'), "root's group, given after\n");
    chownSync(path.join(shared, 'roots'), 0, 0);
    chownSync(path.join(shared, 'below'), 0, 4000);
    chmodSync(path.join(shared, 'below'), 0o755);
    writeFileSync(path.join(shared, 'below/roots'), "root's group, below a setgid folder\n");
    // fchown drops a file's capabilities: they must be set after its owner.
    const capable = path.join(owners, 'capable');
    writeFileSync(capable, 'cap_net_raw+ep, owned by 4242\n');
    chownSync(capable, 4242, 4242);
    execFileSync('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', capable]);
    symlinkSync('capable', path.join(owners, 'link'));
    lchownSync(path.join(owners, 'link'), 4242, 4343);
    // Without its socket, / needs no rsync pass after the streams, which would repair what they left.
    const socket = path.join(originRoot, 'srv/app/special/socket');
    rmSync(socket);
    const dir = path.join(lab.hosts.target.root, 'srv/replicas', replica);
    try {
      const { code, out } = await rmm('apply', '-f', spec, '--yes');
      expect(code, out).toBe(0);
      const copy = path.join(dir, readlinkSync(path.join(dir, 'current')));
      expect(diffTrees(describeTree(originRoot, SKIP), describeTree(copy, SKIP))).toEqual([]);
      expect(statSync(path.join(copy, 'srv/app/owners/shared/below/roots')).gid).toBe(0);
      expect(out).toContain('copy /: 2 tar stream(s) into an empty copy\n');
      expect(out).toContain('copy /: one more tar stream, for entries tar must give an owner');
    } finally {
      execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socket]);
      rmSync(owners, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const transfer of ['direct', 'relay'] as const) {
    it(`leaves a first copy by tar streams (${transfer}) that was killed unmarked and no tar running, and the next apply finishes it`, async () => {
      const big = path.join(originRoot, 'srv/data/tar-kill.bin');
      writeFileSync(big, randomBytes(160 * 1024 * 1024));
      const replica = `tar-killed-${transfer}`;
      const killed = writeLabSpec(lab, { replica, transfer, policy: { parallelStreams: 2 }, exclude: { mounts: ['/u02'] } });
      const dir = path.join(lab.hosts.target.root, 'srv/replicas', replica);
      const arriving = path.join(dir, 'points/.partial/srv/data/tar-kill.bin');
      if (transfer === 'relay') await labCut();
      try {
        const child = spawn(process.execPath, [cli, 'apply', '-f', killed, '--yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (c: Buffer) => (text += c.toString()));
        await waitFor(() => existsSync(arriving) && statSync(arriving).size > 4 << 20, 60_000, () => text);
        const readAhead = () => running('python3 -c .* rmm-prefetch');
        expect(readAhead()).not.toBe(''); // the origin's read-ahead is running beside the streams
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        expect(text).toContain('2 tar stream(s) into an empty copy');

        expect(existsSync(path.join(dir, 'current'))).toBe(false);
        expect(record(replica).state).toBe('in-progress');
        // The streams end with rmm's connections: no tar of rmm's (its 1 MiB records) left on either host.
        const tars = () => running('tar .*-[cx] -b 2048');
        await waitFor(() => tars() === '', 30_000, tars);
        await waitFor(() => readAhead() === '', 30_000, readAhead);
        execFileSync('timeout', ['20', 'sh', '-c', `echo thawed > ${path.join(originRoot, 'srv/data/after-tar-kill.txt')}`]);

        const again = await rmm('apply', '-f', killed, '--yes');
        expect(again.code, again.out).toBe(0);
        expect(again.out).toContain('one rsync stream, as a copy interrupted earlier is resumed');
        expect(record(replica).state).toBe('consistent');
        const copy = path.join(dir, readlinkSync(path.join(dir, 'current')));
        expect(diffTrees(describeTree(originRoot, SKIP), describeTree(copy, SKIP))).toEqual([]);
      } finally {
        if (transfer === 'relay') await labJoin();
        rmSync(big, { force: true });
        rmSync(path.join(originRoot, 'srv/data/after-tar-kill.txt'), { force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('copies in one stream when exclude.paths applies, so excluded files never reach the target', async () => {
    const excluding = writeLabSpec(lab, { replica: 'parallel-excluding', policy: { parallelStreams: 4 } });
    const { code, out } = await rmm('apply', '-f', excluding, '--yes');
    expect(out).toContain('parallel /: one rsync stream, as exclude.paths applies to it');
    expect(code).toBe(0);
    expect(existsSync(path.join(lab.hosts.target.root, 'srv/replicas/parallel-excluding/current/var/tmp/cache-file'))).toBe(false);
  });

  it('leaves no rsync of a killed run behind on the origin', () => {
    expect(execFileSync('sh', ['-c', 'pgrep -fc "^rsync .*rmm-origin-copy" || true'], { encoding: 'utf8' }).trim()).toBe('0');
  });

  it('reports the replica in rmm status', async () => {
    const { code, out } = await rmm('status', '-f', spec, '-o', 'json');
    const rows = expectStatus(out);
    expect(rows[0]).toMatchObject({ replica: 'origin-copy', state: 'consistent' });
    expect(rows[0]!['recoveryPoints']).toHaveLength(1);
    expect(code).toBe(0);
  });
});

/** The processes whose command line matches, one per line; '' when none. */
function running(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-fa', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
}

async function waitFor(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting; output so far:\n${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Kills the sshd processes serving `user`'s logins on a lab host (those whose root is the host's root). */
function killSessions(hostRoot: string, user: string): number {
  let killed = 0;
  for (const pid of execFileSync('pgrep', ['-f', `^sshd: ${user}`], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    try {
      if (readlinkSync(`/proc/${pid}/root`) !== hostRoot) continue;
      process.kill(Number(pid), 'SIGKILL');
      killed++;
    } catch {
      // gone already
    }
  }
  return killed;
}

function manyFile(root: string, i: number): string {
  return path.join(root, 'srv/app/many', `d${String(Math.floor(i / 100)).padStart(3, '0')}`, `f${String(i).padStart(5, '0')}.dat`);
}

/** Files that exercise what a replica must keep: owners, modes, ACLs, xattrs, hard links, sparse files, devices. */
function makeOriginData(root: string): void {
  mkdirSync(path.join(root, 'srv/data/names'), { recursive: true });
  writeFileSync(Buffer.concat([Buffer.from(`${root}/srv/data/names/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]), 'not UTF-8\n');
  const app = path.join(root, 'srv/app');
  rmSync(app, { recursive: true, force: true });
  for (let i = 0; i < 10_000; i++) {
    const file = manyFile(root, i);
    if (i % 100 === 0) mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(1000 + (i % 3000)));
  }
  const special = path.join(app, 'special');
  mkdirSync(special, { recursive: true });
  writeFileSync(path.join(special, 'original'), 'linked twice\n');
  linkSync(path.join(special, 'original'), path.join(special, 'hardlink'));
  symlinkSync('original', path.join(special, 'symlink'));
  const sparse = path.join(special, 'sparse.img');
  writeFileSync(sparse, '');
  truncateSync(sparse, 64 * 1024 * 1024);
  const fd = openSync(sparse, 'r+');
  writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 32 * 1024 * 1024);
  closeSync(fd);
  writeFileSync(path.join(special, 'owned'), 'owned by 4242:4343\n');
  chownSync(path.join(special, 'owned'), 4242, 4343);
  writeFileSync(path.join(special, 'setuid'), '#!/bin/sh\n');
  chmodSync(path.join(special, 'setuid'), 0o4755);
  writeFileSync(path.join(special, 'acl'), 'has an ACL\n');
  execFileSync('setfacl', ['-m', 'u:1234:rw,g:2345:r', path.join(special, 'acl')]);
  writeFileSync(path.join(special, 'xattr'), 'has xattrs\n');
  execFileSync('setfattr', ['-n', 'user.rmm.note', '-v', 'kept', path.join(special, 'xattr')]);
  execFileSync('setfattr', ['-n', 'trusted.rmm', '-v', 'root-only', path.join(special, 'xattr')]);
  execFileSync('mknod', [path.join(special, 'null-device'), 'c', '1', '3']);
  execFileSync('mkfifo', [path.join(special, 'fifo')]);
  // tar skips sockets: a first copy by tar streams then ends with a whole rsync pass.
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path.join(special, 'socket')]);
  writeFileSync(path.join(root, 'srv/data/payload.bin'), randomBytes(2 * 1024 * 1024));
  writeFileSync(path.join(root, 'u02/asm-disk-contents'), 'must never leave the origin\n');
  mkdirSync(path.join(root, 'var/tmp'), { recursive: true });
  writeFileSync(path.join(root, 'var/tmp/cache-file'), 'excluded by path\n');
}
