/**
 * What the boot tests of disks targets share: a root shell on a lab machine, and the spec that
 * replicates the boot lab's origin (lab/boot.sh) onto the landing's two disks through the relay.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { rmm } from '../cli.js';
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
 * (system) and vdb (LVM) onto the landing's vdb and vdc (or `targets`; `wipe` on the second), the ASM disk vdc excluded,
 * the origin's network remapped to the replica's (10.0.4.0/24 unless `remapTo`), its NIC renamed as
 * q35's e1000e is named; `replicaExtra` adds to the Replica's spec (hooks).
 */
export function disksSpecFile(
  origin: BootMachine,
  landing: BootMachine,
  wipe: boolean,
  remapTo = '10.0.4.0/24',
  targets: readonly [string, string] = ['/dev/vdb', '/dev/vdc'],
  replicaExtra: Record<string, unknown> = {},
): string {
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
        hosts: [{ name: 'landing', address: landing.host, connection: connection(landing), disks: [...targets] }],
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
          { origin: '/dev/vda', target: targets[0] },
          { origin: '/dev/vdb', target: targets[1], ...(wipe ? { wipe: true } : {}) },
        ],
        exclude: { volumes: ['/dev/vdc'] },
        fixups: { nics: [{ from: origin.nic.name, to: 'enp0s3' }] },
        ...replicaExtra,
      },
    },
  ];
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'rmm-boot-spec-')), 'dr.yaml');
  writeFileSync(file, docs.map((d) => JSON.stringify(d, null, 2)).join('\n---\n'));
  return file;
}

/**
 * `rmm apply --sync-now` of the replica, with rmm's sessions on the landing host killed (the landing
 * host lost) once the copy of /srv/app/bulk is under way: what the apply gave, and whether the cut came.
 * rsync writes a file it receives as .NAME.XXXXXX beside it, then (--delay-updates) moves it into .~tmp~.
 */
export async function applyCutMidCopy(landing: BootMachine, spec: string): Promise<{ cut: boolean; failed: Awaited<ReturnType<typeof rmm>> }> {
  const receiving = `find /run/rmm-replica.${REPLICA}/srv/app -maxdepth 1 -name '.bulk.*' -size +20M | grep -q .`;
  let settled = false;
  const applying = rmm('apply', '-f', spec, '--yes', '--sync-now', REPLICA).finally(() => (settled = true));
  let cut = false;
  for (let i = 0; i < 1200 && !cut && !settled; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    // A probe the busy landing did not answer is not the test's failure: the next one asks again.
    const probe = await bootSsh(landing, `${receiving} && pkill -KILL -u rmm && echo cut || true`).catch(() => '');
    cut = probe.trim() === 'cut';
  }
  return { cut, failed: await applying };
}
