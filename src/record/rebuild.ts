import { POINT_ID, RECORD_SCHEMA_VERSION, type RecoveryPoint, type ReplicaRecord } from './record.js';

/** What a directory target holds, as its folders say, whatever its record claims. */
export interface TargetInventory {
  /** Real folders (not symlinks) directly under points/ whose names are point ids. */
  readonly folders: readonly string[];
  /** Where `current` points (`points/ID`), or '' when it is missing. */
  readonly current: string;
  /** The record file's text, when there is one. */
  readonly recordText?: string;
}

export interface RebuiltRecord {
  /** The record to write, or undefined when no folder is a recovery point (the next sync makes a first copy). */
  readonly record?: ReplicaRecord;
  /** The point `current` must name afterwards, when it names another one (or none) today. */
  readonly repointCurrent?: string;
  /** Points newer than the one `current` names: promoted by a sync that never switched to them, left alone. */
  readonly unused: readonly string[];
  /** Folders named like points whose name is no real time, or a time later than now: left alone. */
  readonly ignored: readonly string[];
}

/** How far ahead of this host's clock a point's time may be (the target's clock may run a little ahead). */
const CLOCK_SKEW_MS = 10 * 60_000;

/**
 * A record made again from the recovery points actually on the target, for a record that is damaged.
 * Only the folders are trusted, not the damaged record: each point's time comes from its id (the
 * second its sync started), nothing is claimed about how it was taken (no snapshots, not known to be
 * point-in-time), and no manifest is kept, so the next sync copies (a delta against the newest point)
 * instead of trusting a verification. The spec hash is left empty for the same reason.
 */
export function rebuildRecord(opts: {
  replica: string;
  origin: ReplicaRecord['origin'];
  inventory: TargetInventory;
  now: Date;
  runId: string;
}): RebuiltRecord {
  const { inventory } = opts;
  const shaped = inventory.folders.filter((f) => POINT_ID.test(f)).sort();
  // A folder named 20261399T... or 99991231T... would make every later sync's point id impossible.
  const real = (id: string): boolean => {
    const ms = Date.parse(timeOf(id));
    return !Number.isNaN(ms) && new Date(ms).toISOString() === timeOf(id) && ms <= opts.now.getTime() + CLOCK_SKEW_MS;
  };
  const ids = shaped.filter(real);
  const ignored = shaped.filter((id) => !real(id));
  const named = /^points\/(.+)$/.exec(inventory.current)?.[1];
  const upTo = named !== undefined && ids.includes(named) ? ids.indexOf(named) : ids.length - 1;
  const kept = ids.slice(0, upTo + 1);
  const unused = ids.slice(upTo + 1);
  if (kept.length === 0) return { unused, ignored };
  const points: RecoveryPoint[] = kept.map((id) => ({ id, specHash: '', startedAt: timeOf(id), snapshots: {}, pointInTime: false }));
  const newest = kept[kept.length - 1]!;
  const record: ReplicaRecord = {
    schemaVersion: RECORD_SCHEMA_VERSION,
    replica: opts.replica,
    origin: opts.origin,
    specHash: '',
    state: 'consistent',
    runId: opts.runId,
    updatedAt: opts.now.toISOString(),
    points,
    rebuiltAt: opts.now.toISOString(),
  };
  return { record, ...(named !== newest ? { repointCurrent: newest } : {}), unused, ignored };
}

/** `20261124T113000Z` -> `2026-11-24T11:30:00.000Z`. */
function timeOf(id: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(id)!;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z`;
}

/** The origin a damaged record names, when its text still says so plainly; undefined otherwise. */
export function originOfDamaged(text: string | undefined): ReplicaRecord['origin'] | undefined {
  if (text === undefined) return undefined;
  try {
    const origin = (JSON.parse(text) as { origin?: unknown }).origin as Record<string, unknown> | undefined;
    const ok = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255 && !/[\u0000-\u001f\u007f]/.test(v);
    if (origin && ok(origin.name) && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(origin.name) && ok(origin.hostname) && ok(origin.machineId))
      return { name: origin.name, hostname: origin.hostname, machineId: origin.machineId };
  } catch {
    // not JSON: the origin must be asked
  }
  return undefined;
}
