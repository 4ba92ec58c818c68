import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { labCut, labDown, labExec, labJoin, labUp, readLab, type Lab } from '../support/lab/lab.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const title = isRoot
  ? 'test lab (lab/lab.sh)'
  : 'test lab (lab/lab.sh) — SKIPPED: needs root for network namespaces, loop devices and mounts';

type HostName = 'origin' | 'target';

/** The real OpenSSH client, from the root namespace (the rmm host), strict about host keys. */
async function ssh(lab: Lab, host: HostName, command: string, user = 'root'): Promise<string> {
  const h = lab.hosts[host];
  const { stdout } = await run(
    'ssh',
    [
      '-F', 'none',
      '-i', lab.clientKey,
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${lab.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=5',
      '-p', String(h.port),
      '-l', user,
      h.address,
      command,
    ],
    { timeout: 30_000 },
  );
  return stdout.trim();
}

/** Succeeds when a TCP connection from inside `host` to address:port opens within 3 s. */
function connectFrom(host: HostName, address: string, port: number): Promise<unknown> {
  return labExec(host, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${address}/${port}`]);
}

async function fsType(lab: Lab, host: HostName, mountpoint: string): Promise<string> {
  return ssh(lab, host, `findmnt -n -o FSTYPE --mountpoint ${mountpoint}`);
}

describe.skipIf(!isRoot)(title, () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await labUp(); // builds the image on first use (about a minute), else a few seconds
  }, 30 * 60_000);

  afterAll(async () => {
    await labDown();
  }, 120_000);

  it('describes itself in lab.json', async () => {
    expect(await readLab()).toEqual(lab);
    expect(lab).toMatchObject({
      version: 1,
      bridge: 'rmmlab0',
      rmmAddress: '198.18.0.1',
      hosts: {
        origin: { address: '198.18.0.10', port: 22, netns: 'rmmlab-origin', mounts: { '/': 'btrfs', '/srv/data': 'xfs', '/u02': 'xfs' } },
        target: { address: '198.18.0.20', port: 22, netns: 'rmmlab-target', mounts: { '/': 'xfs', '/srv/replicas': 'xfs', '/srv/snapshots': 'btrfs' } },
      },
    });
    const knownHosts = await readFile(lab.knownHosts, 'utf8');
    for (const address of ['198.18.0.10', '198.18.0.20']) {
      for (const type of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']) {
        expect(knownHosts).toMatch(new RegExp(`^${address.replaceAll('.', '\\.')} ${type} `, 'm'));
      }
    }
  });

  it('answers ssh as root with each host name', async () => {
    expect(await ssh(lab, 'origin', 'hostname')).toBe('origin');
    expect(await ssh(lab, 'target', 'hostname')).toBe('target');
  });

  it('gives user rmm passwordless sudo', async () => {
    for (const host of ['origin', 'target'] as const) {
      expect(await ssh(lab, host, 'id -un && sudo -n id -u', 'rmm')).toBe('rmm\n0');
    }
  });

  it('has btrfs / and xfs volumes on origin, xfs and btrfs on target', async () => {
    expect(await fsType(lab, 'origin', '/')).toBe('btrfs');
    expect(await fsType(lab, 'origin', '/srv/data')).toBe('xfs');
    expect(await fsType(lab, 'origin', '/u02')).toBe('xfs');
    expect(await fsType(lab, 'target', '/')).toBe('xfs');
    expect(await fsType(lab, 'target', '/srv/replicas')).toBe('xfs');
    expect(await fsType(lab, 'target', '/srv/snapshots')).toBe('btrfs');
    // its own disks and an fstab that names them, like a real server
    expect(await ssh(lab, 'origin', 'blkid -s TYPE -o value "$(findmnt -n -o SOURCE /)"')).toBe('btrfs');
    expect(await ssh(lab, 'origin', "awk '!/^#/ { print $2, $3 }' /etc/fstab")).toBe('/ btrfs\n/srv/data xfs\n/u02 xfs');
    // labExec sees the same host as an ssh session does
    expect((await labExec('origin', ['findmnt', '-n', '-o', 'FSTYPE', '--mountpoint', '/'])).stdout.trim()).toBe('btrfs');
    expect((await labExec('target', ['hostname'])).stdout.trim()).toBe('target');
  });

  it('cut partitions origin from target, but both still reach and are reached by the rmm host', async () => {
    await connectFrom('origin', lab.hosts.target.address, 22);
    await labCut();
    await expect(connectFrom('origin', lab.hosts.target.address, 22)).rejects.toThrow();
    await expect(connectFrom('target', lab.hosts.origin.address, 22)).rejects.toThrow();

    const server: Server = createServer((socket) => socket.end());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, lab.rmmAddress, resolve);
    });
    try {
      const { port } = server.address() as AddressInfo;
      await connectFrom('origin', lab.rmmAddress, port);
      await connectFrom('target', lab.rmmAddress, port);
    } finally {
      server.close();
    }
    expect(await ssh(lab, 'origin', 'hostname')).toBe('origin');
    expect(await ssh(lab, 'target', 'hostname')).toBe('target');
  });

  it('join restores the link between the hosts', async () => {
    await labJoin();
    await connectFrom('origin', lab.hosts.target.address, 22);
    await connectFrom('target', lab.hosts.origin.address, 22);
  });

  it('comes up again over the leftovers of a run that never went down', async () => {
    const before = await readFile(lab.clientKey, 'utf8');
    lab = await labUp();
    expect(await readFile(lab.clientKey, 'utf8')).not.toBe(before);
    expect(await ssh(lab, 'origin', 'hostname')).toBe('origin');
    expect(await ssh(lab, 'target', 'sudo -n hostname', 'rmm')).toBe('target');
  }, 120_000);

  it('down leaves no namespace, link, loop device, mount or state behind', async () => {
    await labDown();
    // Only this lab's names: other labs (RMM_LAB_ID=N, e.g. a benchmark) may be up beside it.
    const netns = (await run('ip', ['netns', 'list'])).stdout;
    expect(netns).not.toMatch(/^rmmlab-/m);
    const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/: rmmlab(0|-)/);
    const loops = (await run('losetup', ['-l', '-n', '-O', 'BACK-FILE'])).stdout;
    expect(loops).not.toContain(`${lab.stateDir}/`);
    expect(loops).not.toContain('/var/tmp/rmm-lab/');
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(`${lab.stateDir}/`);
    expect(existsSync(lab.stateDir)).toBe(false);
    await expect(readLab()).rejects.toMatchObject({ code: 'LAB_NOT_UP' });
    // idempotent
    await labDown();
  });
});
