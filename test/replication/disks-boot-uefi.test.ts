/**
 * The boot test of disks targets for a UEFI server (lab/boot.sh `up origin --firmware uefi`): GPT,
 * an EFI system partition on /boot/efi, GRUB for UEFI, its initramfs made by dracut (as on
 * RHEL-family servers), booted by OVMF; the LVM + xfs application volume and the excluded ASM disk
 * as in the BIOS test. Here the landing devices are logical volumes of the landing host (as a KVM
 * host's VM disks are): rmm writes them through loop devices and snapshots them before each later
 * sync. A second sync loses the landing host halfway; with the origin's site then down, rmm rolls
 * the volumes back from their snapshots, with nothing copied. Then the volumes boot alone (the
 * landing paused, its disks flushed), under OVMF with fresh firmware variables (no boot entry: the
 * removable-media path) on q35, AHCI and an e1000e at the remapped address, as the first sync left
 * them; and with the origin's site back, the next apply converges. Needs root and qemu.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { bootDown, bootLink, bootPause, bootReplica, bootResume, bootUp, type BootMachine } from '../support/lab/boot.js';
import { applyCutMidCopy, ASM_MARKER, bootSsh as ssh, disksSpecFile, REPLICA } from '../support/lab/boot-spec.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const hasQemu = await run('sh', ['-c', 'command -v qemu-system-x86_64']).then(
  () => true,
  () => false,
);

describe.skipIf(!isRoot || !hasQemu)('a UEFI server as a disks replica boots UEFI on other hardware (needs root and qemu)', () => {
  let origin: BootMachine;
  let landing: BootMachine;

  beforeAll(async () => {
    await bootDown('all');
    [origin, landing] = await Promise.all([bootUp('origin', { firmware: 'uefi' }), bootUp('landing')]);
  }, 60 * 60_000);

  afterAll(async () => {
    if (isRoot && hasQemu && !process.env.RMM_KEEP_LAB) await bootDown('all');
  }, 10 * 60_000);

  it('lays out GPT on landing logical volumes, rolls a cut sync back from their snapshots with the origin down, and they boot UEFI as the last point', async () => {
    expect(await ssh(origin, '[ -d /sys/firmware/efi ] && findmnt -no FSTYPE /boot/efi')).toBe('vfat\n');
    // The UEFI origin makes its initramfs with dracut, as RHEL-family servers do.
    expect(await ssh(origin, 'command -v dracut >/dev/null && ! command -v update-initramfs && echo dracut')).toBe('dracut\n');
    const manifest = await ssh(origin, '/usr/local/sbin/app-manifest');
    // Each volume on one disk, in one piece, so that its extents are a byte range of that disk; the
    // rest of the group is room for a full snapshot of each.
    await ssh(landing, 'set -e; pvcreate -q /dev/vdb /dev/vdc; vgcreate -q landing /dev/vdb /dev/vdc; lvcreate -q -y -C y -n a -L 2G landing /dev/vdb; lvcreate -q -y -C y -n b -L 1280M landing /dev/vdc');
    const spec = disksSpecFile(origin, landing, false, '10.0.4.0/24', ['/dev/landing/a', '/dev/landing/b']);
    const plan = await rmm('plan', '-f', spec);
    expect(plan.code, plan.out + plan.err).toBe(3);
    expect(plan.out).toMatch(/landing volume \/dev\/landing\/a is written as \/dev\/loop\d+/);
    expect(plan.out).toMatch(/layout table \/dev\/loop\d+: create a GPT partition table .* on \/dev\/loop\d+/);
    expect(plan.out).toContain('GRUB for UEFI on the ESP at /boot/efi');
    expect(plan.out).toContain('the first sync: the landing volumes hold no recovery point yet to keep');

    const apply = await rmm('apply', '-f', spec, '--yes');
    expect(apply.code, apply.out + apply.err).toBe(0);
    const first = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(first.state).toBe('consistent');
    const p1 = first.points.at(-1)!.id;

    // A second sync: the application volume changes a lot, and the landing host is lost while it copies.
    await ssh(origin, 'echo v2 > /etc/app-release && head -c 120M /dev/urandom > /srv/app/bulk && sync');
    const again = await rmm('plan', '-f', spec, '--sync-now', REPLICA);
    expect(again.out).toContain(`landing-snapshot: snapshot the landing volumes landing/a, landing/b as recovery point ${p1}`);
    const { cut, failed } = await applyCutMidCopy(landing, spec);
    expect(cut, failed.out + failed.err).toBe(true);
    expect(failed.code, failed.out + failed.err).not.toBe(0);
    const cutRecord = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(cutRecord.state).not.toBe('consistent');
    expect(await ssh(landing, "lvs --noheadings -o lv_name landing | tr -d ' ' | sort")).toBe(`a\na_rmm_${p1}\nb\nb_rmm_${p1}\n`);

    // The origin's site goes down (nothing answers on its address): rmm puts the volumes back to the
    // first sync's point, copying nothing.
    await bootLink('origin', 'down');
    const rollbackPlan = await rmm('plan', '-f', spec);
    expect(rollbackPlan.out, rollbackPlan.err).toContain(`replica ${REPLICA}: rollback to ${p1} (no copy)`);
    const rolled = await rmm('apply', '-f', spec, '--yes');
    expect(rolled.code, rolled.out + rolled.err).toBe(0);
    expect(rolled.out).toContain(`the disks are recovery point ${p1} again`);
    const back = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(back.state).toBe('consistent');
    expect(back.points.map((p) => p.id)).toEqual([p1]);
    expect(await ssh(landing, "lvs --noheadings -o lv_name landing | tr -d ' ' | sort")).toBe('a\nb\n');

    // Where each volume lies on its landing disk: the replica boots those byte ranges as its disks
    // (the landing paused, its disks flushed).
    const slice = async (lv: string) => {
      const [start, size] = (await ssh(landing, `set -e; pe=$(pvs --noheadings --units b --nosuffix -o pe_start /dev/vd${lv === 'a' ? 'b' : 'c'} | tr -d ' '); ext=$(vgs --noheadings --units b --nosuffix -o vg_extent_size landing | tr -d ' '); first=$(lvs --noheadings -o seg_pe_ranges landing/${lv} | tr -d ' ' | cut -d: -f2 | cut -d- -f1); echo $((pe + first * ext)) $(lvs --noheadings --units b --nosuffix -o lv_size landing/${lv} | tr -d ' ')`)).trim().split(' ').map(Number);
      return { offset: start!, size: size! };
    };
    const slices = [await slice('a'), await slice('b')];
    await bootPause('landing');
    const replica = await bootReplica({ firmware: 'uefi', slices });
    expect(await ssh(replica, '[ -d /sys/firmware/efi ] && echo uefi')).toBe('uefi\n');
    // rmm's dracut branch made the initramfs it booted with: generic, with the drivers named.
    expect(await ssh(replica, 'cat /etc/dracut.conf.d/rmm-replica.conf')).toMatch(/hostonly="no"\nadd_drivers\+=" .*\bahci\b.*\be1000e\b/);
    expect(await ssh(replica, 'hostname')).toBe('app01\n');
    // The first sync's point: the cut sync's changes are gone with it.
    expect(await ssh(replica, '/usr/local/sbin/app-manifest')).toBe(manifest);
    expect(await ssh(replica, 'cat /etc/app-release 2>/dev/null || echo none')).not.toBe('v2\n');
    expect(await ssh(replica, 'systemctl is-active app-heartbeat')).toBe('active\n');
    expect(await ssh(replica, `for d in /dev/sd?; do head -c 8M "$d" | grep -c ${ASM_MARKER} || true; done | sort -u`)).toBe('0\n');
    expect(await ssh(replica, 'findmnt -rn -o TARGET,FSTYPE /boot/efi')).toBe('/boot/efi vfat\n');
    expect(await ssh(replica, 'findmnt -rn -o TARGET,SOURCE,FSTYPE /')).toMatch(/^\/ \/dev\/sd[a-z]2 ext4\n$/);
    expect(await ssh(replica, 'ip -o -4 addr show dev enp0s3')).toContain('inet 10.0.4.15/24');

    // The sites come back. A sync that fails where the landing host still answers (a postSync hook
    // fails, after the copy) merges its snapshots back at once: the disks are the last point again.
    await bootDown('replica');
    await bootResume('landing');
    await bootLink('origin', 'up');
    await ssh(origin, 'echo v3 > /etc/app-release && rm /srv/app/bulk && sync');
    const hooked = disksSpecFile(origin, landing, false, '10.0.4.0/24', ['/dev/landing/a', '/dev/landing/b'], { hooks: { postSync: [{ command: ['false'], on: 'target' }] } });
    const hookFails = await rmm('apply', '-f', hooked, '--yes');
    expect(hookFails.code, hookFails.out + hookFails.err).not.toBe(0);
    const merged = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(merged.state).toBe('consistent');
    expect(merged.points.map((p) => p.id)).toEqual([p1]);
    expect(merged.error).toMatch(new RegExp(`the landing volumes were rolled back to recovery point ${p1}$`));
    expect(await ssh(landing, "lvs --noheadings -o lv_name landing | tr -d ' ' | sort")).toBe('a\nb\n');
    const release = await ssh(landing, 'set -e; l=$(losetup --find --show --partscan --read-only /dev/landing/a); udevadm settle; mkdir -p /mnt/r; mount -o ro,noload "${l}p2" /mnt/r; cat /mnt/r/etc/app-release 2>/dev/null || echo none; umount /mnt/r; losetup -d "$l"');
    expect(release).not.toBe('v3\n');

    // The next apply converges, through a snapshot dropped again once it is recorded (retention 1).
    const converging = await rmm('apply', '-f', spec, '--yes');
    expect(converging.code, converging.out + converging.err).toBe(0);
    const converged = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(converged.state).toBe('consistent');
    expect(converged.points.length).toBe(1);
    expect(await ssh(landing, "lvs --noheadings -o lv_name landing | tr -d ' ' | sort")).toBe('a\nb\n');
    expect((await rmm('plan', '-f', spec)).out).toContain(`replica ${REPLICA}: no changes`);
  }, 90 * 60_000);
});
