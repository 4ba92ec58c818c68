import { posix } from 'node:path';

const PARTIAL = '.partial';

/** Where a directory replica keeps its recovery points, `current`, record and lock on its landing host. */
export function replicaLayout(path: string) {
  return {
    points: posix.join(path, 'points'),
    point: (id: string) => posix.join(path, 'points', id),
    partial: posix.join(path, 'points', PARTIAL),
    current: posix.join(path, 'current'),
    lock: posix.join(path, '.rmm', 'lock'),
    /** Data recorded with a point beside its tree (file attributes), and with the copy being written. */
    pointData: (id: string) => posix.join(path, '.rmm', 'points', id),
    partialData: posix.join(path, '.rmm', 'points', PARTIAL),
    /** Pruned points and copies no longer needed, removed after the run (src/target/directory/driver.ts AFTER_RUN). */
    trash: posix.join(path, '.rmm', 'trash'),
    /** Hard links to every file of a point, made after the run for the next sync's copy to start from: `spare.ID` once whole. */
    spare: posix.join(path, '.rmm', 'spare'),
    /** The copy's files made as reflinks of the last point's to be written in place: a copy an interrupted run left drops them. */
    inPlace: posix.join(path, '.rmm', 'partial-in-place'),
  };
}

export type ReplicaLayout = ReturnType<typeof replicaLayout>;
