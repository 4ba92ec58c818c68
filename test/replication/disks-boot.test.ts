/**
 * The boot test of disks targets (lab/boot.sh): a Debian origin under qemu (BIOS, MBR, root ext4,
 * an application volume on LVM + xfs on a second disk, a raw ASM disk that is excluded, a static
 * address on a virtio NIC) is replicated through the relay onto the blank disks of a landing host
 * on another network, with an IP remap; then the landing is powered off and its disks boot alone on
 * other virtual hardware (q35, AHCI, an e1000e NIC with another name and MAC) at the remapped
 * address, where the test logs in and finds the origin's server. Then a second sync loses its
 * landing connection halfway: the replica still boots as it was, and the next apply converges.
 * Needs root and qemu (slow under software emulation).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { bootDown, bootPoweroff, bootReplica, bootUp, type BootMachine } from '../support/lab/boot.js';
import { applyCutMidCopy, ASM_MARKER as MARKER, bootSsh as ssh, disksSpecFile as specFile, REPLICA } from '../support/lab/boot-spec.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const hasQemu = await run('sh', ['-c', 'command -v qemu-system-x86_64']).then(
  () => true,
  () => false,
);

describe.skipIf(!isRoot || !hasQemu)('a disks replica boots on other hardware (needs root and qemu)', () => {
  let origin: BootMachine;
  let landing: BootMachine;
  let manifest: string;
  let spec: string;

  beforeAll(async () => {
    await bootDown('all');
    [origin, landing] = await Promise.all([bootUp('origin'), bootUp('landing')]);
    manifest = await ssh(origin, '/usr/local/sbin/app-manifest');
  }, 60 * 60_000);

  afterAll(async () => {
    if (isRoot && hasQemu && !process.env.RMM_KEEP_LAB) await bootDown('all');
  }, 10 * 60_000);

  it('plans the layout and the fixups, and refuses a landing disk holding something else, writing nothing', async () => {
    // Another filesystem on the second landing disk: not this replica's.
    await ssh(landing, 'mkfs.ext4 -q -F -L foreign /dev/vdc');
    const plain = specFile(origin, landing, false);
    const plan = await rmm('plan', '-f', plain);
    expect(plan.out, plan.err).toContain(`! replica ${REPLICA}: blocked`);
    expect(plan.out).toMatch(/landing disk \/dev\/vdc holds .*not this replica: set wipe: true/);
    const refused = await rmm('apply', '-f', plain, '--yes');
    expect(refused.code, refused.out + refused.err).toBe(1);
    expect(await ssh(landing, 'blkid -o value -s LABEL /dev/vdc')).toBe('foreign\n');

    const wiping = await rmm('plan', '-f', specFile(origin, landing, true));
    expect(wiping.code, wiping.out + wiping.err).toBe(3);
    expect(wiping.out).toMatch(/layout table \/dev\/vdb: create an MBR partition table .* on \/dev\/vdb/);
    expect(wiping.out).toMatch(/layout wipe \/dev\/vdc: erase .* on \/dev\/vdc \(wipe: true\)/);
    expect(wiping.out).toContain('bootloader: in a chroot of the copy: GRUB for BIOS on /dev/vdb');
    expect(wiping.out).toMatch(/-\s+address 10\.0\.2\.15\/24/);
    expect(wiping.out).toMatch(/\+\s+address 10\.0\.4\.15\/24/);
    expect(wiping.out).toContain(`+iface enp0s3 inet static`);
  }, 10 * 60_000);

  it('replicates through the relay, and the disks boot alone on q35 with AHCI and an e1000e at the remapped address', async () => {
    spec = specFile(origin, landing, true);
    const apply = await rmm('apply', '-f', spec, '--yes');
    expect(apply.code, apply.out + apply.err).toBe(0);
    const record = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(record.state).toBe('consistent');
    expect(await ssh(landing, 'findmnt -rn -o TARGET | grep -c rmm-replica || true')).toBe('0\n');

    await bootPoweroff('landing');
    const replica = await bootReplica();
    expect(await ssh(replica, 'hostname')).toBe('app01\n');
    expect(await ssh(replica, '/usr/local/sbin/app-manifest')).toBe(manifest);
    expect(await ssh(replica, 'systemctl is-active app-heartbeat')).toBe('active\n');
    expect(await ssh(replica, 'id -u appuser')).toBe('1001\n');
    // The ASM disk was neither laid out nor copied: its marker is on no disk of the replica.
    expect(await ssh(replica, `for d in /dev/sd?; do head -c 8M "$d" | grep -c ${MARKER} || true; done | sort -u`)).toBe('0\n');
    // The disks are on AHCI now: sdX, in whatever order the controller gives them.
    expect(await ssh(replica, 'findmnt -rn -o TARGET,SOURCE,FSTYPE /')).toMatch(/^\/ \/dev\/sd[a-z]1 ext4\n$/);
    expect(await ssh(replica, 'findmnt -rn -o TARGET,SOURCE,FSTYPE /srv/app')).toBe('/srv/app /dev/mapper/vg_app-lv_data xfs\n');
    expect(await ssh(replica, 'ip -o -4 addr show dev enp0s3')).toContain('inet 10.0.4.15/24');
  }, 60 * 60_000);

  it('a second sync that loses the landing host halfway leaves the last replica booting as it was; the next apply converges', async () => {
    landing = await bootUp('landing', { keepDisks: true });
    // The root filesystem changes a little, the application volume a lot: its copy is still running
    // when the root's has put every change in place.
    await ssh(origin, 'echo v2 > /etc/app-release && head -c 300M /dev/urandom > /srv/app/bulk && sync');
    const changed = await ssh(origin, '/usr/local/sbin/app-manifest');
    const { cut, failed } = await applyCutMidCopy(landing, spec);
    expect(cut, failed.out + failed.err).toBe(true);
    expect(failed.code, failed.out + failed.err).not.toBe(0);
    const record = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(record.state).not.toBe('consistent');

    await bootPoweroff('landing');
    const replica = await bootReplica();
    // The root's copy had completed: its change is there, and its adapted files are still adapted.
    expect(await ssh(replica, 'cat /etc/app-release')).toBe('v2\n');
    expect(await ssh(replica, 'ip -o -4 addr show dev enp0s3')).toContain('inet 10.0.4.15/24');
    expect(await ssh(replica, 'systemctl is-active app-heartbeat')).toBe('active\n');
    // The application volume is the last sync's (rsync's staging folder of the cut copy aside).
    expect((await ssh(replica, '/usr/local/sbin/app-manifest')).split('\n').filter((l) => !l.startsWith('/srv/app/.~tmp~')).join('\n')).toBe(manifest);

    landing = await bootUp('landing', { keepDisks: true });
    // No --sync-now: a replica whose last sync failed is due.
    const again = await rmm('apply', '-f', spec, '--yes');
    expect(again.code, again.out + again.err).toBe(0);
    // Nothing the initramfs is made of changed since the first sync made it: not rebuilt.
    expect(again.out + again.err).toContain('kept, not rebuilt');
    const converged = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(converged.state).toBe('consistent');
    // The landing's copy, mounted as the replica mounts it, is the origin's now.
    const view = await ssh(
      landing,
      'set -e; vgchange -ay vg_app >/dev/null; mkdir -p /mnt/r; mount -o ro /dev/vdb1 /mnt/r; mount -o ro,nouuid /dev/vg_app/lv_data /mnt/r/srv/app; ' +
        'mount --bind /dev /mnt/r/dev; mount -t proc proc /mnt/r/proc; ' +
        'chroot /mnt/r /usr/local/sbin/app-manifest; cat /mnt/r/etc/network/interfaces; umount /mnt/r/proc /mnt/r/dev /mnt/r/srv/app /mnt/r',
    );
    expect(view.startsWith(changed)).toBe(true);
    expect(view).toContain('address 10.0.4.15/24');
    expect(view).not.toContain('.~tmp~');

    // A failover with the origin's site down: the DR network changes, and the disks are adapted anew
    // from what the replica keeps beside its record, with nothing copied and the origin unreachable.
    await bootPoweroff('origin');
    const moved = specFile(origin, landing, true, '10.0.6.0/24');
    const plan = await rmm('plan', '-f', moved);
    expect(plan.out, plan.err).toContain(`replica ${REPLICA}: fixup (no copy)`);
    expect(plan.out).toContain('+    address 10.0.6.15/24');
    const refixed = await rmm('apply', '-f', moved, '--yes');
    expect(refixed.code, refixed.out + refixed.err).toBe(0);
    const after = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(after.state).toBe('consistent');
    expect(after.points.map((p) => p.id)).toEqual(converged.points.map((p) => p.id));
    const interfaces = await ssh(landing, 'set -e; mount -o ro /dev/vdb1 /mnt/r; cat /mnt/r/etc/network/interfaces; umount /mnt/r; findmnt -rn -o TARGET | grep -c rmm-replica || true');
    expect(interfaces).toContain('address 10.0.6.15/24');
    expect(interfaces.trim().endsWith('0')).toBe(true);
    expect((await rmm('plan', '-f', moved)).out).toContain(`replica ${REPLICA}: no changes`);
  }, 90 * 60_000);
});
