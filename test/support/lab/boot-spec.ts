/**
 * What the boot tests of disks targets share: a root shell on a lab machine, and the spec that
 * replicates the boot lab's origin (lab/boot.sh) onto the landing's two disks through the relay.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sshArgs, type BootMachine } from './boot.js';

const run = promisify(execFile);

export const REPLICA = 'app01-dr';
/** What lab/boot.sh writes on the origin's raw "ASM" disk: no disk of a replica may hold it. */
export const ASM_MARKER = 'ORCLDISK-RMM-ASM-MARKER';

/** Runs a shell command as root on a lab machine; its output. */
export async function bootSsh(m: BootMachine, command: string): Promise<string> {
  const { stdout } = await run('ssh', [...sshArgs(m), '-l', 'root', m.host, command], { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/**
 * The spec: the origin and the landing host, each reached on its forwarded port; origin disks vda
 * (system) and vdb (LVM) onto the landing's vdb and vdc (`wipe` on vdc), the ASM disk vdc excluded,
 * the origin's network remapped to the replica's (10.0.4.0/24 unless `remapTo`), its NIC renamed as
 * q35's e1000e is named.
 */
export function disksSpecFile(origin: BootMachine, landing: BootMachine, wipe: boolean, remapTo = '10.0.4.0/24'): string {
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
        ipRemap: { networks: [{ from: '10.0.2.0/24', to: remapTo }] },
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
