import type { Replica } from '../config/spec.js';
import type { ReplicaRecord } from '../record/record.js';
import type { LandingVolume } from '../target/disks/volumes.js';
import type { DisksPlan, PlannedVolume, RollbackPlan } from './action.js';
import { disksPaths } from './disks.js';
import { fmtBytes } from './layout-size.js';
import { rollbackSteps } from './steps.js';

const WRITTEN_OVER =
  'a sync that fails leaves them not consistent (the record says so) until the next sync completes; ' +
  'they still boot, with each filesystem as the last sync or this one left it: a filesystem takes its changes at the end of its copy, the adapted and boot files only after every copy';

/** Whether the disks hold the record's last point: no sync was cut in them since. */
export function disksHoldLastPoint(record: ReplicaRecord | undefined): boolean {
  return record?.state === 'consistent' || record?.state === 'inconsistent';
}

function planned(v: LandingVolume): PlannedVolume {
  return { path: v.path, loop: v.loop, vg: v.vg, lv: v.lv, thin: v.thin };
}

/** Whether the volume has a usable snapshot of recovery point `point`. */
function keeps(v: LandingVolume, point: string): boolean {
  return v.snapshots.some((s) => s.point === point && s.valid);
}

/**
 * What a failed sync leaves on the landing devices, and the snapshot that makes it the last point
 * again. Only logical volumes can be snapshotted, and only all of them together make a point. Pure.
 */
export function landingRecovery(
  targets: readonly string[],
  volumes: readonly LandingVolume[],
  record: ReplicaRecord | undefined,
): { rollback: string; volumes?: PlannedVolume[]; keep?: DisksPlan['keep'] } {
  const byPath = new Map(volumes.map((v) => [v.path, v]));
  if (volumes.length === 0) return { rollback: `the landing disks cannot be snapshotted: ${WRITTEN_OVER}` };
  const chosen = targets.flatMap((t) => {
    const v = byPath.get(t);
    return v ? [planned(v)] : [];
  });
  const plain = targets.filter((t) => !byPath.has(t));
  if (plain.length > 0) return { rollback: `${plain.join(', ')} ${plain.length === 1 ? 'is not a logical volume' : 'are not logical volumes'}, so the landing devices cannot be snapshotted together: ${WRITTEN_OVER}`, volumes: chosen };
  const last = record?.points.at(-1);
  if (!record || !last) return { rollback: `the first sync: the landing volumes hold no recovery point yet to keep, so ${WRITTEN_OVER}`, volumes: chosen };
  const names = chosen.map((v) => `${v.vg}/${v.lv}`).join(', ');
  if (!disksHoldLastPoint(record)) {
    if (!volumes.every((v) => keeps(v, last.id))) return { rollback: `the last sync did not finish and left no usable snapshot of recovery point ${last.id}: ${WRITTEN_OVER}`, volumes: chosen };
    return {
      rollback: `the last sync did not finish: its snapshot of recovery point ${last.id} (${names}) is kept, and a sync that fails again merges it back (lvconvert --merge)`,
      volumes: chosen,
      keep: { point: last.id, reuse: true },
    };
  }
  const short = roomShortfall(volumes);
  if (short) return { rollback: `${short}, so no snapshot is taken: ${WRITTEN_OVER}`, volumes: chosen };
  return {
    rollback: `before anything is written, the landing volumes (${names}) are snapshotted as recovery point ${last.id}: a sync that fails merges them back (lvconvert --merge), and the disks are that point again`,
    volumes: chosen,
    keep: { point: last.id, reuse: false },
  };
}

/**
 * What `lvcreate -s -l 100%ORIGIN` takes: the volume's size and the snapshot's exception table,
 * rounded up to extents (about 0.5% and one extent of 4 MiB seen here; counted generously).
 */
function fullSnapshotBytes(size: number): number {
  return Math.ceil(size * 1.01) + 16 * 1024 * 1024;
}

/** A full snapshot of each thick volume needs its size free in the volume group (it can never overflow then). */
function roomShortfall(volumes: readonly LandingVolume[]): string | undefined {
  const need = new Map<string, { bytes: number; free: number }>();
  for (const v of volumes) {
    if (v.thin) continue;
    const have = need.get(v.vg) ?? { bytes: 0, free: v.vgFreeBytes };
    need.set(v.vg, { bytes: have.bytes + fullSnapshotBytes(v.sizeBytes), free: have.free });
  }
  for (const [vg, { bytes, free }] of need) {
    if (bytes > free) return `volume group ${vg} has ${fmtBytes(free)} free and full snapshots of its landing volumes need ${fmtBytes(bytes)}`;
  }
  return undefined;
}

/**
 * A disks sync that did not finish, with its origin out of reach (the site that is down): the
 * landing volumes can go back to the last point from the snapshots the sync took, with no copy.
 * Undefined when they cannot (not all volumes, or a snapshot missing or overflowed).
 */
export function planRollback(replica: Replica, record: ReplicaRecord | undefined, volumes: readonly LandingVolume[]): RollbackPlan | undefined {
  const last = record?.points.at(-1);
  if (!record || !last || disksHoldLastPoint(record)) return undefined;
  const targets = (replica.target.disks ?? []).map((m) => m.target);
  const found = targets.map((t) => volumes.find((v) => v.path === t));
  if (found.length === 0 || found.some((v) => !v || v.merging || !keeps(v, last.id))) return undefined;
  const chosen = found.map((v) => planned(v!));
  const mountRoot = disksPaths(replica.name).mountRoot;
  return {
    address: replica.target.endpoint.address,
    point: last.id,
    mountRoot,
    volumes: chosen,
    steps: rollbackSteps(replica, last.id, chosen.map((v) => `${v.vg}/${v.lv}`), mountRoot),
  };
}
