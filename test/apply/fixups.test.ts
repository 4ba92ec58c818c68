/**
 * Fixups on a directory replica that asks for them, on real lab hosts: the plan shows each file's
 * diff, apply writes exactly those bytes into the new copy before it becomes current, never into the
 * origin nor into an older recovery point (the copy shares inodes with it), the record notes them,
 * and a file that changed after the plan is refused. Needs root.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/plan.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { applyInProcess, MOSTLY_DATA } from '../support/replica-lab.js';

const isRoot = process.getuid?.() === 0;
const REPLICA = 'adapted';
// /etc comes along: the fixups' files are there.
const EXCLUDE = { ...MOSTLY_DATA, paths: MOSTLY_DATA.paths.filter((p) => p !== '/etc/*') };
const INTERFACES = `# The lab origin's network, as its installer wrote it
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
\taddress 10.0.2.15/24
\tgateway 10.0.2.1
\tdns-nameservers 10.0.2.3 110.0.2.3
`;

describe.skipIf(!isRoot)('fixups on a directory replica (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let replicaDir: string;
  const specFor = (to: string) =>
    writeLabSpec(lab, {
      replica: REPLICA,
      exclude: EXCLUDE,
      connection: { heartbeatTimeout: '10s', connectTimeout: '3s' },
      policy: { retention: { recoveryPoints: 3 } },
      environment: { ipRemap: { networks: [{ from: '10.0.2.0/24', to }] } },
      replicaSpec: {
        fixups: { enabled: true },
        // Sees the adapted copy: the new point's folder in a sync, the current point in a re-run.
        hooks: { postFixup: [{ command: ['sh', '-c', 'echo "adapted $RMM_TARGET_ROOT:"; grep -h "address " "$RMM_TARGET_ROOT/etc/network/interfaces"'], on: 'target' }] },
      },
    });
  const record = () => JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
  const inCurrent = (file: string) => readFileSync(path.join(replicaDir, readlinkSync(path.join(replicaDir, 'current')), file), 'utf8');
  const planned = async (spec: string) => (JSON.parse((await rmm('plan', '-f', spec, '--sync-now', 'all', '-o', 'json')).out) as Plan).actions[0]!.sync!.fixups!;

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    replicaDir = path.join(lab.hosts.target.root, 'srv/replicas', REPLICA);
    writeFileSync(path.join(originRoot, 'etc/network/interfaces'), INTERFACES);
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it('shows the diff at plan time and writes exactly it into the copy, never into the origin', async () => {
    const spec = specFor('10.9.2.0/24');
    const plan = await rmm('plan', '-f', spec);
    expect(plan.code, plan.out + plan.err).toBe(3);
    expect(plan.out).toContain('fixups (the copy only; the origin is never changed):');
    expect(plan.out).toContain('      -\taddress 10.0.2.15/24\n      -\tgateway 10.0.2.1\n      -\tdns-nameservers 10.0.2.3 110.0.2.3\n      +\taddress 10.9.2.15/24\n      +\tgateway 10.9.2.1\n      +\tdns-nameservers 10.9.2.3 110.0.2.3');
    const fixups = await planned(spec);
    const file = fixups.files.find((f) => f.path === '/etc/network/interfaces')!;

    const apply = await rmm('apply', '-f', spec, '--yes');
    expect(apply.code, apply.out + apply.err).toBe(0);
    expect(inCurrent('etc/network/interfaces')).toBe(file.text);
    expect(apply.out).toContain(`adapted ${path.join('/srv/replicas', REPLICA, 'points/.partial')}:`);
    expect(apply.out).toContain('\taddress 10.9.2.15/24');
    expect(readFileSync(path.join(originRoot, 'etc/network/interfaces'), 'utf8')).toBe(INTERFACES);
    const point = record().points.at(-1)!;
    expect(point.fixups).toEqual({ hash: fixups.hash, files: fixups.files.map((f) => f.path) });
    // Owner and mode kept.
    const copy = statSync(path.join(replicaDir, 'current/etc/network/interfaces'));
    const origin = statSync(path.join(originRoot, 'etc/network/interfaces'));
    expect([copy.uid, copy.gid, copy.mode]).toEqual([origin.uid, origin.gid, origin.mode]);

    // Nothing changed on the origin and the same fixups: the point is verified, not copied again.
    const again = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('unchanged since recovery point');
  });

  it('copies again when the remap changes, and the older point keeps its own fixups', async () => {
    const before = record().points.at(-1)!;
    // One second apart: point ids are the second a sync started.
    await new Promise((r) => setTimeout(r, 1100));
    const spec = specFor('10.7.2.0/24');
    const plan = await rmm('plan', '-f', spec, '--sync-now', 'all');
    expect(plan.out).toContain('      +\taddress 10.7.2.15/24');
    const apply = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(apply.code, apply.out + apply.err).toBe(0);
    expect(record().points.at(-1)!.id).not.toBe(before.id);
    expect(inCurrent('etc/network/interfaces')).toContain('\taddress 10.7.2.15/24');
    // The new copy was linked to the older point's file; the fixup replaced it, it did not write through it.
    expect(readFileSync(path.join(replicaDir, 'points', before.id, 'etc/network/interfaces'), 'utf8')).toContain('\taddress 10.9.2.15/24');
  });

  it('refuses to rewrite a file the origin changed after the plan, keeping the last point, and converges', async () => {
    const spec = specFor('10.7.2.0/24');
    const before = record();
    const edited = INTERFACES.replace('10.0.2.1\n', '10.0.2.254\n');
    try {
      const { result, events } = await applyInProcess(spec, { onStep: (step) => step === 'snapshot /' && writeFileSync(path.join(originRoot, 'etc/network/interfaces'), edited) });
      expect(result.failed).toHaveLength(1);
      expect(events.find((e) => e.type === 'replica.failed')).toMatchObject({ step: 'fixup', code: 'fixup.changed' });
      expect(result.failed[0]!.error).toContain('the fixup of /etc/network/interfaces in the copy failed: it is not the text the plan read (the origin changed it after the plan; plan again to see its new diff)');
      expect(record().points).toEqual(before.points);
      const plan = await rmm('plan', '-f', spec, '--sync-now', 'all');
      expect(plan.out).toContain('      +\tgateway 10.7.2.254');
      const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(next.code, next.out + next.err).toBe(0);
      expect(inCurrent('etc/network/interfaces')).toBe(edited.replace(/(?<![0-9])10\.0\.2\./g, '10.7.2.'));
    } finally {
      writeFileSync(path.join(originRoot, 'etc/network/interfaces'), INTERFACES);
    }
  });

  it('re-runs the fixups on the current point when only the remap changes: no copy, the origin down, exactly the saved plan', async () => {
    const spec = specFor('10.5.2.0/24');
    const before = record();
    const point = before.points.at(-1)!;
    const older = before.points.at(-2)!;
    const olderText = readFileSync(path.join(replicaDir, 'points', older.id, 'etc/network/interfaces'), 'utf8');
    const file = path.join(replicaDir, 'points', point.id, 'etc/network/interfaces');
    const owner = statSync(file);
    const saved = path.join(tmpdir(), `rmm-refixup-${process.pid}.json`);
    // The origin's site is down: the re-run needs the target only.
    execFileSync('ip', ['link', 'set', lab.hosts.origin.netns, 'down']);
    try {
      const plan = await rmm('plan', '-f', spec, '--out', saved);
      expect(plan.code, plan.out + plan.err).toBe(3);
      expect(plan.out).toContain(`~ replica ${REPLICA}: fixup (no copy)`);
      expect(plan.out).toContain(`the fixup settings (ipRemap, fixups) changed since recovery point ${point.id} was adapted: re-run on it, nothing is copied`);
      expect(plan.out).toContain(`fixups (recovery point ${point.id} as it is now -> adapted anew; the origin is never changed):`);
      expect(plan.out).toContain('      -\taddress 10.7.2.15/24\n      -\tgateway 10.7.2.254\n      -\tdns-nameservers 10.7.2.3 110.0.2.3\n      +\taddress 10.5.2.15/24\n      +\tgateway 10.5.2.254\n      +\tdns-nameservers 10.5.2.3 110.0.2.3');
      expect(plan.out).not.toMatch(/copy \//);
      const action = (JSON.parse(readFileSync(saved, 'utf8')) as { plan: Plan }).plan.actions[0]!;
      expect(action.kind).toBe('fixup');

      const apply = await rmm('apply', '-f', spec, '--plan', saved);
      expect(apply.code, apply.out + apply.err).toBe(0);
      expect(apply.out).toContain(`${REPLICA}: recovery point ${point.id} adapted anew by the fixups, nothing copied`);
      expect(apply.out).toContain(`adapted ${path.join('/srv/replicas', REPLICA, 'points', point.id)}:`);
      expect(apply.out).toContain('\taddress 10.5.2.15/24');
      for (const change of action.fixup!.changes) expect(readFileSync(path.join(replicaDir, 'current', change.path), 'utf8')).toBe(change.text);
      const after = record();
      expect(after.points.map((p) => p.id)).toEqual(before.points.map((p) => p.id));
      expect(after.points.at(-1)!.fixups).toEqual({ hash: action.fixup!.hash, files: action.fixup!.files });
      expect(after.points.at(-1)!.manifests).toEqual(point.manifests);
      // Owner and mode kept; the older point, which shared the file's inode once, keeps its own text.
      const now = statSync(file);
      expect([now.uid, now.gid, now.mode]).toEqual([owner.uid, owner.gid, owner.mode]);
      expect(readFileSync(path.join(replicaDir, 'points', older.id, 'etc/network/interfaces'), 'utf8')).toBe(olderText);
      // The origin's text, kept with the point, is what the next re-run starts from.
      const original = readFileSync(path.join(replicaDir, '.rmm/points', point.id, 'originals/etc/network/interfaces'), 'utf8');
      expect(original).toContain('\taddress 10.0.2.15/24');

      const again = await rmm('plan', '-f', spec);
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain(`replica ${REPLICA}: no changes`);
    } finally {
      execFileSync('ip', ['link', 'set', lab.hosts.origin.netns, 'up']);
      if (existsSync(saved)) execFileSync('rm', ['-f', saved]);
    }
  });

  it('never reads or writes through a folder that is a symbolic link: in a copy it may lead to the landing host\'s own files', async () => {
    // A copy's /etc/netplan links to an absolute path: on the target that is the landing host's folder,
    // where a file with the same text waits (a hostile origin can guess a common one).
    const yaml = 'network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [10.0.2.15/24]\n';
    mkdirSync(path.join(originRoot, 'srv/netplan-real'), { recursive: true });
    writeFileSync(path.join(originRoot, 'srv/netplan-real/01-lab.yaml'), yaml);
    rmSync(path.join(originRoot, 'etc/netplan'), { recursive: true, force: true });
    symlinkSync('/srv/netplan-real', path.join(originRoot, 'etc/netplan'));
    const landing = path.join(lab.hosts.target.root, 'srv/netplan-real');
    mkdirSync(landing, { recursive: true });
    writeFileSync(path.join(landing, '01-lab.yaml'), yaml);
    // And a link named like rmm's own work file beside a file the fixups rewrite.
    const work = path.join(originRoot, 'etc/network/interfaces.rmm-fixup');
    symlinkSync('/etc/rmm-bait', work);
    writeFileSync(path.join(lab.hosts.target.root, 'etc/rmm-bait'), 'bait\n');
    try {
      const spec = specFor('10.5.2.0/24');
      const fixups = await planned(spec);
      expect(fixups.left).toContainEqual({ path: '/etc/netplan/01-lab.yaml', why: 'its folder is reached through a symbolic link (not followed)' });
      expect(fixups.files.map((f) => f.path)).not.toContain('/etc/netplan/01-lab.yaml');
      const apply = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(apply.code, apply.out + apply.err).toBe(0);
      expect(readFileSync(path.join(landing, '01-lab.yaml'), 'utf8')).toBe(yaml);
      expect(readFileSync(path.join(lab.hosts.target.root, 'etc/rmm-bait'), 'utf8')).toBe('bait\n');
      expect(inCurrent('etc/network/interfaces')).toContain('\taddress 10.5.2.15/24');

      // A folder of the point swapped for such a link after the plan: the re-run refuses, writing nothing there.
      const spec4 = specFor('10.4.2.0/24');
      const point = record().points.at(-1)!;
      const network = path.join(replicaDir, 'points', point.id, 'etc/network');
      const bait = path.join(lab.hosts.target.root, 'etc/network-bait');
      mkdirSync(bait, { recursive: true });
      writeFileSync(path.join(bait, 'interfaces'), readFileSync(path.join(network, 'interfaces')));
      const { result, plan } = await applyInProcess(spec4, {
        onSchedule: true,
        onStep: (step) => {
          if (step !== 'fixup') return;
          renameSync(network, `${network}.real`);
          symlinkSync('/etc/network-bait', network);
        },
      });
      expect(plan.actions[0]!.kind).toBe('fixup');
      expect(result.failed[0]).toMatchObject({ step: 'fixup' });
      expect(result.failed[0]!.error).toContain('its folder is missing or reached through a symbolic link');
      expect(readFileSync(path.join(bait, 'interfaces'), 'utf8')).toBe(readFileSync(path.join(`${network}.real`, 'interfaces'), 'utf8'));
      rmSync(network);
      renameSync(`${network}.real`, network);
      // The record says the re-run did not finish; the next one converges.
      expect(record().points.at(-1)!.fixups?.rewriting).toBeDefined();
      expect((await rmm('status', '-f', spec4)).out).toContain('its fixups being rewritten (a re-run did not finish: rmm apply finishes it)');
      const next = await rmm('apply', '-f', spec4, '--yes');
      expect(next.code, next.out + next.err).toBe(0);
      expect(inCurrent('etc/network/interfaces')).toContain('\taddress 10.4.2.15/24');
      expect(record().points.at(-1)!.fixups?.rewriting).toBeUndefined();
    } finally {
      rmSync(work, { force: true });
      rmSync(path.join(originRoot, 'etc/netplan'), { force: true });
      mkdirSync(path.join(originRoot, 'etc/netplan'), { recursive: true });
      rmSync(path.join(originRoot, 'srv/netplan-real'), { recursive: true, force: true });
    }
  });
});
