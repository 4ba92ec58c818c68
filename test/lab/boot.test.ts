import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TARGET_TOOLS } from '../../src/target/directory/driver.js';
import { TOOLS } from '../../src/observe/origin.js';
import { bootDown, bootScript, bootUp, readBoot, sshArgs, type BootMachine } from '../support/lab/boot.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

/** Why the boot lab cannot run here, or null. Installs qemu (boot.sh deps) when it is missing. */
async function skipReason(): Promise<string | null> {
  if (!isRoot) return 'needs root (debootstrap, chroot, apt-get)';
  const has = async (tool: string): Promise<boolean> =>
    run('sh', ['-c', `command -v ${tool}`]).then(
      () => true,
      () => false,
    );
  if ((await has('qemu-system-x86_64')) && (await has('qemu-img')) && (await has('sfdisk'))) return null;
  try {
    await run(bootScript, ['deps'], { timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    return `qemu cannot be installed (lab/boot.sh deps failed: ${(error as Error).message.split('\n')[0]})`;
  }
  return (await has('qemu-system-x86_64')) ? null : 'qemu cannot be installed (no qemu-system-x86_64 after boot.sh deps)';
}

const reason = await skipReason();
const title = reason === null ? 'boot lab (lab/boot.sh)' : `boot lab (lab/boot.sh) — SKIPPED: ${reason}`;

async function ssh(m: BootMachine, command: string, user = 'root'): Promise<string> {
  const { stdout } = await run('ssh', [...sshArgs(m), '-l', user, m.host, command], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Whether pid runs (an exited process stays a zombie until pid 1 reaps it). */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

async function qemuArgs(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
}

/** PIDs of qemu processes whose command line names a file in dir. */
async function qemuUsing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('qemu-system') && cmdline.includes(`${dir}/`)) pids.push(Number(entry));
  }
  return pids;
}

describe.skipIf(reason !== null)(title, () => {
  let origin: BootMachine;
  let landing: BootMachine;
  let stateDir: string;

  beforeAll(async () => {
    // builds the image on first use (debootstrap and one boot: ~10 minutes), then boots both (~2-3 min under tcg)
    [origin, landing] = await Promise.all([bootUp('origin'), bootUp('landing')]);
    stateDir = (await readBoot()).stateDir;
  }, 60 * 60_000);

  afterAll(async () => {
    await bootDown('all');
  }, 180_000);

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
    expect(await ssh(origin, 'cat /proc/cmdline')).toMatch(/^BOOT_IMAGE=\/boot\/vmlinuz-\S+ root=UUID=/);
    expect(await ssh(origin, 'lsblk -dno PTTYPE /dev/vda; findmnt -no SOURCE,FSTYPE,LABEL /')).toMatch(/^dos\n\/dev\/vda1\s+ext4\s+root$/);
    expect(await ssh(origin, 'dd if=/dev/vda bs=512 count=1 status=none | grep -c GRUB')).toBe('1');
  });

  it('has the origin answering as root, and as rmm with passwordless sudo, with the tools rmm runs', async () => {
    expect(await ssh(origin, 'id -un && hostname')).toBe('root\napp01');
    expect(await ssh(origin, 'id -un && sudo -n id -u', 'rmm')).toBe('rmm\n0');
    const tools = [...new Set([...TARGET_TOOLS, ...TOOLS])].filter((t) => t !== 'btrfs');
    expect(await ssh(origin, `for t in ${tools.join(' ')}; do command -v $t >/dev/null || echo missing $t; done`)).toBe('');
  });

  it('has the origin network on ens3: 10.0.2.15/24 via 10.0.2.2', async () => {
    expect(await ssh(origin, 'ip -4 -o addr show dev ens3 | awk \'{print $4}\'; ip route show default')).toMatch(
      /^10\.0\.2\.15\/24\ndefault via 10\.0\.2\.2 dev ens3/,
    );
  });

  it('has vg_app/lv_data (xfs, appdata) on /srv/app, free VG space, and the raw ASM disk', async () => {
    expect(await ssh(origin, 'findmnt -no SOURCE,FSTYPE,LABEL /srv/app')).toMatch(/^\/dev\/mapper\/vg_app-lv_data\s+xfs\s+appdata$/);
    expect(await ssh(origin, 'lvs --noheadings -o vg_name,lv_name,lv_size,devices --units m --nosuffix')).toMatch(
      /^vg_app\s+lv_data\s+1024\.00\s+\/dev\/vdb\(0\)$/,
    );
    expect(Number(await ssh(origin, 'vgs --noheadings -o vg_free --units m --nosuffix vg_app'))).toBeGreaterThanOrEqual(900);
    expect(await ssh(origin, 'head -c 23 /dev/vdc; echo; dd if=/dev/vdc bs=1M skip=1 count=1 status=none | head -c 23; echo; blkid -p /dev/vdc; echo rc=$?')).toBe(
      'ORCLDISK-RMM-ASM-MARKER\nORCLDISK-RMM-ASM-MARKER\nrc=2',
    );
  });

  it('has the application data and its heartbeat', async () => {
    const manifest = await ssh(origin, 'app-manifest');
    const line = (path: string): string[] => manifest.split('\n').find((l) => l.startsWith(`${path}\t`))?.split('\t') ?? [];
    expect(line('/srv/app/bin/suid-tool').slice(1, 5)).toEqual(['f', '4755', '0', '0']);
    expect(line('/srv/app/data/sparse.img')[5]).toBe(String(64 * 2 ** 20));
    expect(line('/srv/app/docs/acl-file.txt')[8]).toMatch(/user:appuser:rw-/);
    expect(line('/srv/app/docs/xattr-file.txt')[9]).toMatch(/user\.rmm\.origin=0x/);
    expect(line('/srv/app/docs/doc-1.txt')[6]).toBe('3');
    expect(line('/home/appuser/tree/private.txt').slice(1, 5)).toEqual(['f', '600', '1001', '1001']);
    expect(manifest).not.toMatch(/heartbeat/);
    expect(await ssh(origin, 'app-manifest')).toBe(manifest); // stable
    expect(Number(await ssh(origin, 'du -k /srv/app/data/sparse.img | cut -f1'))).toBeLessThan(1024);
    const before = await ssh(origin, 'cat /srv/app/heartbeat');
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    expect(await ssh(origin, 'systemctl is-active app-heartbeat.service; cat /srv/app/heartbeat')).toMatch(/^active\n\d{4}-/);
    expect(await ssh(origin, 'cat /srv/app/heartbeat')).not.toBe(before);
  }, 120_000);

  it('has the landing on its own network with two blank disks', async () => {
    expect(await ssh(landing, 'hostname; ip -4 -o addr show dev ens3 | awk \'{print $4}\'')).toBe('landing\n10.0.3.15/24');
    expect(await ssh(landing, 'id -un && sudo -n id -u', 'rmm')).toBe('rmm\n0');
    expect(await ssh(landing, 'lsblk -dbno NAME,SIZE,FSTYPE,PTTYPE /dev/vdb /dev/vdc')).toMatch(/^vdb\s+4294967296\s*\nvdc\s+3221225472\s*$/);
    expect(await ssh(landing, 'cat /etc/machine-id')).not.toBe(await ssh(origin, 'cat /etc/machine-id'));
  });

  it('down leaves no qemu process and no state behind', async () => {
    await bootDown('all');
    expect(await qemuUsing(stateDir)).toEqual([]);
    expect(await running(origin.pid!)).toBe(false);
    expect(existsSync(stateDir)).toBe(false);
    await expect(readBoot()).rejects.toMatchObject({ code: 'BOOT_NOT_UP' });
    await bootDown('all'); // idempotent
  });
});
