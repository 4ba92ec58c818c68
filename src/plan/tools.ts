import type { DisksPlan, PlannedUnit } from './action.js';

/** The package that brings a tool, by its Debian name, then its RHEL name when that differs. */
const PACKAGES: Readonly<Record<string, string>> = {
  rsync: 'rsync',
  tar: 'tar',
  timeout: 'coreutils',
  flock: 'util-linux',
  pkill: 'procps',
  ssh: 'openssh-client (RHEL: openssh-clients)',
  'ssh-keygen': 'openssh-client (RHEL: openssh-clients)',
  sfdisk: 'fdisk (RHEL: util-linux)',
  wipefs: 'util-linux',
  mkswap: 'util-linux',
  mount: 'mount (RHEL: util-linux)',
  umount: 'mount (RHEL: util-linux)',
  chroot: 'coreutils',
  'mkfs.ext2': 'e2fsprogs',
  'mkfs.ext3': 'e2fsprogs',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  'mkfs.vfat': 'dosfstools',
  'mkfs.btrfs': 'btrfs-progs',
  pvcreate: 'lvm2',
  vgcreate: 'lvm2',
  lvcreate: 'lvm2',
  vgchange: 'lvm2',
};

/** Why each host needs a tool, in the operator's words. */
const WHY: Readonly<Record<string, string>> = {
  rsync: 'copies and deltas',
  tar: 'first copies by tar streams',
  timeout: "heartbeats of rmm's holders",
  flock: "the replica's lock",
  pkill: 'ending a stalled tar stream',
  ssh: 'the copy connection to the target',
  'ssh-keygen': "the copy's one-run key",
  mount: "mounting the replica's filesystems",
  umount: "unmounting the replica's filesystems",
  chroot: 'the bootloader and initramfs made in the copy',
  vgchange: "activating the replica's volume groups",
};

/**
 * The tools a sync runs on each host besides rsync (which plan.ts may install) and the snapshot
 * tools (src/snapshot/select.ts): checked at plan time, so a sync never fails halfway for a tool the
 * observation already showed missing.
 */
export function toolsNeeded(units: readonly PlannedUnit[], disks?: DisksPlan): { origin: string[]; target: string[] } {
  const tar = units.some((u) => u.method.kind === 'tar') ? ['tar'] : [];
  const landing = disks ? [...new Set(['mount', 'umount', 'chroot', ...disks.layout.map((s) => s.argv[0]!), ...(disks.mounts.some((m) => m.volumeGroup !== undefined) ? ['vgchange'] : [])])] : [];
  return { origin: ['ssh', 'ssh-keygen', 'timeout', ...tar], target: ['flock', 'timeout', ...tar, ...(tar.length > 0 ? ['pkill'] : []), ...landing] };
}

/** Every tool a disks sync may run on its landing host: what observe asks it about. */
export const LANDING_TOOLS = ['rsync', 'flock', 'tar', 'timeout', 'pkill', 'mount', 'umount', 'chroot', 'sfdisk', 'wipefs', 'mkswap', 'mkfs.ext2', 'mkfs.ext3', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.vfat', 'mkfs.btrfs', 'pvcreate', 'vgcreate', 'lvcreate', 'vgchange'] as const;

/** A blocking reason naming what `host` lacks and how to get it, or undefined when it has everything. */
export function missingTools(on: 'origin' | 'target', host: string, needed: readonly string[], present: Readonly<Record<string, boolean>>): string | undefined {
  // Only a tool the host was asked about and said no to: an older observation may not list it.
  const lacking = needed.filter((t) => present[t] === false);
  if (lacking.length === 0) return undefined;
  const packages = [...new Set(lacking.map((t) => PACKAGES[t] ?? t))];
  const what = lacking.map((t) => `${t} (${WHY[t] ?? 'the sync'})`).join(', ');
  return `${on} ${host} has no ${what}; install the package${packages.length > 1 ? 's' : ''} ${packages.join(', ')} there`;
}
