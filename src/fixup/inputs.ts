import { hashOf } from '../config/resolve.js';
import type { Replica } from '../config/spec.js';
import type { RecoveryPoint, ReplicaRecord } from '../record/record.js';
import { globToRegExp } from '../util/glob.js';
import { AddressRemap } from './remap.js';
import type { UnavailableHandling } from './storage.js';
import type { NicIdentity } from './types.js';

/** What the fixups of one replica need besides the files: the spec's part, ready for the transforms. */
export interface FixupInputs {
  readonly remap: AddressRemap;
  readonly nics: NicIdentity;
  /** Origin device reference -> target reference (disks targets, from their layout); empty for directory targets. */
  readonly devices: ReadonlyMap<string, string>;
  /** The replica's exclusions, as written (globs allowed): their fstab and crypttab lines are unavailable at the target. */
  readonly excluded: { readonly volumes: readonly string[]; readonly mounts: readonly string[] };
  readonly unavailableMounts: UnavailableHandling;
  readonly networkMounts: UnavailableHandling | 'keep';
  /** The origin's hostname, which names its own lines in /etc/hosts; when absent, the tree's /etc/hostname gives it. */
  readonly originHostname?: string;
}

/**
 * Whether the replica's current point was adapted with other fixup settings than the spec's (or a
 * re-run on it was stopped halfway), while its data is what the spec asks for: then the fixups are
 * re-run on it instead of copying again. Observe reads the point's files only when this holds.
 */
export function wantsRefixup(replica: Replica, record: ReplicaRecord | undefined): RecoveryPoint | undefined {
  const point = record?.points.at(-1);
  // A disks replica holds one point, and only while its record says consistent (a sync writes over it).
  if (replica.environment.targetKind === 'disks' && record?.state !== 'consistent') return undefined;
  if (!point || !wantsFixups(replica) || point.specHash !== replica.specHash || !point.fixups) return undefined;
  return point.fixups.hash !== fixupsHash(replica) || point.fixups.rewriting !== undefined ? point : undefined;
}

/** Directory targets get fixups when the spec asks; disks targets always do. */
export function wantsFixups(replica: Replica): boolean {
  return replica.environment.targetKind === 'disks' || replica.fixups.enabled;
}

/** The fixup inputs a replica's spec gives; `devices` and `originHostname` come from what was observed, when known. */
export function fixupInputsOf(replica: Replica, observed: { devices?: ReadonlyMap<string, string>; originHostname?: string } = {}): FixupInputs {
  const { fixups } = replica;
  return {
    remap: new AddressRemap(replica.ipRemap),
    nics: nicIdentityOf(fixups.nics),
    devices: observed.devices ?? new Map(),
    excluded: { volumes: replica.exclude.volumes, mounts: replica.exclude.mounts },
    unavailableMounts: fixups.unavailableMounts,
    networkMounts: fixups.networkMounts,
    ...(observed.originHostname !== undefined ? { originHostname: observed.originHostname } : {}),
  };
}

/**
 * Everything of the spec that decides what the fixups write, as plain data in a fixed order: what a
 * record notes as the fixups applied, so that a change here (and only here) plans a fixup re-run
 * rather than a new copy.
 */
export function fixupSettings(replica: Replica): Record<string, unknown> {
  return {
    enabled: replica.fixups.enabled,
    ipRemap: replica.ipRemap,
    nics: replica.fixups.nics,
    networkMounts: replica.fixups.networkMounts,
    unavailableMounts: replica.fixups.unavailableMounts,
    excluded: { volumes: replica.exclude.volumes, mounts: replica.exclude.mounts },
  };
}

/** The fixups' generation: a record that notes it tells whether the fixups on a copy are the spec's current ones. */
export function fixupsHash(replica: Replica): string {
  return hashOf(fixupSettings(replica));
}

export function nicIdentityOf(nics: Replica['fixups']['nics']): NicIdentity {
  const names = new Map<string, string>();
  const macs = new Map<string, string | undefined>();
  for (const nic of nics) {
    names.set(nic.from, nic.to);
    if (nic.fromMac !== undefined) macs.set(nic.fromMac, nic.toMac);
  }
  return { names, macs };
}

const GLOB = /[*?[]/;

/**
 * The references the storage fixups should treat as excluded: literal exclusions as written (a disk
 * stands for its partitions there), and the device paths and mount points in the storage files
 * (`texts`: fstab first of all) that a glob exclusion matches. An LVM exclusion `vg/lv` names both
 * `/dev/vg/lv` and `/dev/mapper/vg-lv`.
 */
export function excludedReferences(excluded: FixupInputs['excluded'], texts: readonly string[]): Set<string> {
  const out = new Set<string>();
  const deviceGlobs: string[] = [];
  for (const volume of excluded.volumes) {
    const paths = volume.startsWith('/dev/') ? [volume] : lvmPaths(volume);
    for (const p of paths) (GLOB.test(p) ? deviceGlobs.push(p) : out.add(p));
  }
  const mountGlobs: string[] = [];
  for (const mount of excluded.mounts) (GLOB.test(mount) ? mountGlobs.push(mount) : out.add(mount));
  if (deviceGlobs.length > 0) {
    const res = deviceGlobs.map(globToRegExp);
    for (const device of devicesIn(texts)) if (res.some((re) => re.test(device))) out.add(device);
  }
  if (mountGlobs.length > 0) {
    const res = mountGlobs.map(globToRegExp);
    for (const mount of mountPointsIn(texts)) if (res.some((re) => re.test(mount))) out.add(mount);
  }
  return out;
}

/** `vg/lv` as its two device paths; device-mapper doubles the dashes inside each name. */
function lvmPaths(volume: string): string[] {
  const slash = volume.indexOf('/');
  const vg = volume.slice(0, slash);
  const lv = volume.slice(slash + 1);
  return [`/dev/${vg}/${lv}`, `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`];
}

function devicesIn(texts: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const text of texts) {
    for (const m of text.matchAll(/(?:^|[\s"'=,:])(\/dev\/[^\s"',:=]+)/gm)) found.add(m[1]!);
    for (const m of text.matchAll(/rd\.lvm\.lv=([^\s"'/]+)\/([^\s"']+)/g)) for (const p of lvmPaths(`${m[1]}/${m[2]}`)) found.add(p);
  }
  return found;
}

/** The second field of every table line (fstab's mount point), with fstab's octal escapes undone. */
function mountPointsIn(texts: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (/^\s*(#|$)/.test(line)) continue;
      const field = line.trim().split(/\s+/)[1];
      if (field?.startsWith('/')) found.add(field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))));
    }
  }
  return found;
}
