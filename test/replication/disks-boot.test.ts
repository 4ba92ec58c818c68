/**
 * The boot test of disks targets (lab/boot.sh): a Debian origin under qemu (BIOS, MBR, root ext4,
 * an application volume on LVM + xfs on a second disk, a raw ASM disk that is excluded, a static
 * address on a virtio NIC) is replicated through the relay onto the blank disks of a landing host
 * on another network, with an IP remap; then the landing is powered off and its disks boot alone on
 * other virtual hardware (q35, AHCI, an e1000e NIC with another name and MAC) at the remapped
 * address, where the test logs in and finds the origin's server. Needs root and qemu (slow under
 * software emulation: each machine boots once).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { bootDown, bootPoweroff, bootReplica, bootUp, sshArgs, type BootMachine } from '../support/lab/boot.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const hasQemu = await run('sh', ['-c', 'command -v qemu-system-x86_64']).then(
  () => true,
  () => false,
);
const REPLICA = 'app01-dr';
const MARKER = 'ORCLDISK-RMM-ASM-MARKER';

async function ssh(m: BootMachine, command: string): Promise<string> {
  const { stdout } = await run('ssh', [...sshArgs(m), '-l', 'root', m.host, command], { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** The spec: the origin and the landing host, each reached on its forwarded port; `wipe` on the second landing disk. */
function specFile(origin: BootMachine, landing: BootMachine, wipe: boolean): string {
  const connection = (m: BootMachine) => ({ port: m.sshPort, user: 'rmm', sudo: true, auth: { keyFile: m.clientKey }, knownHostsFile: m.knownHosts, heartbeatTimeout: '60s', connectTimeout: '30s' });
  const docs = [
    { apiVersion: 'rmm/v1', kind: 'Origin', metadata: { name: 'app01' }, spec: { address: origin.host, connection: connection(origin) } },
    {
      apiVersion: 'rmm/v1',
      kind: 'Environment',
      metadata: { name: 'dr-site' },
      spec: {
        targetKind: 'disks',
        transfer: 'relay',
        hosts: [{ name: 'landing', address: landing.host, connection: connection(landing), disks: ['/dev/vdb', '/dev/vdc'] }],
        ipRemap: { networks: [{ from: '10.0.2.0/24', to: '10.0.4.0/24' }] },
      },
    },
    { apiVersion: 'rmm/v1', kind: 'Policy', metadata: { name: 'dr' }, spec: { stallTimeout: '5m' } },
    {
      apiVersion: 'rmm/v1',
      kind: 'Replica',
      metadata: { name: REPLICA },
      spec: {
        origin: 'app01',
        environment: 'dr-site',
        policy: 'dr',
        disks: [
          { origin: '/dev/vda', target: '/dev/vdb' },
          { origin: '/dev/vdb', target: '/dev/vdc', ...(wipe ? { wipe: true } : {}) },
        ],
        exclude: { volumes: ['/dev/vdc'] },
        fixups: { nics: [{ from: origin.nic.name, to: 'enp0s3' }] },
      },
    },
  ];
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'rmm-boot-spec-')), 'dr.yaml');
  writeFileSync(file, docs.map((d) => JSON.stringify(d, null, 2)).join('\n---\n'));
  return file;
}

describe.skipIf(!isRoot || !hasQemu)('a disks replica boots on other hardware (needs root and qemu)', () => {
  let origin: BootMachine;
  let landing: BootMachine;
  let manifest: string;

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
    const apply = await rmm('apply', '-f', specFile(origin, landing, true), '--yes');
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
});
