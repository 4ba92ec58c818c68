/**
 * The boot lab (lab/boot.sh) and the boot test of disks targets, on one boot of its machines: a
 * Debian origin under qemu (BIOS, MBR, root ext4, an application volume on LVM + xfs on a second
 * disk, a raw ASM disk that is excluded, a static address on a virtio NIC) is replicated through the
 * relay onto the blank disks of a landing host on another network, with an IP remap; then the
 * landing is paused (its disks flushed) and its disks boot alone on other virtual hardware (q35,
 * AHCI, an e1000e NIC with another name and MAC) at the remapped address, where the test logs in and
 * finds the origin's server. Then a second sync loses its landing connection halfway: the replica
 * still boots as it was, and the next apply converges. Last, with the origin's site down, a new
 * remap is written onto the disks with nothing copied. Needs root and qemu (slow under software
 * emulation).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { TOOLS } from '../../src/observe/origin.js';
import { TARGET_TOOLS } from '../../src/target/directory/driver.js';
import { rmm } from '../support/cli.js';
import { bootDown, bootLink, bootPause, bootReplica, bootResume, bootUp, readBoot, sshArgs, type BootMachine } from '../support/lab/boot.js';
import { applyCutMidCopy, ASM_MARKER as MARKER, bootSsh as ssh, disksSpecFile as specFile, REPLICA } from '../support/lab/boot-spec.js';
import { processArgs as qemuArgs, qemuUsing, running } from '../support/lab/processes.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const hasQemu = await run('sh', ['-c', 'command -v qemu-system-x86_64']).then(
  () => true,
  () => false,
);

/** A root (or `user`) shell on a lab machine; its output, trimmed. */
async function labSsh(m: BootMachine, command: string, user = 'root'): Promise<string> {
  const { stdout } = await run('ssh', [...sshArgs(m), '-l', user, m.host, command], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

describe.skipIf(!isRoot || !hasQemu)('a disks replica boots on other hardware (needs root and qemu)', () => {
  let origin: BootMachine;
  let landing: BootMachine;
  let manifest: string;
  let spec: string;
  let stateDir: string;

  beforeAll(async () => {
    await bootDown('all');
    [origin, landing] = await Promise.all([bootUp('origin'), bootUp('landing')]);
    manifest = await ssh(origin, '/usr/local/sbin/app-manifest');
    stateDir = (await readBoot()).stateDir;
  }, 60 * 60_000);

  afterAll(async () => {
    if (isRoot && hasQemu && !process.env.RMM_KEEP_LAB) await bootDown('all');
  }, 10 * 60_000);

  // The lab itself, as the tests below find it: one boot of both machines serves both.
  describe('the boot lab (lab/boot.sh)', () => {
    it('describes both machines in boot.json', async () => {
      const lab = await readBoot();
      expect(lab.machines.origin).toEqual(origin);
      expect(lab.machines.landing).toEqual(landing);
      expect(origin).toMatchObject({
        sshPort: Number(process.env['RMM_BOOT_ORIGIN_PORT'] ?? 2231),
        hostname: 'app01',
        guestAddress: '10.0.2.15',
        machine: 'pc',
        boot: 'disk',
        nic: { model: 'virtio-net-pci', name: 'ens3' },
      });
      expect(landing).toMatchObject({ sshPort: Number(process.env['RMM_BOOT_LANDING_PORT'] ?? 2232), hostname: 'landing', guestAddress: '10.0.3.15' });
      expect(landing.disks.map((d) => [d.device, d.sizeBytes])).toEqual([
        ['/dev/vda', 3 * 2 ** 30],
        ['/dev/vdb', 4 * 2 ** 30],
        ['/dev/vdc', 3 * 2 ** 30],
      ]);
      for (const m of [origin, landing]) {
        expect(await running(m.pid!)).toBe(true);
        expect(await readFile(m.knownHosts, 'utf8')).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${m.sshPort} ssh-ed25519 `, 'm'));
      }
      expect((await qemuUsing(stateDir)).sort()).toEqual([origin.pid, landing.pid].sort());
    });

    it('boots the origin from its own disk: SeaBIOS, GRUB in the MBR, no -kernel', async () => {
      const args = await qemuArgs(origin.pid!);
      expect(args).not.toContain('-kernel');
      expect(args).toContain('pc');
      expect(await labSsh(origin, 'cat /proc/cmdline')).toMatch(/^BOOT_IMAGE=\/boot\/vmlinuz-\S+ root=UUID=/);
      expect(await labSsh(origin, 'lsblk -dno PTTYPE /dev/vda; findmnt -no SOURCE,FSTYPE,LABEL /')).toMatch(/^dos\n\/dev\/vda1\s+ext4\s+root$/);
      expect(await labSsh(origin, 'dd if=/dev/vda bs=512 count=1 status=none | grep -c GRUB')).toBe('1');
    });

    it('has the origin answering as root, and as rmm with passwordless sudo, with the tools rmm runs', async () => {
      expect(await labSsh(origin, 'id -un && hostname')).toBe('root\napp01');
      expect(await labSsh(origin, 'id -un && sudo -n id -u', 'rmm')).toBe('rmm\n0');
      const tools = [...new Set([...TARGET_TOOLS, ...TOOLS])].filter((t) => t !== 'btrfs');
      expect(await labSsh(origin, `for t in ${tools.join(' ')}; do command -v $t >/dev/null || echo missing $t; done`)).toBe('');
    });

    it('has the origin network on ens3: 10.0.2.15/24 via 10.0.2.2', async () => {
      expect(await labSsh(origin, 'ip -4 -o addr show dev ens3 | awk \'{print $4}\'; ip route show default')).toMatch(
        /^10\.0\.2\.15\/24\ndefault via 10\.0\.2\.2 dev ens3/,
      );
    });

    it('has vg_app/lv_data (xfs, appdata) on /srv/app, free VG space, and the raw ASM disk', async () => {
      expect(await labSsh(origin, 'findmnt -no SOURCE,FSTYPE,LABEL /srv/app')).toMatch(/^\/dev\/mapper\/vg_app-lv_data\s+xfs\s+appdata$/);
      expect(await labSsh(origin, 'lvs --noheadings -o vg_name,lv_name,lv_size,devices --units m --nosuffix')).toMatch(
        /^vg_app\s+lv_data\s+1024\.00\s+\/dev\/vdb\(0\)$/,
      );
      expect(Number(await labSsh(origin, 'vgs --noheadings -o vg_free --units m --nosuffix vg_app'))).toBeGreaterThanOrEqual(900);
      expect(await labSsh(origin, 'head -c 23 /dev/vdc; echo; dd if=/dev/vdc bs=1M skip=1 count=1 status=none | head -c 23; echo; blkid -p /dev/vdc; echo rc=$?')).toBe(
        'ORCLDISK-RMM-ASM-MARKER\nORCLDISK-RMM-ASM-MARKER\nrc=2',
      );
    });

    it('has the application data and its heartbeat', async () => {
      const manifest = await labSsh(origin, 'app-manifest');
      const line = (path: string): string[] => manifest.split('\n').find((l) => l.startsWith(`${path}\t`))?.split('\t') ?? [];
      expect(line('/srv/app/bin/suid-tool').slice(1, 5)).toEqual(['f', '4755', '0', '0']);
      expect(line('/srv/app/data/sparse.img')[5]).toBe(String(64 * 2 ** 20));
      expect(line('/srv/app/docs/acl-file.txt')[8]).toMatch(/user:appuser:rw-/);
      expect(line('/srv/app/docs/xattr-file.txt')[9]).toMatch(/user\.rmm\.origin=0x/);
      expect(line('/srv/app/docs/doc-1.txt')[6]).toBe('3');
      expect(line('/home/appuser/tree/private.txt').slice(1, 5)).toEqual(['f', '600', '1001', '1001']);
      expect(manifest).not.toMatch(/heartbeat/);
      expect(await labSsh(origin, 'app-manifest')).toBe(manifest); // stable
      expect(Number(await labSsh(origin, 'du -k /srv/app/data/sparse.img | cut -f1'))).toBeLessThan(1024);
      const before = await labSsh(origin, 'cat /srv/app/heartbeat');
      await new Promise((resolve) => setTimeout(resolve, 12_000));
      expect(await labSsh(origin, 'systemctl is-active app-heartbeat.service; cat /srv/app/heartbeat')).toMatch(/^active\n\d{4}-/);
      expect(await labSsh(origin, 'cat /srv/app/heartbeat')).not.toBe(before);
    }, 300_000);

    it('has the landing on its own network with two blank disks', async () => {
      expect(await labSsh(landing, 'hostname; ip -4 -o addr show dev ens3 | awk \'{print $4}\'')).toBe('landing\n10.0.3.15/24');
      expect(await labSsh(landing, 'id -un && sudo -n id -u', 'rmm')).toBe('rmm\n0');
      expect(await labSsh(landing, 'lsblk -dbno NAME,SIZE,FSTYPE,PTTYPE /dev/vdb /dev/vdc')).toMatch(/^vdb\s+4294967296\s*\nvdc\s+3221225472\s*$/);
      expect(await labSsh(landing, 'cat /etc/machine-id')).not.toBe(await labSsh(origin, 'cat /etc/machine-id'));
    });
  });

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

    await bootPause('landing');
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
    await bootDown('replica');
    await bootResume('landing');
    // The root filesystem changes a little, the application volume a lot: its copy is still running
    // when the root's has put every change in place.
    await ssh(origin, 'echo v2 > /etc/app-release && head -c 120M /dev/urandom > /srv/app/bulk && sync');
    const changed = await ssh(origin, '/usr/local/sbin/app-manifest');
    const { cut, failed } = await applyCutMidCopy(landing, spec);
    expect(cut, failed.out + failed.err).toBe(true);
    expect(failed.code, failed.out + failed.err).not.toBe(0);
    const record = JSON.parse(await ssh(landing, `cat /var/lib/rmm/replicas/${REPLICA}/.rmm/record.json`)) as ReplicaRecord;
    expect(record.state).not.toBe('consistent');

    // The landing paused as the cut left it (crash-consistent: its disks flushed, still mounted).
    await bootPause('landing');
    const replica = await bootReplica();
    // The root's copy had completed: its change is there, and its adapted files are still adapted.
    expect(await ssh(replica, 'cat /etc/app-release')).toBe('v2\n');
    expect(await ssh(replica, 'ip -o -4 addr show dev enp0s3')).toContain('inet 10.0.4.15/24');
    expect(await ssh(replica, 'systemctl is-active app-heartbeat')).toBe('active\n');
    // The application volume is the last sync's (rsync's staging folder of the cut copy aside).
    expect((await ssh(replica, '/usr/local/sbin/app-manifest')).split('\n').filter((l) => !l.startsWith('/srv/app/.~tmp~')).join('\n')).toBe(manifest);

    await bootDown('replica');
    await bootResume('landing');
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
    await bootLink('origin', 'down');
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

  it('boot.sh down leaves no qemu process and no state behind', async () => {
    await bootDown('all');
    expect(await qemuUsing(stateDir)).toEqual([]);
    expect(await running(origin.pid!)).toBe(false);
    expect(existsSync(stateDir)).toBe(false);
    await expect(readBoot()).rejects.toMatchObject({ code: 'BOOT_NOT_UP' });
    await bootDown('all'); // idempotent
  });
});
