import { posix } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { fieldPath } from '../config/diagnostics.js';
import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';
import { validateRecord } from './schema-validator.js';

/**
 * What a target holds, written on the target itself so that the next run observes the world
 * instead of trusting a local cache. `consistent` is set only after everything succeeded.
 */
export interface ReplicaRecord {
  readonly schemaVersion: 1;
  readonly replica: string;
  readonly origin: { readonly name: string; readonly hostname: string; readonly machineId: string };
  /** The spec hash (generation) of the last sync that started. */
  readonly specHash: string;
  /** `inconsistent`: the last copy finished but was taken live (snapshot provider none). */
  readonly state: 'in-progress' | 'consistent' | 'inconsistent' | 'failed' | 'interrupted';
  /** The run that wrote this record. */
  readonly runId: string;
  readonly updatedAt: string;
  /** Set while a sync runs or after it failed: the recovery point being written. */
  readonly pending?: RecoveryPoint;
  /** Consistent recovery points, oldest first; the last one is `current`. */
  readonly points: readonly RecoveryPoint[];
  /** Points retention dropped from `points`, whose folders are removed after the record is written. */
  readonly pruning?: readonly string[];
  readonly error?: string;
  /** Set when `rmm repair` made this record again from the points on the target. */
  readonly rebuiltAt?: string;
}

export interface RecoveryPoint {
  readonly id: string;
  readonly specHash: string;
  readonly startedAt: string;
  readonly finishedAt?: string;
  /** How the point-in-time view was taken, per filesystem (`/: btrfs`, `/srv/data: fsfreeze`). */
  readonly snapshots: Readonly<Record<string, string>>;
  /** False when some filesystem was copied live (provider none): usable, but not point-in-time. */
  readonly pointInTime: boolean;
  readonly stats?: { readonly files: number; readonly filesTransferred: number; readonly bytesTotal: number; readonly bytesSent: number; readonly bytesReceived: number };
  /** Per filesystem, the hash of the copied view's manifest (src/sync/manifest.ts); absent for live copies. */
  readonly manifests?: Readonly<Record<string, string>>;
  /** The last time a sync found the origin unchanged since this point, instead of copying a new one. */
  readonly verifiedAt?: string;
  /**
   * The fixups made on this copy: the spec's fixup settings' hash, and the files rewritten (renamed as
   * `from -> to`). `rewriting`: a re-run of the fixups with other settings started on this point and
   * has not finished (its files may be half rewritten; the next plan re-runs it).
   */
  readonly fixups?: { readonly hash: string; readonly files: readonly string[]; readonly rewriting?: { readonly hash: string; readonly files: readonly string[] } };
}

/** A record's fixup entry: `path`, or `from -> to` when the fixups also renamed the file (always within its folder). */
export function parseFixupEntry(entry: string): { path: string; renamedTo?: string } {
  const at = entry.indexOf(' -> ');
  if (at < 0) return { path: entry };
  const path = entry.slice(0, at);
  const renamedTo = entry.slice(at + 4);
  // A name that merely holds ' -> ' is a path: the fixups rename only inside a folder.
  if (!renamedTo.startsWith('/') || posix.dirname(path) !== posix.dirname(renamedTo)) return { path: entry };
  return { path, renamedTo };
}

/** How a record names a file its fixups changed: its path, or `from -> to` when they also renamed it. */
export function fixupEntry(path: string, renamedTo: string | undefined): string {
  return renamedTo === undefined ? path : `${path} -> ${renamedTo}`;
}

export const RECORD_DIR = '.rmm';
export const RECORD_FILE = 'record.json';
export const POINTS_DIR = 'points';
/** The schemaVersion this rmm reads and writes (schemas/record.schema.json). */
export const RECORD_SCHEMA_VERSION = 1;
/** The ids rmm gives recovery points: the UTC second their sync started, `20261124T113000Z`. */
export const POINT_ID = /^[0-9]{8}T[0-9]{6}Z$/;

/** What the schema's patterns mean, for messages; a test checks that every pattern has one. */
export const PATTERN_MEANINGS: Readonly<Record<string, string>> = {
  '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$': 'a name (a DNS label)',
  [POINT_ID.source]: 'a recovery point id',
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{3})?Z$': 'a UTC time such as 2026-11-24T11:30:00.000Z',
  '^/': 'an absolute path',
  '^[0-9a-f]{64}$': 'a SHA-256 digest in hex',
  '^[0-9a-f]{16}$': 'a settings hash (16 hex digits)',
};

/** Compiled ahead of time from schemas/record.schema.json (scripts/gen-validators.mjs; a test checks it matches). */
const validate = validateRecord as unknown as ValidateFunction<ReplicaRecord>;

export function recordPath(replicaPath: string): string {
  return posix.join(replicaPath, RECORD_DIR, RECORD_FILE);
}

/**
 * The folder of a recovery point, for the commands that remove or promote it. The id comes from a
 * file on the target, so it is refused unless the folder is a point's, directly under points/.
 */
export function pointDir(replicaPath: string, id: string): string {
  const points = posix.join(replicaPath, POINTS_DIR);
  // posix.join normalizes: `.`, `..` and `//` are resolved here, before the check, not later by the target.
  const dir = posix.join(points, id);
  if (!POINT_ID.test(id) || posix.dirname(dir) !== points) {
    throw new RecordError('record.damaged', `recovery point id ${show(id)} does not name a point's folder in ${points}/`);
  }
  return dir;
}

/**
 * Codes: `record.damaged` (not JSON, not the schema's shape, or contradicting itself), `record.newer`
 * (a higher schemaVersion), `record.unreadable` (the target would not give it).
 */
export class RecordError extends RmmError {}

/** Checks a record read from a target, which is untrusted input: retention removes folders named by it. */
export function parseRecord(text: string, where: string): ReplicaRecord {
  const damaged = (problem: string) => new RecordError('record.damaged', `the replica record ${where} is damaged: ${problem}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8 quotes the text around the fault, which may hold terminal escapes.
    throw damaged(`it is not valid JSON: ${escapeControls((err as Error).message)}`);
  }
  const version = (value as { schemaVersion?: unknown } | null)?.schemaVersion;
  // Checked before the shape: a newer rmm may have changed anything else.
  if (typeof version === 'number' && Number.isInteger(version) && version > RECORD_SCHEMA_VERSION) {
    throw new RecordError('record.newer', `the replica record ${where} was written by a newer rmm: record schema version ${version}, this rmm reads ${RECORD_SCHEMA_VERSION}`);
  }
  if (!validate(value)) throw damaged(describe(validate.errors![0]!, value));
  const inconsistency = contradiction(value);
  if (inconsistency) throw damaged(inconsistency);
  return value;
}

/** What the schema cannot say: times that exist, unique ids, points oldest first. */
function contradiction(record: ReplicaRecord): string | undefined {
  const named: [string, RecoveryPoint][] = record.points.map((p, i) => [`points[${i}]`, p]);
  if (record.pending) named.push(['pending', record.pending]);
  const times: [string, string | undefined][] = [['updatedAt', record.updatedAt]];
  for (const [at, p] of named) times.push([`${at}.startedAt`, p.startedAt], [`${at}.finishedAt`, p.finishedAt], [`${at}.verifiedAt`, p.verifiedAt]);
  for (const [field, time] of times) {
    if (time !== undefined && !isRealTime(time)) return `${field} ${show(time)} is not a time that exists`;
  }
  for (const [i, p] of record.points.entries()) {
    const first = record.points.findIndex((q) => q.id === p.id);
    if (first < i) return `points[${i}].id ${show(p.id)} is also the id of points[${first}]`;
    const before = record.points[i - 1];
    if (before && Date.parse(p.startedAt) < Date.parse(before.startedAt)) return `points[${i}] started before points[${i - 1}], but points are kept oldest first`;
  }
  const pending = record.pending;
  const kept = pending ? record.points.findIndex((p) => p.id === pending.id) : -1;
  if (kept >= 0) return `pending.id ${show(pending!.id)} is the id of points[${kept}], a kept point`;
  return undefined;
}

/** Date.parse accepts 2026-02-30 as March 2nd: the time must come back as written. */
function isRealTime(time: string): boolean {
  const ms = Date.parse(time);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === time.slice(0, 19);
}

/** The first problem ajv found, in plain words. */
function describe(err: ErrorObject, record: unknown): string {
  const path = err.instancePath === '' ? [] : err.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const at = (...more: string[]) => fieldPath([...path, ...more].map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s)));
  const field = at() || 'the record';
  const value = path.reduce<unknown>((v, key) => (v as Record<string, unknown>)[key], record);
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'required':
      return `${at(String(params.missingProperty))} is missing`;
    case 'additionalProperties':
      return `${field} has an unknown field ${show(params.additionalProperty)}`;
    case 'type':
      return `${field} is ${kindOf(value)}, not ${/^[aeiou]/.test(String(params.type)) ? 'an' : 'a'} ${String(params.type)}`;
    case 'const':
      return `${field} ${show(value)} is not ${show(params.allowedValue)}`;
    case 'enum':
      return `${field} ${show(value)} is not one of ${(params.allowedValues as unknown[]).map(show).join(', ')}`;
    case 'pattern': {
      const meaning = PATTERN_MEANINGS[String(params.pattern)] ?? `of the form ${String(params.pattern)}`;
      if (err.propertyName !== undefined) return `${field} has a key ${show(err.propertyName)} that is not ${meaning}`;
      return `${field} ${show(value)} is not ${meaning}`;
    }
    case 'minimum':
      return `${field} ${show(value)} is less than ${String(params.limit)}`;
    default:
      return `${field} ${err.message ?? 'is not valid'}`;
  }
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `the ${typeof value} ${show(value)}`;
}

/** A value from the record for a message: JSON, clipped, with no control characters left raw. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return escapeControls(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

function escapeControls(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Reads the record of a directory replica; undefined when the target holds none. */
export async function readRecord(session: RemoteHost, replicaPath: string): Promise<ReplicaRecord | undefined> {
  const file = recordPath(replicaPath);
  const res = await session.exec(['cat', '--', file], { sudo: true, allowFailure: true });
  if (res.exitCode !== 0) {
    if (/No such file or directory/.test(res.stderr)) return undefined;
    throw new RecordError('record.unreadable', `cannot read ${file} on ${session.info.host}: ${res.stderr.trim()}`);
  }
  return parseRecord(res.stdout, `${session.info.host}:${file}`);
}

export async function writeRecord(session: RemoteHost, replicaPath: string, record: ReplicaRecord): Promise<void> {
  await session.exec(['mkdir', '-p', '--', posix.join(replicaPath, RECORD_DIR)], { sudo: true });
  await session.writeFileAtomic(recordPath(replicaPath), `${JSON.stringify(record, null, 2)}\n`, { sudo: true, mode: 0o600 });
}
