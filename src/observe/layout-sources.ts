import { RmmError } from '../errors.js';

/**
 * The raw reports of the layout script (lsblk, sfdisk, blkid, findmnt, LVM), each checked for
 * shape and turned into plain records. The host's output is untrusted: a value that is not what the
 * tool prints (a path outside /dev, a negative size, a control character in a label) is refused
 * rather than carried into a command line.
 */

/** The disk layout a host printed is not what its tools print; nothing was acted on. */
export class LayoutError extends RmmError {
  constructor(readonly facts: { host: string; section: string; problem: string }) {
    super('layout.malformed', `the disk layout read from ${facts.host} is malformed: section '${facts.section}': ${facts.problem}`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export const DEVICE_PATH = /^\/dev\/[A-Za-z0-9._/-]+$/;
const UUID_LIKE = /^[A-Za-z0-9-]{1,64}$/;
const FS_TYPE = /^[A-Za-z0-9_.-]{1,32}$/;
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Reads one section; every failure names it. */
export class Reader {
  constructor(
    readonly host: string,
    readonly section: string,
  ) {}

  fail(problem: string): never {
    throw new LayoutError({ host: this.host, section: this.section, problem });
  }

  json(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return this.fail('is not valid JSON');
    }
  }

  object(value: unknown, what: string): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(`${what} is not an object`);
    return value as Record<string, unknown>;
  }

  array(value: unknown, what: string): unknown[] {
    if (!Array.isArray(value)) this.fail(`${what} is not a list`);
    return value;
  }

  /** A non-negative whole number, written as a JSON number or as decimal digits (LVM, older lsblk). */
  count(value: unknown, what: string): number {
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < 0) this.fail(`${what} is not a whole number of bytes or sectors: ${show(value)}`);
    return n;
  }

  /** lsblk prints booleans since util-linux 2.33 and "0"/"1" before. */
  flag(value: unknown, what: string): boolean {
    if (typeof value === 'boolean') return value;
    if (value === '0' || value === '1' || value === 0 || value === 1) return value === '1' || value === 1;
    return this.fail(`${what} is not a boolean: ${show(value)}`);
  }

  /** A string of at most `max` characters without control characters; null and '' are absent. */
  text(value: unknown, what: string, max = 128): string | undefined {
    if (value === null || value === undefined || value === '') return undefined;
    if (typeof value !== 'string' || value.length > max || CONTROL.test(value)) this.fail(`${what} is not a plain string of at most ${max} characters: ${show(value)}`);
    return value;
  }

  matching(value: unknown, re: RegExp, what: string): string | undefined {
    const s = this.text(value, what, 4096);
    if (s !== undefined && !re.test(s)) this.fail(`${what} is not valid: ${show(s)}`);
    return s;
  }

  path(value: unknown, what: string): string {
    return this.matching(value, DEVICE_PATH, what) ?? this.fail(`${what} is missing`);
  }

  uuid(value: unknown, what: string): string | undefined {
    return this.matching(value, UUID_LIKE, what);
  }

  fsType(value: unknown, what: string): string | undefined {
    return this.matching(value, FS_TYPE, what);
  }

  lvmName(value: unknown, what: string): string | undefined {
    return this.matching(value, LVM_NAME, what);
  }

  mountPoint(value: unknown, what: string): string | undefined {
    const s = this.text(value, what, 4096);
    if (s === undefined || s === '[SWAP]') return undefined;
    if (!s.startsWith('/')) this.fail(`${what} is not an absolute path: ${show(s)}`);
    return s;
  }
}

function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ------------------------------------------------------------------------------------- sections

/** Sections after `@@rmm:<name>` marker lines; a name may carry a device (`sfdisk:/dev/vda`). */
export function splitSections(output: string, host: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = `\n${output}`.split(/\n@@rmm:([a-z]+(?::[^\s]*)?)\n/);
  for (let i = 1; i < parts.length; i += 2) {
    const name = parts[i]!;
    if (out.has(name)) throw new LayoutError({ host, section: name, problem: 'appears twice' });
    out.set(name, (parts[i + 1] ?? '').trim());
  }
  if (!out.has('end')) throw new LayoutError({ host, section: 'end', problem: 'is missing: the output was cut short or is not from the layout script' });
  return out;
}

// ---------------------------------------------------------------------------------------- lsblk

export interface LsblkRow {
  path: string;
  type: string;
  sizeBytes: number;
  logicalSectorBytes: number;
  readOnly: boolean;
  removable: boolean;
  model?: string;
  fsType?: string;
  fsVersion?: string;
  uuid?: string;
  label?: string;
  partUuid?: string;
  mountPoint?: string;
}

export function parseLsblk(text: string, r: Reader): Map<string, LsblkRow> {
  const data = r.object(r.json(text), 'the report');
  const rows = new Map<string, LsblkRow>();
  for (const [i, item] of r.array(data.blockdevices, 'blockdevices').entries()) {
    const d = r.object(item, `device ${i}`);
    const path = r.path(d.path, `device ${i} path`);
    const at = `${path}:`;
    const row: LsblkRow = {
      path,
      type: r.matching(d.type, /^[a-z0-9_-]{1,16}$/, `${at} type`) ?? r.fail(`${at} type is missing`),
      sizeBytes: r.count(d.size, `${at} size`),
      logicalSectorBytes: r.count(d['log-sec'], `${at} log-sec`),
      readOnly: r.flag(d.ro, `${at} ro`),
      removable: r.flag(d.rm, `${at} rm`),
    };
    const model = r.text(typeof d.model === 'string' ? d.model.trim() : d.model, `${at} model`);
    const fsType = r.fsType(d.fstype, `${at} fstype`);
    const fsVersion = r.text(d.fsver, `${at} fsver`, 32);
    const uuid = r.uuid(d.uuid, `${at} uuid`);
    const label = r.text(d.label, `${at} label`);
    const partUuid = r.uuid(d.partuuid, `${at} partuuid`);
    const mountPoint = r.mountPoint(d.mountpoint, `${at} mountpoint`);
    Object.assign(row, defined({ model, fsType, fsVersion, uuid, label, partUuid, mountPoint }));
    // A logical volume on two physical volumes is listed once under each: the rows are the same device.
    if (!rows.has(path)) rows.set(path, row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------- sfdisk

export interface SfdiskTable {
  label: 'gpt' | 'dos';
  id: string;
  sectorBytes: number;
  firstLba?: number;
  lastLba?: number;
  partitions: Array<{ node: string; start: number; size: number; type: string; uuid?: string; name?: string; bootable?: boolean; attrs?: string }>;
}

const GPT_TYPE = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const DOS_TYPE = /^(0x)?[0-9A-Fa-f]{1,2}$/;

export function parseSfdisk(text: string, r: Reader): SfdiskTable {
  const t = r.object(r.object(r.json(text), 'the report').partitiontable, 'partitiontable');
  const label = t.label === 'gpt' || t.label === 'dos' ? t.label : r.fail(`label is neither gpt nor dos: ${show(t.label)}`);
  const id = label === 'gpt' ? r.matching(t.id, GPT_TYPE, 'the disk GUID') : r.matching(t.id, /^0x[0-9A-Fa-f]{1,8}$/, 'the disk identifier');
  if (id === undefined) r.fail('the table has no id');
  if (t.unit !== undefined && t.unit !== 'sectors') r.fail(`unit is not sectors: ${show(t.unit)}`);
  const sectorBytes = r.count(t.sectorsize ?? 512, 'sectorsize');
  if (![512, 1024, 2048, 4096].includes(sectorBytes)) r.fail(`sectorsize is not a sector size: ${sectorBytes}`);
  const partitions = r.array(t.partitions ?? [], 'partitions').map((item, i) => {
    const p = r.object(item, `partition ${i}`);
    const node = r.path(p.node, `partition ${i} node`);
    const type = label === 'gpt' ? r.matching(p.type, GPT_TYPE, `${node} type`)?.toUpperCase() : r.matching(p.type, DOS_TYPE, `${node} type`)?.toLowerCase().replace(/^0x/, '');
    if (type === undefined) r.fail(`${node} has no type`);
    const uuid = r.uuid(p.uuid, `${node} uuid`);
    const name = r.text(p.name, `${node} name`, 72);
    const bootable = p.bootable === undefined ? undefined : r.flag(p.bootable, `${node} bootable`);
    const attrs = r.matching(p.attrs, /^[A-Za-z0-9:, ]{1,128}$/, `${node} attrs`);
    return { node, start: r.count(p.start, `${node} start`), size: r.count(p.size, `${node} size`), type, ...defined({ uuid: uuid?.toUpperCase(), name, bootable, attrs }) };
  });
  const firstLba = t.firstlba === undefined ? undefined : r.count(t.firstlba, 'firstlba');
  const lastLba = t.lastlba === undefined ? undefined : r.count(t.lastlba, 'lastlba');
  return { label, id: label === 'gpt' ? id.toUpperCase() : id.toLowerCase(), sectorBytes, partitions, ...defined({ firstLba, lastLba }) };
}

// ---------------------------------------------------------------------------------------- blkid

export interface BlkidRow {
  type?: string;
  uuid?: string;
  label?: string;
  version?: string;
}

/** `blkid -o export`: blocks of KEY=value lines, DEVNAME first, values backslash-escaped. */
export function parseBlkid(text: string, r: Reader): Map<string, BlkidRow> {
  const out = new Map<string, BlkidRow>();
  for (const block of text.split(/\n\s*\n/)) {
    if (!block.trim()) continue;
    const kv = new Map<string, string>();
    for (const line of block.trim().split('\n')) {
      const m = /^([A-Z_]{1,32})=(.*)$/.exec(line);
      if (!m) r.fail(`line is not KEY=value: ${show(line)}`);
      kv.set(m[1]!, m[2]!.replace(/\\(.)/g, '$1'));
    }
    const path = r.path(kv.get('DEVNAME'), 'DEVNAME');
    const row = defined({
      type: r.fsType(kv.get('TYPE'), `${path}: TYPE`),
      uuid: r.uuid(kv.get('UUID'), `${path}: UUID`),
      label: r.text(kv.get('LABEL'), `${path}: LABEL`),
      version: r.text(kv.get('VERSION'), `${path}: VERSION`, 32),
    });
    out.set(path, row);
  }
  return out;
}

// -------------------------------------------------------------------------------------- findmnt

/** Used bytes of each mounted block device (the most any of its mounts reports). */
export function parseFindmnt(text: string, r: Reader): Map<string, number> {
  const out = new Map<string, number>();
  if (!text) return out;
  const data = r.object(r.json(text), 'the report');
  for (const [i, item] of r.array(data.filesystems, 'filesystems').entries()) {
    const f = r.object(item, `mount ${i}`);
    if (typeof f.source !== 'string' || !f.source.startsWith('/dev/')) continue;
    const source = r.path(f.source.replace(/\[.*\]$/, ''), `mount ${i} source`);
    if (f.used === null || f.used === undefined) continue;
    const used = r.count(f.used, `${source}: used`);
    out.set(source, Math.max(used, out.get(source) ?? 0));
  }
  return out;
}

// ------------------------------------------------------------------------------------------ LVM

/** The rows of an LVM JSON report (`pvs`, `vgs`, `lvs`): all values are strings. */
export function lvmRows(text: string, r: Reader, kind: 'pv' | 'vg' | 'lv'): Array<Record<string, unknown>> {
  if (!text) return [];
  const data = r.object(r.json(text), 'the report');
  const rows: Array<Record<string, unknown>> = [];
  for (const [i, rep] of r.array(data.report, 'report').entries()) {
    const part = r.object(rep, `report ${i}`);
    for (const [j, row] of r.array(part[kind] ?? [], `report ${i} ${kind}`).entries()) rows.push(r.object(row, `${kind} ${j}`));
  }
  return rows;
}

/** Copies only the defined values, so optional fields stay absent rather than undefined. */
export function defined<T extends Record<string, unknown>>(obj: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
