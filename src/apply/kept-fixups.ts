import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { RmmError } from '../errors.js';
import { MAX_CONFIG_FILE_BYTES } from '../fixup/catalog.js';
import type { PlannedFixupFile, PlannedUnit } from '../plan/action.js';
import type { SnapshotView } from '../snapshot/take.js';
import type { RemoteHost } from '../transport/index.js';

/**
 * A later sync onto disks writes over a replica that boots. The files the fixups adapt (network
 * configuration, fstab, hostname) are kept out of its copy and written once every filesystem has
 * arrived, each replaced by rename: a sync that stops halfway leaves the replica with its adapted
 * files, never with the origin's (its addresses, its NIC names, its disk names).
 */

/** The unit whose filesystem holds `path`: the deepest mount point above it. */
export function unitHolding(path: string, units: readonly PlannedUnit[]): PlannedUnit | undefined {
  const inside = (mp: string) => mp === '/' || path === mp || path.startsWith(`${mp}/`);
  return units.filter((u) => inside(u.fs.mountPoint)).sort((a, b) => b.fs.mountPoint.length - a.fs.mountPoint.length)[0];
}

/** The fixup files a unit holds that get new text (a move alone has no text to write: it is copied). */
export function rewrittenIn(unit: PlannedUnit, units: readonly PlannedUnit[], files: readonly PlannedFixupFile[]): PlannedFixupFile[] {
  return files.filter((f) => f.text !== undefined && unitHolding(f.path, units) === unit);
}

/** Where a fixup leaves its file in the copy. */
export function adaptedPath(file: PlannedFixupFile): string {
  return file.renamedTo ?? file.path;
}

/**
 * The origin's text of each file, read from the held view, checked against the plan's sha256: a
 * file the origin changed since the plan fails the sync as its fixup would (plan again).
 */
export async function readOriginTexts(origin: RemoteHost, view: SnapshotView, unit: PlannedUnit, files: readonly PlannedFixupFile[]): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const file of files) {
    const inView = posix.join(view.sourcePath, posix.relative(unit.fs.mountPoint, file.path));
    const res = await origin.exec(['head', '-c', String(MAX_CONFIG_FILE_BYTES + 1), '--', inView], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
    const sha = createHash('sha256').update(Buffer.from(res.stdout, 'utf8')).digest('hex');
    if (res.exitCode !== 0 || sha !== file.before) {
      throw new RmmError('fixup.changed', `${origin.info.host}: ${file.path} is not the text the plan read (the origin changed it after the plan; plan again to see its new diff)`);
    }
    texts.set(file.path, res.stdout);
  }
  return texts;
}

/** The paths, from the origin's root, that keep these files out of a copy (not sent, not deleted): each file where it is and where its fixup moves it. */
export function keptPaths(files: readonly PlannedFixupFile[]): string[] {
  return [...new Set(files.flatMap((f) => [f.path, ...(f.renamedTo ? [f.renamedTo] : [])]))];
}
