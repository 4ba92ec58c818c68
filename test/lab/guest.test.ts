import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { guestDown, guestScript, guestUp, readGuest, type Guest } from '../support/lab/guest.js';
import { qemuUsing, running } from '../support/lab/processes.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

/** Why the guest cannot run here, or null. Installs qemu (guest.sh deps) when it is missing. */
async function skipReason(): Promise<string | null> {
  if (!isRoot) return 'needs root (debootstrap, chroot, apt-get)';
  const has = async (tool: string): Promise<boolean> =>
    run('sh', ['-c', `command -v ${tool}`]).then(
      () => true,
      () => false,
    );
  if ((await has('qemu-system-x86_64')) && (await has('qemu-img'))) return null;
  try {
    await run(guestScript, ['deps'], { timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    return `qemu cannot be installed (lab/guest.sh deps failed: ${(error as Error).message.split('\n')[0]})`;
  }
  return (await has('qemu-system-x86_64')) ? null : 'qemu cannot be installed (no qemu-system-x86_64 after guest.sh deps)';
}

const reason = await skipReason();
const title = reason === null ? 'test guest (lab/guest.sh)' : `test guest (lab/guest.sh) — SKIPPED: ${reason}`;

/** The real OpenSSH client, strict about the guest's host key. */
async function ssh(guest: Guest, command: string, user = 'root'): Promise<string> {
  const { stdout } = await run(
    'ssh',
    [
      '-F', 'none',
      '-i', guest.clientKey,
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${guest.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=10',
      '-p', String(guest.port),
      '-l', user,
      guest.address,
      command,
    ],
    { timeout: 60_000 },
  );
  return stdout.trim();
}

describe.skipIf(reason !== null)(title, () => {
  let guest: Guest;

  beforeAll(async () => {
    // builds the image on first use (debootstrap and one boot: about 3 minutes), else boots (~40 s)
    guest = await guestUp();
  }, 45 * 60_000);

  afterAll(async () => {
    await guestDown();
  }, 120_000);

  it('describes itself in guest.json', async () => {
    expect(await readGuest()).toEqual(guest);
    expect(guest).toMatchObject({
      version: 1,
      address: '127.0.0.1',
      port: Number(process.env['RMM_GUEST_PORT'] ?? 2222),
      users: ['root', 'rmm'],
      lvm: { vg: 'vg0', lv: 'lv_data', mountPoint: '/srv/lvdata' },
    });
    expect(await running(guest.pid)).toBe(true);
    expect(await qemuUsing(guest.stateDir)).toEqual([guest.pid]);
    const knownHosts = await readFile(guest.knownHosts, 'utf8');
    for (const type of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']) {
      expect(knownHosts).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${guest.port} ${type} `, 'm'));
    }
  });

  it('answers ssh as root, and as rmm with passwordless sudo', async () => {
    expect(await ssh(guest, 'id -un && hostname')).toBe('root\nguest');
    expect(await ssh(guest, 'id -un && sudo -n id -u', 'rmm')).toBe('rmm\n0');
  });

  it('has vg0/lv_data mounted at /srv/lvdata, with room for snapshots', async () => {
    expect(await ssh(guest, 'lvs --noheadings -o vg_name,lv_name,lv_size --units m --nosuffix')).toMatch(
      /^vg0\s+lv_data\s+1024\.00$/,
    );
    expect(await ssh(guest, 'findmnt -n -o SOURCE,FSTYPE /srv/lvdata')).toMatch(/^\/dev\/mapper\/vg0-lv_data\s+xfs$/);
    const free = Number(await ssh(guest, 'vgs --noheadings -o vg_free --units m --nosuffix vg0'));
    expect(free).toBeGreaterThanOrEqual(900);
  });

  it('lets rmm take and remove an LVM snapshot with sudo', async () => {
    await ssh(guest, 'sudo -n lvcreate -s -L 100M -n testsnap vg0/lv_data', 'rmm');
    expect(await ssh(guest, 'sudo -n lvs --noheadings -o lv_name,origin vg0/testsnap', 'rmm')).toMatch(
      /^testsnap\s+lv_data$/,
    );
    await ssh(guest, 'sudo -n lvremove -y vg0/testsnap', 'rmm');
    expect(await ssh(guest, 'sudo -n lvs --noheadings -o lv_name vg0', 'rmm')).toBe('lv_data');
  });

  it('has rsync', async () => {
    expect(await ssh(guest, 'rsync --version')).toMatch(/^rsync\s+version 3\./);
  });

  it('down leaves no qemu process and no state behind', async () => {
    await guestDown();
    expect(await qemuUsing(guest.stateDir)).toEqual([]);
    expect(await running(guest.pid)).toBe(false);
    expect(existsSync(guest.stateDir)).toBe(false);
    expect(existsSync(guest.image)).toBe(true); // the cache stays
    await expect(readGuest()).rejects.toMatchObject({ code: 'GUEST_NOT_UP' });
    await guestDown(); // idempotent
  });
});
