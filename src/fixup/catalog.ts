import { globToRegExp } from '../util/glob.js';
import { ifcfgFileName } from './ifcfg.js';
import { networkdFileName } from './networkd.js';
import type { NicIdentity } from './types.js';

/** The file formats the fixups know, one transform each. */
export type FixupFormat =
  | 'ifupdown'
  | 'netplan'
  | 'nm-keyfile'
  | 'ifcfg'
  | 'ifcfg-routes'
  | 'sysconfig-network'
  | 'networkd'
  | 'fstab'
  | 'crypttab'
  | 'resume'
  | 'grub-defaults'
  | 'kernel-cmdline'
  | 'hostname'
  | 'hosts'
  | 'udev-persistent-net';

/** Where a format lives on a Linux root, as globs over absolute paths (`*` stays within one folder). */
interface CatalogEntry {
  readonly format: FixupFormat;
  readonly patterns: readonly string[];
  /** The file's new name when it carries an origin interface name; undefined when it keeps its name. */
  readonly rename?: (fileName: string, nics: NicIdentity) => string | undefined;
}

/** A configuration file larger than this is not read, on a host or in a local tree: no network or storage file comes near it. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export const CATALOG: readonly CatalogEntry[] = [
  { format: 'ifupdown', patterns: ['/etc/network/interfaces'] },
  { format: 'netplan', patterns: ['/etc/netplan/*.yaml', '/etc/netplan/*.yml'] },
  { format: 'nm-keyfile', patterns: ['/etc/NetworkManager/system-connections/*.nmconnection'] },
  // RHEL and Fedora keep them in network-scripts; SUSE in /etc/sysconfig/network itself.
  { format: 'ifcfg', patterns: ['/etc/sysconfig/network-scripts/ifcfg-*', '/etc/sysconfig/network/ifcfg-*'], rename: ifcfgFileName },
  { format: 'ifcfg-routes', patterns: ['/etc/sysconfig/network-scripts/route-*', '/etc/sysconfig/network-scripts/route6-*'], rename: ifcfgFileName },
  { format: 'sysconfig-network', patterns: ['/etc/sysconfig/network'] },
  { format: 'networkd', patterns: ['/etc/systemd/network/*.network', '/etc/systemd/network/*.link', '/etc/systemd/network/*.netdev'], rename: networkdFileName },
  { format: 'fstab', patterns: ['/etc/fstab'] },
  { format: 'crypttab', patterns: ['/etc/crypttab'] },
  { format: 'resume', patterns: ['/etc/initramfs-tools/conf.d/resume'] },
  { format: 'grub-defaults', patterns: ['/etc/default/grub'] },
  { format: 'kernel-cmdline', patterns: ['/etc/kernel/cmdline'] },
  { format: 'hostname', patterns: ['/etc/hostname'] },
  { format: 'hosts', patterns: ['/etc/hosts'] },
  { format: 'udev-persistent-net', patterns: ['/etc/udev/rules.d/*persistent-net*.rules'] },
];

/**
 * Every path pattern the fixups read, for a caller that fetches them from a host or a tree: exact
 * paths, and globs whose `*` matches within one folder. Files that /etc/network/interfaces sources
 * come in a second round (`sourcedPatterns`).
 */
export function wantedPatterns(): string[] {
  return CATALOG.flatMap((e) => e.patterns);
}

/**
 * Backups and package leftovers that the network scripts skip (initscripts' `ifcfg-*` loop ignores
 * them); rewriting or renaming them would only make a second interface appear.
 */
const IGNORED = /(~|\.bak|\.orig|\.old|\.rpmnew|\.rpmorig|\.rpmsave|\.dpkg-[a-z]+|\.swp)$/;

const compiled = CATALOG.map((e) => ({ entry: e, res: e.patterns.map(globToRegExp) }));

/** The catalog's format for an absolute path; undefined for a file no fixup reads. */
export function formatOf(path: string): FixupFormat | undefined {
  if (IGNORED.test(path)) return undefined;
  return compiled.find(({ res }) => res.some((re) => re.test(path)))?.entry.format;
}

/** The new name of a file whose format renames files; undefined when it keeps its name. */
export function renamedPath(path: string, format: FixupFormat, nics: NicIdentity): string | undefined {
  const rename = CATALOG.find((e) => e.format === format)?.rename;
  if (!rename) return undefined;
  const slash = path.lastIndexOf('/');
  const to = rename(path.slice(slash + 1), nics);
  return to === undefined ? undefined : path.slice(0, slash + 1) + to;
}

/** True when `path` matches one of `patterns` (as wantedPatterns and sourcedPatterns give them). */
export function matchesPattern(path: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => globToRegExp(p).test(path));
}
