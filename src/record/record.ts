import { posix } from 'node:path';
import { RmmError } from '../errors.js';
import type { SshSession } from '../transport/index.js';

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
  readonly state: 'in-progress' | 'consistent' | 'inconsistent' | 'failed';
  /** The run that wrote this record. */
  readonly runId: string;
  readonly updatedAt: string;
  /** Set while a sync runs or after it failed: the recovery point being written. */
  readonly pending?: RecoveryPoint;
  /** Consistent recovery points, oldest first; the last one is `current`. */
  readonly points: readonly RecoveryPoint[];
  readonly error?: string;
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
}

export const RECORD_DIR = '.rmm';
export const RECORD_FILE = 'record.json';

export function recordPath(replicaPath: string): string {
  return posix.join(replicaPath, RECORD_DIR, RECORD_FILE);
}

export class RecordError extends RmmError {}

export function parseRecord(text: string, where: string): ReplicaRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RecordError('record.corrupt', `the replica record ${where} is not valid JSON: ${(err as Error).message}`);
  }
  const record = value as Partial<ReplicaRecord>;
  if (record.schemaVersion !== 1 || typeof record.replica !== 'string' || !Array.isArray(record.points)) {
    throw new RecordError('record.unsupported', `the replica record ${where} has an unknown shape (schemaVersion ${String(record.schemaVersion)})`);
  }
  return record as ReplicaRecord;
}

/** Reads the record of a directory replica; undefined when the target holds none. */
export async function readRecord(session: SshSession, replicaPath: string): Promise<ReplicaRecord | undefined> {
  const file = recordPath(replicaPath);
  const res = await session.exec(['cat', '--', file], { sudo: true, allowFailure: true });
  if (res.exitCode !== 0) {
    if (/No such file or directory/.test(res.stderr)) return undefined;
    throw new RecordError('record.unreadable', `cannot read ${file} on ${session.info.host}: ${res.stderr.trim()}`);
  }
  return parseRecord(res.stdout, `${session.info.host}:${file}`);
}

export async function writeRecord(session: SshSession, replicaPath: string, record: ReplicaRecord): Promise<void> {
  await session.exec(['mkdir', '-p', '--', posix.join(replicaPath, RECORD_DIR)], { sudo: true });
  await session.writeFileAtomic(recordPath(replicaPath), `${JSON.stringify(record, null, 2)}\n`, { sudo: true, mode: 0o600 });
}
