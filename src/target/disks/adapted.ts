import { posix } from 'node:path';
import { MAX_CONFIG_FILE_BYTES } from '../../fixup/catalog.js';
import type { DisksMount } from '../../plan/action.js';
import type { ConfigFiles } from '../../observe/config-files.js';

/**
 * What a disks replica keeps beside its record of how its last sync adapted it (.rmm/adapted.json):
 * the configuration files the fixups read, as the replica holds them after its fixups, how its
 * filesystems mount, and the device references its fixups wrote. With the origin's texts in
 * .rmm/originals, that is all a fixup re-run needs: the disks are neither mounted nor read to plan
 * it, and the origin is not contacted.
 */
export interface AdaptedReplica {
  readonly point: string;
  readonly mounts: readonly DisksMount[];
  readonly devices: Readonly<Record<string, string>>;
  readonly files: ConfigFiles;
}

export const ADAPTED_FILE = 'adapted.json';

export function formatAdapted(a: AdaptedReplica): string {
  return `${JSON.stringify({ schemaVersion: 1, ...a }, null, 1)}\n`;
}

/** The file as read from the landing host: untrusted. Anything out of shape gives why, never a guess. */
export function parseAdapted(text: string): AdaptedReplica | { invalid: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { invalid: 'not JSON' };
  }
  if (!isObject(raw) || raw.schemaVersion !== 1) return { invalid: 'not schemaVersion 1' };
  const { point, mounts, devices, files } = raw;
  if (typeof point !== 'string' || !/^\d{8}T\d{6}Z$/.test(point)) return { invalid: 'point is not a point id' };
  if (!Array.isArray(mounts) || mounts.length === 0 || !mounts.every(isMount)) return { invalid: 'mounts are not devices at mount points' };
  if (!isObject(devices) || !Object.entries(devices).every(([k, v]) => DEVICE.test(k) && !k.includes('..') && typeof v === 'string' && REFERENCE.test(v))) return { invalid: 'devices are not device references' };
  if (!isObject(files) || !Array.isArray(files.files) || !Array.isArray(files.refused)) return { invalid: 'files are not configuration files' };
  if (!files.files.every((f) => isObject(f) && isPath(f.path) && typeof f.text === 'string' && Buffer.byteLength(f.text) <= MAX_CONFIG_FILE_BYTES)) return { invalid: 'a configuration file is out of shape' };
  if (!files.refused.every((f) => isObject(f) && isPath(f.path) && typeof f.why === 'string')) return { invalid: 'a refused file is out of shape' };
  return {
    point,
    mounts: mounts.map((m: DisksMount) => ({ device: m.device, mountPoint: m.mountPoint, fsType: m.fsType, relativePath: m.relativePath, ...(m.volumeGroup !== undefined ? { volumeGroup: m.volumeGroup } : {}) })),
    devices: Object.fromEntries(Object.entries(devices) as [string, string][]),
    files: { files: files.files.map((f: { path: string; text: string }) => ({ path: f.path, text: f.text })), refused: files.refused.map((f: { path: string; why: string }) => ({ path: f.path, why: f.why })) },
  };
}

const DEVICE = /^\/dev\/[A-Za-z0-9._+:@/-]+$/;
const REFERENCE = /^(UUID|PARTUUID|LABEL)=[A-Za-z0-9._-]+$/;
const NAME = /^[A-Za-z0-9._+-]+$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPath(p: unknown): p is string {
  return typeof p === 'string' && p.startsWith('/') && posix.normalize(p) === p && !p.includes('\0');
}

function isMount(m: unknown): m is DisksMount {
  if (!isObject(m)) return false;
  const { device, mountPoint, fsType, relativePath, volumeGroup } = m;
  if (typeof device !== 'string' || !DEVICE.test(device) || device.includes('..')) return false;
  if (!isPath(mountPoint) || typeof fsType !== 'string' || !/^[a-z0-9]+$/.test(fsType)) return false;
  if (typeof relativePath !== 'string' || relativePath !== mountPoint.slice(1)) return false;
  return volumeGroup === undefined || (typeof volumeGroup === 'string' && NAME.test(volumeGroup));
}
