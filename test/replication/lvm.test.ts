/**
 * LVM snapshots need a kernel with device-mapper, which this machine's host namespaces lack: the
 * origin is a Debian guest under qemu (lab/guest.sh) with an xfs logical volume, the target is the
 * lab's target host, and the data goes by relay (the guest and the lab cannot reach each other).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestDown, guestScript, guestUp, type Guest } from '../support/lab/guest.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { rmm } from '../support/cli.js';
import { applyPlan } from '../../src/apply/apply.js';
import type { ApplyEvent } from '../../src/apply/events.js';
import { loadSpec } from '../../src/config/load.js';
import { observe } from '../../src/observe/observe.js';
import { makePlan } from '../../src/plan/plan.js';
import { createSessionPool, HostWrapper, type CommandOptions, type ExecOptions, type RemoteHost } from '../../src/transport/index.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
// Its own state folder, apart from the namespace lab's, which `lab.sh up` wipes.
const GUEST_DIR = '/run/rmm-guest';
const GUEST_PORT = 2223;

async function qemuReady(): Promise<boolean> {
  if (!isRoot) return false;
  const has = () => run('sh', ['-c', 'command -v qemu-system-x86_64']).then(() => true, () => false);
  if (await has()) return true;
  await run(guestScript, ['deps'], { timeout: 15 * 60_000 }).catch(() => undefined);
  return has();
}
const ready = await qemuReady();


describe.skipIf(!ready)('LVM snapshots on a qemu guest (needs root and qemu)', () => {
  let lab: Lab;
  let guest: Guest;
  let dir: string;

  const onGuest = async (script: string): Promise<string> => {
    const { stdout } = await run('ssh', [
      '-F', 'none', '-i', guest.clientKey, '-p', String(guest.port),
      '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${guest.knownHosts}`,
      `root@${guest.address}`, script,
    ], { maxBuffer: 1 << 26 });
    return stdout;
  };

  function estate(name: string, policy: Record<string, unknown>): string {
    const docs = [
      {
        apiVersion: 'rmm/v1', kind: 'Origin', metadata: { name: 'guest' },
        spec: {
          address: guest.address,
          root: guest.lvm.mountPoint,
          connection: { port: guest.port, user: 'rmm', sudo: true, auth: { keyFile: guest.clientKey }, knownHostsFile: guest.knownHosts },
        },
      },
      {
        apiVersion: 'rmm/v1', kind: 'Environment', metadata: { name: 'lab' },
        spec: {
          transfer: 'relay',
          hosts: [{ name: 'target', address: lab.hosts.target.address, path: '/srv/replicas', connection: { user: 'rmm', sudo: true, auth: { keyFile: lab.clientKey }, knownHostsFile: lab.knownHosts } }],
        },
      },
      { apiVersion: 'rmm/v1', kind: 'Policy', metadata: { name: 'p' }, spec: { snapshot: { provider: 'lvm', ...policy } } },
      { apiVersion: 'rmm/v1', kind: 'Replica', metadata: { name }, spec: { origin: 'guest', environment: 'lab', policy: 'p' } },
    ];
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    return file;
  }

  /** Content and metadata of a tree, as one text: the same command on the guest and on the target. */
  const MANIFEST = (root: string) =>
    `cd '${root}' && find . -printf '%P|%y|%m|%U|%G|%s|%T@|%l\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum && getfacl -R -P -s . 2>/dev/null && getfattr -R -P -d -m '^user\\.' . 2>/dev/null`;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rmm-lvm-'));
    [lab, guest] = await Promise.all([labUp(), guestUp({ dir: GUEST_DIR, port: GUEST_PORT })]);
    await onGuest(`set -e
      d=${guest.lvm.mountPoint}/app
      rm -rf "$d"; mkdir -p "$d/sub"
      for i in $(seq 1 300); do head -c $((i * 37)) /dev/urandom > "$d/sub/f$i"; done
      echo linked > "$d/a"; ln "$d/a" "$d/b"; ln -s a "$d/c"
      chown 4242:4343 "$d/a"; setfacl -m u:1234:rw "$d/sub/f1"; setfattr -n user.note -v kept "$d/sub/f2"
      truncate -s 32M "$d/sparse"; printf x | dd of="$d/sparse" bs=1 seek=16M conv=notrunc 2>/dev/null`);
  });

  afterAll(async () => {
    if (!ready) return;
    await guestDown({ dir: GUEST_DIR, port: GUEST_PORT });
    await labDown();
  });

  it('refuses the snapshot when the volume group has less free space than minFreePercent of the volume', async () => {
    // Another volume takes most of the group's free extents, as on a full production server.
    await onGuest(`lvcreate -q -y -l 95%FREE -n filler ${guest.lvm.vg} >/dev/null`);
    try {
      const { code, out } = await rmm('plan', '-f', estate('lvm-full', { minFreePercent: 15 }));
      expect(out).toMatch(/volume group vg0 of \/srv\/lvdata has \d+ bytes free, [\d.]+% of the volume's \d+ bytes; a snapshot needs at least 15%/);
      expect(code).toBe(1);
    } finally {
      await onGuest(`lvremove -q -y ${guest.lvm.vg}/filler >/dev/null`);
    }
  });

  it('copies a logical volume from an LVM snapshot, removes the snapshot, and cleans one left by a killed run', async () => {
    const file = estate('lvm-copy', { minFreePercent: 10 });
    const plan = await rmm('plan', '-f', file);
    expect(plan.out).toContain(`copy ${guest.lvm.mountPoint} (xfs) from a lvm snapshot`);
    // What a killed run leaves: a snapshot volume named for this replica.
    await onGuest(`lvcreate -q -s -n rmm-snap.lvm-copy.killedrun.${guest.lvm.lv} -L 64M ${guest.lvm.vg}/${guest.lvm.lv} >/dev/null`);
    const { code, out } = await rmm('apply', '-f', file, '--yes');
    expect(out).toContain('removed 1 snapshot(s) left by an interrupted run');
    expect(out).toContain(`snapshot ${guest.lvm.mountPoint}: LVM snapshot of `);
    expect(out).toContain('consistent at recovery point');
    expect(code).toBe(0);
    expect(await onGuest(`lvs --noheadings -o lv_name ${guest.lvm.vg} | grep -c rmm-snap || true`)).toBe('0\n');

    const target = path.join(lab.hosts.target.root, 'srv/replicas/lvm-copy/current');
    const { stdout: copied } = await run('sh', ['-c', MANIFEST(target)], { maxBuffer: 1 << 26 });
    expect(copied).toBe(await onGuest(MANIFEST(guest.lvm.mountPoint)));
    const record = JSON.parse(readFileSync(path.join(lab.hosts.target.root, 'srv/replicas/lvm-copy/.rmm/record.json'), 'utf8')) as { state: string; points: { snapshots: Record<string, string> }[] };
    expect(record.state).toBe('consistent');
    expect(record.points[0]!.snapshots).toEqual({ [guest.lvm.mountPoint]: 'lvm' });
  });

  it('fails a copy whose LVM snapshot overflowed, naming it, removes the snapshot, and the next apply converges', async () => {
    // 7% of the 1 GiB volume: a 75 MB snapshot, which 160 MB written during the copy overflows.
    const file = estate('lvm-overflow', { minFreePercent: 7 });
    const first = await rmm('apply', '-f', file, '--yes');
    expect(first.code, first.out).toBe(0);
    const recordFile = path.join(lab.hosts.target.root, 'srv/replicas/lvm-overflow/.rmm/record.json');
    const before = JSON.parse(readFileSync(recordFile, 'utf8')) as { points: unknown[] };
    await onGuest(`echo changed > ${guest.lvm.mountPoint}/app/changed.txt`);

    const { spec } = await loadSpec([file]);
    const pool = createSessionPool();
    const events: ApplyEvent[] = [];
    let step = '';
    let written: Promise<string> | undefined;
    // Before the copy's first command, the origin writes more than the snapshot can hold.
    const writeFirst = (): Promise<unknown> => (step === `copy ${guest.lvm.mountPoint}` ? (written ??= onGuest(`dd if=/dev/zero of=${guest.lvm.mountPoint}/overflow bs=1M count=160 conv=fsync 2>&1`)) : Promise.resolve());
    class WritingHost extends HostWrapper {
      override async exec(argv: readonly string[], opts?: ExecOptions) {
        await writeFirst();
        return super.exec(argv, opts);
      }
      override async spawn(argv: readonly string[], opts?: CommandOptions) {
        await writeFirst();
        return super.spawn(argv, opts);
      }
    }
    try {
      const observed = await observe(spec, pool, { parallelism: 1, trustNewHostKeys: false });
      const plan = makePlan(spec, observed, new Date(), { syncNow: 'all' });
      const emit = (e: ApplyEvent) => {
        events.push(e);
        if (e.type === 'step' && e.status === 'start') step = e.step;
      };
      const result = await applyPlan(spec, plan, pool, { parallelism: 1, trustNewHostKeys: false, emit, wrapHost: (h: RemoteHost, role) => (role === 'origin' ? new WritingHost(h) : h) });
      expect(written).toBeDefined();
      expect(result.failed).toHaveLength(1);
      expect(events.find((e) => e.type === 'replica.failed')).toMatchObject({ step: `copy ${guest.lvm.mountPoint}`, code: 'snapshot.overflowed' });
      expect(result.failed[0]!.error).toContain(`the LVM snapshot of ${guest.lvm.mountPoint} overflowed during its copy`);
    } finally {
      await pool.closeAll();
      await onGuest(`rm -f ${guest.lvm.mountPoint}/overflow`);
    }
    expect(await onGuest(`lvs --noheadings -o lv_name ${guest.lvm.vg} | grep -c rmm-snap || true`)).toBe('0\n');
    const failed = JSON.parse(readFileSync(recordFile, 'utf8')) as { state: string; points: unknown[] };
    expect(failed.state).toBe('failed');
    expect(failed.points).toEqual(before.points);

    const next = await rmm('apply', '-f', file, '--yes', '--sync-now', 'all');
    expect(next.code, next.out).toBe(0);
    const target = path.join(lab.hosts.target.root, 'srv/replicas/lvm-overflow/current');
    const { stdout: copied } = await run('sh', ['-c', MANIFEST(target)], { maxBuffer: 1 << 26 });
    expect(copied).toBe(await onGuest(MANIFEST(guest.lvm.mountPoint)));
  }, 600_000);
});
