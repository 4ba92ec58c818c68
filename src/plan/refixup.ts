import type { Replica } from '../config/spec.js';
import { fixupInputsOf, fixupsHash } from '../fixup/inputs.js';
import { runFixups, textDigest, unifiedDiff, type TreeFile } from '../fixup/run.js';
import { fixupEntry, parseFixupEntry, type RecoveryPoint, type ReplicaRecord } from '../record/record.js';
import type { PointConfig } from '../target/driver.js';
import type { DiskLayout } from '../observe/layout.js';
import type { LandingVolume } from '../target/disks/volumes.js';
import type { DisksMount, PointFileChange, RefixupPlan } from './action.js';
import { disksPaths } from './disks.js';
import { refixupSteps } from './steps.js';

/**
 * The fixups of the spec re-run on the current point. Pure. The origin's text of each file is the
 * point's original where its fixups kept one, else the point's own file (never changed by a fixup);
 * files the earlier fixups created by a rename are left out of that tree. The answer is the changes
 * that turn what the point holds into what the fixups make of the originals, or why they cannot be
 * planned (then the caller copies again).
 */
export function planRefixup(
  replica: Replica,
  record: ReplicaRecord,
  point: RecoveryPoint,
  seen: PointConfig | undefined,
  landing?: DiskLayout,
  volumes: readonly LandingVolume[] = [],
): RefixupPlan | { unavailable: string } {
  if (seen?.unavailable) return { unavailable: `what its last sync adapted cannot be read: ${seen.unavailable}` };
  if (!seen || seen.point !== point.id) return { unavailable: `the files of recovery point ${point.id} were not read` };
  const target = refixupTarget(replica, seen, landing, volumes);
  if ('unavailable' in target) return target;
  const fixups = point.fixups!;
  const entries = [...fixups.files, ...(fixups.rewriting?.files ?? [])].map(parseFixupEntry);
  const originals = new Map(seen.originals.files.map((f) => [f.path, f.text]));
  const missing = entries.find((e) => !originals.has(e.path));
  if (missing) return { unavailable: `recovery point ${point.id} keeps no original of ${missing.path} (made by an rmm that kept none, or removed)` };
  const refusedOriginal = seen.originals.refused.find((r) => entries.some((e) => e.path === r.path));
  if (refusedOriginal) return { unavailable: `the original of ${refusedOriginal.path} in recovery point ${point.id} cannot be read: ${refusedOriginal.why}` };

  const derived = new Set(entries.flatMap((e) => (e.renamedTo === undefined ? [] : [e.renamedTo])));
  const current = new Map(seen.files.files.map((f) => [f.path, f.text]));
  const origin = new Map<string, string>();
  for (const [path, text] of current) if (!derived.has(path) && !originals.has(path)) origin.set(path, text);
  for (const [path, text] of originals) origin.set(path, text);

  const tree: TreeFile[] = [...origin].map(([path, text]) => ({ path, text }));
  const wanted = new Map(origin);
  const touched = new Set<string>([...derived, ...originals.keys()]);
  const recorded: string[] = [];
  const left: { path: string; why: string }[] = seen.files.refused.filter((r) => !derived.has(r.path)).map((r) => ({ path: r.path, why: r.why }));
  const renamedFrom = new Map<string, string>();
  const devices = seen.disks ? new Map(Object.entries(seen.disks.devices)) : undefined;
  const inputs = fixupInputsOf(replica, { originHostname: record.origin.hostname, ...(devices ? { devices } : {}) });
  for (const outcome of runFixups(tree, inputs)) {
    if (outcome.status === 'unparsable') {
      left.push({ path: outcome.path, why: `${outcome.problem}${outcome.line !== undefined ? ` (line ${outcome.line})` : ''}` });
      continue;
    }
    if (outcome.status === 'unchanged') continue;
    const text = outcome.status === 'changed' ? outcome.text : origin.get(outcome.path)!;
    const at = outcome.renamedTo ?? outcome.path;
    if (outcome.renamedTo !== undefined) {
      wanted.delete(outcome.path);
      renamedFrom.set(at, outcome.path);
    }
    wanted.set(at, text);
    touched.add(outcome.path).add(at);
    recorded.push(fixupEntry(outcome.path, outcome.renamedTo));
  }

  const writes: PointFileChange[] = [];
  const removals: PointFileChange[] = [];
  for (const path of [...touched].sort()) {
    const have = current.get(path);
    const want = wanted.get(path);
    if (have === want) continue;
    if (have === undefined && seen.files.refused.some((r) => r.path === path)) {
      return { unavailable: `recovery point ${point.id} holds ${path} in a form rmm does not rewrite: ${seen.files.refused.find((r) => r.path === path)!.why}` };
    }
    const source = renamedFrom.get(path) ?? (originals.has(path) && have === undefined ? path : undefined);
    const change: PointFileChange = {
      path,
      before: have === undefined ? 'absent' : textDigest(have),
      ...(want !== undefined ? { text: want } : {}),
      keepOriginal: have !== undefined && !originals.has(path) && !derived.has(path),
      ...(have === undefined && source !== undefined ? { modeFrom: source } : {}),
      diff: changeDiff(path, have, want),
    };
    (want === undefined ? removals : writes).push(change);
  }
  const changes = [...writes, ...removals];
  const hash = fixupsHash(replica);
  return { target, point: point.id, hash, files: recorded, changes, left, steps: refixupSteps(replica, target, point.id, changes, record.runId) };
}

/**
 * Where the re-run writes: a directory replica's point folder, or a disks replica mounted as its last
 * sync mounted it. Those mounts are read back from the landing host: each must be a disk the spec
 * names, a partition of one, or a logical volume whose group lies on them only.
 */
function refixupTarget(replica: Replica, seen: PointConfig, landing: DiskLayout | undefined, volumes: readonly LandingVolume[]): RefixupPlan['target'] | { unavailable: string } {
  const address = replica.target.endpoint.address;
  if (replica.environment.targetKind !== 'disks') return { kind: 'directory', address, path: replica.target.path! };
  if (!seen.disks) return { unavailable: 'the replica keeps no record of how its disks mount' };
  if (!landing) return { unavailable: `the disk layout of landing host ${replica.target.endpoint.name} was not read` };
  // A named logical volume is the loop device it is attached as now (its number may change when the landing host restarts).
  const loops = new Map(volumes.map((v) => [v.path, v.loop]));
  const named = new Set((replica.target.disks ?? []).map((m) => loops.get(m.target) ?? m.target));
  for (const m of seen.disks.mounts) {
    if (!onNamedDisks(m, landing, named)) return { unavailable: `its kept mount of ${m.mountPoint} names ${m.device}, which is not on a landing disk the spec names` };
  }
  return { kind: 'disks', address, mountRoot: disksPaths(replica.name).mountRoot, mounts: seen.disks.mounts };
}

function onNamedDisks(m: DisksMount, landing: DiskLayout, named: ReadonlySet<string>): boolean {
  if (m.volumeGroup !== undefined) {
    const vg = landing.volumeGroups.find((g) => g.name === m.volumeGroup);
    const onNamed = (pv: string) => landing.disks.some((d) => named.has(d.path) && (d.path === pv || d.partitions.some((p) => p.path === pv)));
    return vg !== undefined && vg.pvs.length > 0 && vg.pvs.every(onNamed) && vg.lvs.some((l) => m.device === `/dev/${vg.name}/${l.name}`);
  }
  return landing.disks.some((d) => named.has(d.path) && (d.path === m.device || d.partitions.some((p) => p.path === m.device)));
}

/** A file's diff as git shows it: a file created or removed has /dev/null on the other side. */
function changeDiff(path: string, have: string | undefined, want: string | undefined): string {
  const diff = unifiedDiff(path, path, have ?? '', want ?? '');
  return diff.replace(/^--- .*$/m, () => (have === undefined ? '--- /dev/null' : `--- a${path}`)).replace(/^\+\+\+ .*$/m, () => (want === undefined ? '+++ /dev/null' : `+++ b${path}`));
}
