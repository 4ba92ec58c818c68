/**
 * The boot test of disks targets for a UEFI server (lab/boot.sh `up origin --firmware uefi`): GPT,
 * an EFI system partition on /boot/efi, GRUB for UEFI, its initramfs made by dracut (as on
 * RHEL-family servers), booted by OVMF; the LVM + xfs application
 * volume and the excluded ASM disk as in the BIOS test. It is replicated through the relay onto a
 * BIOS landing host's blank disks (rmm installs the origin's firmware's bootloader, not the landing
 * host's), then the disks boot alone under OVMF with fresh firmware variables (no boot entry: the
 * removable-media path) on q35, AHCI and an e1000e at the remapped address. Needs root and qemu.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { bootDown, bootPoweroff, bootReplica, bootUp, type BootMachine } from '../support/lab/boot.js';
import { ASM_MARKER, bootSsh as ssh, disksSpecFile, REPLICA } from '../support/lab/boot-spec.js';

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

  it('lays out GPT with the ESP, installs GRUB for UEFI in the copy, and the disks boot under OVMF', async () => {
    expect(await ssh(origin, '[ -d /sys/firmware/efi ] && findmnt -no FSTYPE /boot/efi')).toBe('vfat\n');
    // The UEFI origin makes its initramfs with dracut, as RHEL-family servers do.
    expect(await ssh(origin, 'command -v dracut >/dev/null && ! command -v update-initramfs && echo dracut')).toBe('dracut\n');
    const manifest = await ssh(origin, '/usr/local/sbin/app-manifest');
    const spec = disksSpecFile(origin, landing, false);
    const plan = await rmm('plan', '-f', spec);
    expect(plan.code, plan.out + plan.err).toBe(3);
    expect(plan.out).toMatch(/layout table \/dev\/vdb: create a GPT partition table .* on \/dev\/vdb/);
    expect(plan.out).toContain('GRUB for UEFI on the ESP at /boot/efi');

    const apply = await rmm('apply', '-f', spec, '--yes');
    expect(apply.code, apply.out + apply.err).toBe(0);
    const record = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(record.state).toBe('consistent');

    await bootPoweroff('landing');
    const replica = await bootReplica({ firmware: 'uefi' });
    expect(await ssh(replica, '[ -d /sys/firmware/efi ] && echo uefi')).toBe('uefi\n');
    // rmm's dracut branch made the initramfs it booted with: generic, with the drivers named.
    expect(await ssh(replica, 'cat /etc/dracut.conf.d/rmm-replica.conf')).toMatch(/hostonly="no"\nadd_drivers\+=" .*\bahci\b.*\be1000e\b/);
    expect(await ssh(replica, 'hostname')).toBe('app01\n');
    expect(await ssh(replica, '/usr/local/sbin/app-manifest')).toBe(manifest);
    expect(await ssh(replica, 'systemctl is-active app-heartbeat')).toBe('active\n');
    expect(await ssh(replica, `for d in /dev/sd?; do head -c 8M "$d" | grep -c ${ASM_MARKER} || true; done | sort -u`)).toBe('0\n');
    expect(await ssh(replica, 'findmnt -rn -o TARGET,FSTYPE /boot/efi')).toBe('/boot/efi vfat\n');
    expect(await ssh(replica, 'findmnt -rn -o TARGET,SOURCE,FSTYPE /')).toMatch(/^\/ \/dev\/sd[a-z]2 ext4\n$/);
    expect(await ssh(replica, 'ip -o -4 addr show dev enp0s3')).toContain('inet 10.0.4.15/24');
  }, 60 * 60_000);
});
