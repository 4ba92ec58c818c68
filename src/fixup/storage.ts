import { applyEdits, linesOf, type Line, type TextEdit } from './edits.js';
import { binaryProblem } from './line-edits.js';
import type { FixupResult } from './types.js';

/**
 * What the storage fixups need to know about the target's disks.
 *
 * Device references are written as the origin's files write them: `UUID=abc`, `LABEL=data`,
 * `PARTUUID=…`, `PARTLABEL=…`, `/dev/sdb1`, `/dev/disk/by-id/…`, `/dev/mapper/vg-lv`. A tag and its
 * `/dev/disk/by-*` link name the same thing (`UUID=abc` is `/dev/disk/by-uuid/abc`), quotes
 * (`UUID="abc"`) do not matter, and UUIDs compare without case; paths compare exactly, so `/dev/sdb1`
 * never matches `/dev/sdb10`.
 */
export interface StorageMap {
  /** Origin reference -> target reference: `UUID=abc` -> `UUID=def`, `/dev/sdb1` -> `/dev/vdb1`, `/dev/disk/by-id/ata-X-part2` -> `UUID=…`. */
  readonly devices: ReadonlyMap<string, string>;
  /** Mount points and device references of volumes that are not on the target (excluded from the copy). */
  readonly excluded: ReadonlySet<string>;
  /** What becomes of an fstab or crypttab line for an excluded volume. */
  readonly excludedHandling: UnavailableHandling;
  /** What becomes of network mounts (nfs, cifs, …, or any `_netdev` line); `keep` when the target site reaches their servers. */
  readonly networkMounts: UnavailableHandling | 'keep';
}

/**
 * `comment`: the line becomes a comment with a `# rmm:` note; `nofail`: the line stays and the boot no
 * longer waits for it (a local device also gets a short `x-systemd.device-timeout`).
 */
export type UnavailableHandling = 'comment' | 'nofail';

/**
 * The file systems systemd treats as network file systems (its `fstype_is_network`), plus FUSE's
 * spelling of sshfs and the smb/davfs variants found in the wild.
 */
const NETWORK_TYPES = new Set([
  'afs', 'ceph', 'cifs', 'smb3', 'smbfs', 'gfs', 'gfs2', 'glusterfs', 'lustre', 'ncp', 'ncpfs', 'nfs', 'nfs4',
  'ocfs2', 'orangefs', 'pvfs2', 'sshfs', 'fuse.sshfs', 'davfs', 'fuse.glusterfs', 'fuse.ceph',
]);

/** systemd waits 90 s for a device by default; one that will never come should not hold the boot's jobs that long. */
const DEVICE_TIMEOUT = 'x-systemd.device-timeout=10s';

// ---- device references ----------------------------------------------------------------------------

const TAGS = ['UUID', 'LABEL', 'PARTUUID', 'PARTLABEL'] as const;
type Tag = (typeof TAGS)[number];

/** A device reference taken apart, so `UUID="abc"`, `UUID=abc` and `/dev/disk/by-uuid/abc` compare equal. */
interface Reference {
  /** `UUID=abc` for tags (value lower case for UUIDs), the path itself otherwise. */
  readonly key: string;
  readonly tag?: Tag;
  readonly value: string;
  readonly form: 'tag' | 'quoted' | 'link' | 'path';
  /** As written. */
  readonly text: string;
}

function parseReference(text: string): Reference {
  for (const tag of TAGS) {
    if (text.startsWith(`${tag}=`)) {
      let value = text.slice(tag.length + 1);
      const quoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"');
      if (quoted) value = value.slice(1, -1);
      return { key: keyOf(tag, value), tag, value, form: quoted ? 'quoted' : 'tag', text };
    }
    const dir = `/dev/disk/by-${tag.toLowerCase()}/`;
    if (text.startsWith(dir)) {
      const value = text.slice(dir.length);
      return { key: keyOf(tag, value), tag, value, form: 'link', text };
    }
  }
  return { key: text, value: text, form: 'path', text };
}

function keyOf(tag: Tag, value: string): string {
  return `${tag}=${tag === 'UUID' || tag === 'PARTUUID' ? value.toLowerCase() : value}`;
}

/** Writes the target reference in the origin's spelling when both are the same kind of tag, else as the map writes it. */
function spell(origin: Reference, target: Reference): string {
  if (!target.tag || target.tag !== origin.tag) return target.text;
  if (origin.form === 'quoted') return `${target.tag}="${target.value}"`;
  if (origin.form === 'link') return `/dev/disk/by-${target.tag.toLowerCase()}/${target.value}`;
  return `${target.tag}=${target.value}`;
}

/** The spec's device map and exclusions over parsed references. */
class DeviceMap {
  readonly #devices = new Map<string, Reference>();
  readonly #excluded = new Set<string>();

  constructor(map: StorageMap) {
    for (const [from, to] of map.devices) this.#devices.set(parseReference(from).key, parseReference(to));
    for (const item of map.excluded) this.#excluded.add(item.startsWith('/') && !item.startsWith('/dev/') ? trimSlash(item) : parseReference(item).key);
  }

  /** The target's reference for an origin reference, in the origin's spelling; undefined when it does not change. */
  target(text: string): string | undefined {
    const origin = parseReference(text);
    const target = this.#devices.get(origin.key);
    if (!target) return undefined;
    const written = spell(origin, target);
    return written === text ? undefined : written;
  }

  /** True for an excluded device, and for a partition of an excluded disk (`/dev/vdc1`, `/dev/nvme1n1p2`). */
  isExcludedDevice(text: string): boolean {
    const key = parseReference(text).key;
    if (this.#excluded.has(key)) return true;
    const disk = /^(\/dev\/[^/]*\d)p\d+$/.exec(key)?.[1] ?? /^(\/dev\/[^/]*\D)\d+$/.exec(key)?.[1] ?? /^(\/dev\/disk\/by-(?:id|path)\/.+)-part\d+$/.exec(key)?.[1];
    return disk !== undefined && this.#excluded.has(disk);
  }

  isExcludedMountPoint(path: string): boolean {
    return this.#excluded.has(trimSlash(path));
  }

  /** True for an excluded mount point and for anything under one (a bind mount's source). */
  isExcludedPath(path: string): boolean {
    const clean = trimSlash(path);
    for (const item of this.#excluded) {
      if (!item.startsWith('/') || item.startsWith('/dev/')) continue;
      if (clean === item || (item === '/' ? false : clean.startsWith(`${item}/`))) return true;
    }
    return false;
  }
}

function trimSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

// ---- whitespace-separated tables (fstab, crypttab) ---------------------------------------------------

/** A table line split into fields, with the exact separators, so a field can be replaced in place. */
interface Row {
  readonly line: Line;
  readonly fields: { readonly text: string; readonly start: number }[];
}

function rowOf(line: Line): Row | undefined {
  if (/^\s*(#|$)/.test(line.text)) return undefined;
  const fields: Row['fields'] = [];
  for (const match of line.text.matchAll(/\S+/g)) fields.push({ text: match[0], start: line.start + match.index });
  return { line, fields };
}

/**
 * Replaces field `index`; when the field is padded with spaces to line up the next column, the padding
 * grows or shrinks so the next column stays where it was (tabs are kept as written).
 */
function replaceField(row: Row, index: number, text: string, reason: string): TextEdit[] {
  const field = row.fields[index]!;
  const edits: TextEdit[] = [{ start: field.start, end: field.start + field.text.length, text, reason }];
  const next = row.fields[index + 1];
  if (!next) return edits;
  const gapStart = field.start + field.text.length;
  const gap = row.line.text.slice(gapStart - row.line.start, next.start - row.line.start);
  // A single blank separates; more blanks line up the next column.
  if (/^ {2,}$/.test(gap)) {
    const width = Math.max(1, field.text.length + gap.length - text.length);
    edits.push({ start: gapStart, end: next.start, text: ' '.repeat(width), reason });
  }
  return edits;
}

/** fstab's octal escapes (`\040` for a space) undone, so mount points compare with the spec's. */
function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function commentRow(row: Row, note: string): TextEdit {
  return { start: row.line.start, end: row.line.start, text: `# rmm: ${note}: `, reason: note };
}

// ---- /etc/fstab ------------------------------------------------------------------------------------

/**
 * /etc/fstab for the target: device references mapped, lines of excluded volumes and (by the spec)
 * network mounts commented out or made `nofail`. Pseudo file systems, bind mounts of kept paths,
 * comments and blank lines stay as written.
 */
export function fixupFstab(text: string, map: StorageMap): FixupResult {
  return fixupTable(text, map, fstabProblem, fstabEdits);
}

/** A table of whitespace-separated fields (fstab, crypttab): each row checked, then edited; one bad row leaves the file alone. */
function fixupTable(text: string, map: StorageMap, problemOf: (row: Row) => string | undefined, editsOf: (row: Row, devices: DeviceMap, map: StorageMap) => TextEdit[]): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const devices = new DeviceMap(map);
  const edits: TextEdit[] = [];
  for (const line of linesOf(text)) {
    const row = rowOf(line);
    if (!row) continue;
    const problem = problemOf(row);
    if (problem) return { kind: 'unparsable', problem, line: line.number };
    edits.push(...editsOf(row, devices, map));
  }
  return applyEdits(text, edits);
}

function fstabProblem(row: Row): string | undefined {
  const n = row.fields.length;
  if (n < 3 || n > 6) return `an fstab entry has 3 to 6 fields (device, mount point, type, options, dump, pass), this line has ${n}`;
  for (const field of row.fields.slice(4)) if (!/^\d+$/.test(field.text)) return `dump and pass are numbers, not '${field.text}'`;
  return undefined;
}

function fstabEdits(row: Row, devices: DeviceMap, map: StorageMap): TextEdit[] {
  const [spec, file, type, options] = row.fields.map((f) => f.text) as [string, string, string, string | undefined];
  const optionList = options?.split(',') ?? [];
  const mountPoint = unescapeOctal(file);
  const isSwap = type === 'swap';
  const isBind = optionList.includes('bind') || optionList.includes('rbind');
  if (devices.isExcludedDevice(spec) || (!isSwap && devices.isExcludedMountPoint(mountPoint)) || (isBind && devices.isExcludedPath(unescapeOctal(spec)))) {
    const what = isSwap ? `swap on ${spec}` : `${mountPoint}`;
    return unavailable(row, map.excludedHandling, `${what} is excluded from the copy and not on the target`, !isBind);
  }
  if (isNetworkMount(spec, type, optionList) && map.networkMounts !== 'keep') {
    return unavailable(row, map.networkMounts, `network mount ${mountPoint} (${type} from ${spec}) is not reachable from the target site`, false);
  }
  const target = devices.target(spec);
  if (target === undefined) return [];
  return replaceField(row, 0, target, `${isSwap ? 'swap' : mountPoint}: ${spec} -> ${target} (the target's device)`);
}

function isNetworkMount(spec: string, type: string, options: readonly string[]): boolean {
  return NETWORK_TYPES.has(type) || options.includes('_netdev') || (type === 'fuse' && spec.startsWith('sshfs#'));
}

/** The spec's handling of a line whose volume will not be there at boot. */
function unavailable(row: Row, handling: UnavailableHandling, reason: string, localDevice: boolean): TextEdit[] {
  if (handling === 'comment') return [commentRow(row, reason)];
  const options = row.fields[3];
  const list = options?.text.split(',') ?? [];
  const add = ['nofail', ...(localDevice ? [DEVICE_TIMEOUT] : [])].filter(
    (option) => !list.includes(option) && !(option.startsWith('x-systemd.device-timeout=') && list.some((o) => o.startsWith('x-systemd.device-timeout='))),
  );
  if (add.length === 0) return [];
  const why = `${reason}: ${add.join(',')} so the boot does not wait for it`;
  if (!options) {
    const end = row.fields[2]!.start + row.fields[2]!.text.length;
    return [{ start: end, end, text: ` defaults,${add.join(',')}`, reason: why }];
  }
  return replaceField(row, 3, [...list, ...add].join(','), why);
}

// ---- /etc/crypttab ---------------------------------------------------------------------------------

/**
 * /etc/crypttab for the target: the encrypted device (and a key file given as a device) mapped; the
 * entry of an excluded volume, named by its device or by `/dev/mapper/<name>`, commented out or made
 * `nofail` as the spec says.
 */
export function fixupCrypttab(text: string, map: StorageMap): FixupResult {
  return fixupTable(text, map, crypttabProblem, crypttabEdits);
}

function crypttabProblem(row: Row): string | undefined {
  const n = row.fields.length;
  return n < 2 || n > 4 ? `a crypttab entry has 2 to 4 fields (name, device, key, options), this line has ${n}` : undefined;
}

function crypttabEdits(row: Row, devices: DeviceMap, map: StorageMap): TextEdit[] {
  const [name, device, key] = row.fields.map((f) => f.text) as [string, string, string | undefined];
  if (devices.isExcludedDevice(device) || devices.isExcludedDevice(`/dev/mapper/${name}`)) {
    return unavailableCrypt(row, map.excludedHandling, `${name} (${device}) is excluded from the copy and not on the target`);
  }
  const edits: TextEdit[] = [];
  const target = devices.target(device);
  if (target !== undefined) edits.push(...replaceField(row, 1, target, `${name}: ${device} -> ${target} (the target's device)`));
  const keyTarget = key === undefined ? undefined : devices.target(key);
  if (key !== undefined && keyTarget !== undefined) edits.push(...replaceField(row, 2, keyTarget, `${name}: key device ${key} -> ${keyTarget}`));
  return edits;
}

function unavailableCrypt(row: Row, handling: UnavailableHandling, reason: string): TextEdit[] {
  if (handling === 'comment') return [commentRow(row, reason)];
  const options = row.fields[3];
  const list = options?.text.split(',') ?? [];
  if (list.includes('nofail')) return [];
  const why = `${reason}: nofail so the boot does not wait for it`;
  if (!options) {
    const last = row.fields[row.fields.length - 1]!;
    const end = last.start + last.text.length;
    return [{ start: end, end, text: row.fields.length === 2 ? ' none nofail' : ' nofail', reason: why }];
  }
  return replaceField(row, 3, [...list, 'nofail'].join(','), why);
}

// ---- the resume device -----------------------------------------------------------------------------

/**
 * initramfs-tools' `/etc/initramfs-tools/conf.d/resume` (`RESUME=UUID=…`): the swap device mapped, or
 * `none` when the swap is excluded (the initramfs would wait for it at every boot).
 */
export function fixupResume(text: string, map: StorageMap): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const devices = new DeviceMap(map);
  const edits: TextEdit[] = [];
  for (const line of linesOf(text)) {
    const match = /^(\s*RESUME=)(["']?)([^"'\s#]*)\2/.exec(line.text);
    if (!match) continue;
    const value = match[3]!;
    if (value === '' || value === 'none' || value === 'auto') continue;
    const start = line.start + match[1]!.length + match[2]!.length;
    const end = start + value.length;
    if (devices.isExcludedDevice(value)) {
      edits.push({ start, end, text: 'none', reason: `resume device ${value} is excluded from the copy and not on the target` });
      continue;
    }
    const target = devices.target(value);
    if (target !== undefined) edits.push({ start, end, text: target, reason: `resume device ${value} -> ${target} (the target's swap)` });
  }
  return applyEdits(text, edits);
}

// ---- the kernel command line -----------------------------------------------------------------------

/**
 * `/etc/default/grub`: the device references in `GRUB_CMDLINE_LINUX` and `GRUB_CMDLINE_LINUX_DEFAULT`
 * (`root=`, `resume=`, `rd.lvm.lv=`, `rd.luks.uuid=`, `rd.luks.name=`, `cryptdevice=`) mapped; a
 * `resume=` naming an excluded swap removed. The other settings and parameters stay as written.
 */
export function fixupGrubDefaults(text: string, map: StorageMap): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const devices = new DeviceMap(map);
  const edits: TextEdit[] = [];
  for (const line of linesOf(text)) {
    const match = /^(\s*(?:export\s+)?GRUB_CMDLINE_LINUX(?:_DEFAULT)?=)/.exec(line.text);
    if (!match) continue;
    edits.push(...cmdlineEdits(line, match[1]!.length, devices));
  }
  return applyEdits(text, edits);
}

/**
 * A bare kernel command line (`/etc/kernel/cmdline`, which RHEL 9 and Fedora copy into every new
 * boot entry): the same parameters as in `/etc/default/grub`.
 */
export function fixupKernelCmdline(text: string, map: StorageMap): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const devices = new DeviceMap(map);
  return applyEdits(text, linesOf(text).flatMap((line) => (/^\s*#/.test(line.text) ? [] : cmdlineEdits(line, 0, devices))));
}

const PARAMETER = /(^|[\s"'])(root|resume|rd\.lvm\.lv|rd\.luks\.uuid|rd\.luks\.name|cryptdevice)=([^\s"']+)/g;

function cmdlineEdits(line: Line, from: number, devices: DeviceMap): TextEdit[] {
  const edits: TextEdit[] = [];
  const body = line.text.slice(from);
  for (const match of body.matchAll(PARAMETER)) {
    const name = match[2]!;
    const value = match[3]!;
    const start = line.start + from + match.index + match[1]!.length;
    const valueStart = start + name.length + 1;
    if ((name === 'resume' && devices.isExcludedDevice(value)) || (name === 'rd.lvm.lv' && isExcludedVolume(value, devices))) {
      // The initramfs would wait for the missing device at every boot.
      edits.push(removeParameter(line, start, valueStart + value.length, `${name}=${value} removed: the volume is excluded from the copy and not on the target`));
      continue;
    }
    const target = parameterTarget(name, value, devices);
    if (target !== undefined) edits.push({ start: valueStart, end: valueStart + value.length, text: target, reason: `${name}=${value} -> ${name}=${target} (the target's device)` });
  }
  return edits;
}

/** Removes `name=value` and one blank beside it, so no double space is left. */
function removeParameter(line: Line, start: number, end: number, reason: string): TextEdit {
  const text = line.text;
  const at = (offset: number): string => text[offset - line.start] ?? '';
  if (at(end) === ' ') return { start, end: end + 1, text: '', reason };
  if (at(start - 1) === ' ') return { start: start - 1, end, text: '', reason };
  return { start, end, text: '', reason };
}

function parameterTarget(name: string, value: string, devices: DeviceMap): string | undefined {
  switch (name) {
    case 'root':
    case 'resume':
      return devices.target(value);
    case 'rd.lvm.lv':
      return logicalVolumeTarget(value, devices);
    case 'rd.luks.uuid': {
      const prefix = value.startsWith('luks-') ? 'luks-' : '';
      const uuid = luksUuidTarget(value.slice(prefix.length), devices);
      return uuid === undefined ? undefined : `${prefix}${uuid}`;
    }
    case 'rd.luks.name': {
      const eq = value.indexOf('=');
      if (eq === -1) return undefined;
      const uuid = luksUuidTarget(value.slice(0, eq), devices);
      return uuid === undefined ? undefined : `${uuid}${value.slice(eq)}`;
    }
    case 'cryptdevice': {
      const colon = value.lastIndexOf(':');
      if (colon === -1) return undefined;
      const device = devices.target(value.slice(0, colon));
      return device === undefined ? undefined : `${device}${value.slice(colon)}`;
    }
    default:
      return undefined;
  }
}

/** The target's LUKS UUID for an origin LUKS UUID, when the map takes one `UUID=` to another. */
function luksUuidTarget(uuid: string, devices: DeviceMap): string | undefined {
  const target = devices.target(`UUID=${uuid}`);
  if (target === undefined) return undefined;
  const ref = parseReference(target);
  return ref.tag === 'UUID' ? ref.value : undefined;
}

function volumePaths(value: string): string[] {
  const slash = value.indexOf('/');
  if (slash === -1) return [];
  const vg = value.slice(0, slash);
  const lv = value.slice(slash + 1);
  return [`/dev/${vg}/${lv}`, `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`];
}

function isExcludedVolume(value: string, devices: DeviceMap): boolean {
  return volumePaths(value).some((path) => devices.isExcludedDevice(path));
}

/**
 * `rd.lvm.lv=vg/lv` names a logical volume by its volume group: found in the map as `/dev/vg/lv` or
 * `/dev/mapper/vg-lv` (dashes doubled), and written back as `vg/lv` when the target is an LVM path.
 */
function logicalVolumeTarget(value: string, devices: DeviceMap): string | undefined {
  const [plain, mapper] = volumePaths(value);
  if (plain === undefined || mapper === undefined) return undefined;
  const target = devices.target(plain) ?? devices.target(mapper);
  if (target === undefined) return undefined;
  const volume = volumeOf(target);
  return volume === undefined || volume === value ? undefined : volume;
}

function volumeOf(path: string): string | undefined {
  const mapper = /^\/dev\/mapper\/((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(path);
  if (mapper) return `${mapper[1]!.replace(/--/g, '-')}/${mapper[2]!.replace(/--/g, '-')}`;
  const plain = /^\/dev\/([^/]+)\/([^/]+)$/.exec(path);
  if (plain && !['disk', 'mapper', 'md'].includes(plain[1]!)) return `${plain[1]}/${plain[2]}`;
  return undefined;
}
