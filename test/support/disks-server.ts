/**
 * A RHEL-like UEFI server for plan tests of disks targets: GPT with an ESP, /boot, an LVM volume
 * group `rl` (root, home, swap) on sda3, an ASM disk sdb (test/fixtures/layout/uefi-gpt-lvm); and
 * the spec that replicates it onto a landing host's /dev/vdb and /dev/vdc.
 */
import { readFileSync } from 'node:fs';
import { loadSources } from '../../src/config/load.js';
import type { Spec } from '../../src/config/spec.js';
import type { DiskLayout } from '../../src/observe/layout.js';
import { filesystem, originFacts } from './facts.js';

export const GiB = 1024 ** 3;

export const SERVER_LAYOUT = JSON.parse(readFileSync(new URL('../fixtures/layout/uefi-gpt-lvm.expected.json', import.meta.url), 'utf8')) as DiskLayout;

export const serverFacts = originFacts([
  filesystem('/', 'xfs', { source: '/dev/mapper/rl-root', lvmName: 'rl/root', usedBytes: 3 * GiB }),
  filesystem('/boot', 'xfs', { source: '/dev/sda2', usedBytes: 200 * 1024 ** 2 }),
  filesystem('/boot/efi', 'vfat', { source: '/dev/sda1', usedBytes: 10 * 1024 ** 2 }),
  filesystem('/home', 'xfs', { source: '/dev/mapper/rl-home', lvmName: 'rl/home', usedBytes: 1 * GiB }),
]);

/** Replica db-dr of origin db onto landing host `landing` (192.0.2.20), 10.0.2.0/24 remapped to `remapTo`. */
export function disksSpec(opts: { disks?: string; exclude?: string; remapTo?: string; hostDisks?: string } = {}): Spec {
  const { disks = '[{ origin: /dev/sda, target: /dev/vdb }]', exclude = '{ volumes: [/dev/sdb] }', remapTo = '10.0.4.0/24', hostDisks = '[/dev/vdb, /dev/vdc]' } = opts;
  const text = `
apiVersion: rmm/v1
kind: Origin
metadata: { name: db }
spec: { address: 192.0.2.10 }
---
apiVersion: rmm/v1
kind: Environment
metadata: { name: dr }
spec: { targetKind: disks, transfer: relay, hosts: [{ name: landing, address: 192.0.2.20, disks: ${hostDisks} }], ipRemap: { networks: [{ from: 10.0.2.0/24, to: ${remapTo} }] } }
---
apiVersion: rmm/v1
kind: Replica
metadata: { name: db-dr }
spec: { origin: db, environment: dr, disks: ${disks}, exclude: ${exclude} }
`;
  const { spec, diagnostics } = loadSources([{ name: 'disks.yaml', baseDir: '/tmp', text }]);
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return spec;
}
