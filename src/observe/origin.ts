import { posix } from 'node:path';
import type { RemoteHost } from '../transport/index.js';
import { LOCAL_FS_TYPES, type BlockDevice, type Filesystem, type LogicalVolume, type OriginFacts } from './facts.js';

/** Where rmm mounts its snapshot views on an origin (src/snapshot/take.ts LVM_MOUNT_BASE). */
const RMM_VIEWS = '/run/.rmm-snap';

export const TOOLS = ['rsync', 'btrfs', 'fsfreeze', 'lvcreate', 'flock', 'ssh', 'ssh-keygen', 'findmnt', 'lsblk', 'setfacl', 'tar', 'timeout'] as const;

// One round trip: each section is printed after a marker line; a missing tool leaves its section empty.
const DISCOVER_SCRIPT = `
s() { printf '\\n@@rmm:%s\\n' "$1"; }
s hostname; hostname 2>/dev/null || cat /etc/hostname
s machine-id; cat /etc/machine-id 2>/dev/null
s os-release; cat /etc/os-release 2>/dev/null
s uname; uname -r -m
s findmnt; findmnt -J -b -o TARGET,SOURCE,FSTYPE,OPTIONS,SIZE,AVAIL,USED,UUID 2>/dev/null
s lsblk; lsblk -J -b -o PATH,TYPE,SIZE,FSTYPE,MOUNTPOINT,PKNAME 2>/dev/null
s lvs; command -v lvs >/dev/null && lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_path,lv_size,vg_free 2>/dev/null
s tools; for t in "$@"; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done
s netconf; for f in /etc/network/interfaces /etc/network/interfaces.d/* /etc/netplan/*.yaml /etc/NetworkManager/system-connections/* /etc/sysconfig/network-scripts/ifcfg-* /etc/systemd/network/*.network; do [ -f "$f" ] && echo "$f"; done
s end
`;

/** Reads the origin's facts in one command. Read-only. */
export async function discoverOrigin(session: RemoteHost, root: string): Promise<OriginFacts> {
  const { stdout } = await session.exec(['sh', '-c', DISCOVER_SCRIPT, 'rmm-discover', ...TOOLS], { sudo: true, timeoutMs: 60_000 });
  return parseDiscovery(stdout, root);
}

export function parseDiscovery(output: string, root: string): OriginFacts {
  const sections = splitSections(output);
  const get = (name: string): string => sections.get(name) ?? '';
  const osRelease = parseOsRelease(get('os-release'));
  const [kernel = '', arch = ''] = get('uname').trim().split(/\s+/);
  const lvs = parseLvs(get('lvs'));
  const tools = new Set(get('tools').split('\n').filter(Boolean));
  return {
    hostname: get('hostname').trim(),
    machineId: get('machine-id').trim(),
    os: { id: osRelease.ID ?? 'unknown', versionId: osRelease.VERSION_ID ?? '', prettyName: osRelease.PRETTY_NAME ?? 'unknown' },
    kernel,
    arch,
    filesystems: parseFindmnt(get('findmnt'), root, lvs),
    mountPoints: parseMountPoints(get('findmnt'), root),
    blockDevices: parseLsblk(get('lsblk')),
    logicalVolumes: lvs,
    tools: Object.fromEntries(TOOLS.map((t) => [t, tools.has(t)])),
    networkConfigFiles: get('netconf').split('\n').filter(Boolean),
  };
}

function splitSections(output: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = output.split(/\n@@rmm:([a-z-]+)\n/);
  for (let i = 1; i < parts.length; i += 2) out.set(parts[i]!, parts[i + 1] ?? '');
  return out;
}

function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

interface FindmntNode {
  target: string;
  source: string;
  fstype: string;
  options: string;
  size: number | string | null;
  avail: number | string | null;
  used: number | string | null;
  uuid?: string | null;
  children?: FindmntNode[];
}

function flatFindmnt(text: string): FindmntNode[] {
  if (!text.trim()) return [];
  const tree = JSON.parse(text) as { filesystems: FindmntNode[] };
  const flat: FindmntNode[] = [];
  const walk = (nodes: FindmntNode[] | undefined): void => {
    for (const n of nodes ?? []) {
      flat.push(n);
      walk(n.children);
    }
  };
  walk(tree.filesystems);
  return flat;
}

function isUnder(root: string, p: string): boolean {
  return root === '/' || p === root || p.startsWith(`${root.replace(/\/$/, '')}/`);
}

function parseMountPoints(text: string, root: string): string[] {
  return [...new Set(flatFindmnt(text).map((n) => n.target))].filter((t) => isUnder(root, t)).sort();
}

function parseFindmnt(text: string, root: string, lvs: readonly LogicalVolume[]): Filesystem[] {
  const flat = flatFindmnt(text);
  const under = (p: string): boolean => isUnder(root, p);
  const byMount = new Map<string, Filesystem>();
  for (const n of flat) {
    if (!LOCAL_FS_TYPES.has(n.fstype) || !under(n.target)) continue;
    // rmm's own views (LVM snapshots, a frozen filesystem's bind view) while a run holds them, or left by a killed one.
    if (n.target === RMM_VIEWS || n.target.startsWith(`${RMM_VIEWS}/`)) continue;
    // findmnt shows btrfs subvolume mounts as /dev/x[/subvol]; the device is what volume exclusions name.
    const source = n.source.replace(/\[.*\]$/, '');
    const lv = lvs.find((l) => l.path === source || source === `/dev/mapper/${l.vg.replace(/-/g, '--')}-${l.lv.replace(/-/g, '--')}`);
    byMount.set(n.target, {
      mountPoint: n.target,
      source,
      fsType: n.fstype,
      ...(n.uuid ? { uuid: n.uuid } : {}),
      sizeBytes: Number(n.size ?? 0),
      availableBytes: Number(n.avail ?? 0),
      usedBytes: Number(n.used ?? 0),
      options: n.options,
      ...(lv ? { lvmName: `${lv.vg}/${lv.lv}` } : {}),
    });
  }
  // Over-mounts hide what is below them: the last mount on a path wins, as the kernel shows it.
  return [...byMount.values()].sort((a, b) => depth(a.mountPoint) - depth(b.mountPoint) || a.mountPoint.localeCompare(b.mountPoint));
}

function depth(p: string): number {
  return p === '/' ? 0 : posix.normalize(p).split('/').length;
}

function parseLsblk(text: string): BlockDevice[] {
  if (!text.trim()) return [];
  const data = JSON.parse(text) as { blockdevices: Array<{ path: string; type: string; size: number | string; fstype?: string | null; mountpoint?: string | null; pkname?: string | null }> };
  return data.blockdevices.map((d) => ({
    path: d.path,
    type: d.type,
    sizeBytes: Number(d.size),
    ...(d.fstype ? { fsType: d.fstype } : {}),
    ...(d.mountpoint ? { mountPoint: d.mountpoint } : {}),
    ...(d.pkname ? { parent: d.pkname } : {}),
  }));
}

function parseLvs(text: string): LogicalVolume[] {
  if (!text.trim()) return [];
  const data = JSON.parse(text) as { report: Array<{ lv: Array<Record<string, string>> }> };
  return (data.report[0]?.lv ?? []).map((l) => ({
    vg: l.vg_name ?? '',
    lv: l.lv_name ?? '',
    path: l.lv_path ?? '',
    sizeBytes: Number(l.lv_size ?? 0),
    vgFreeBytes: Number(l.vg_free ?? 0),
  }));
}
