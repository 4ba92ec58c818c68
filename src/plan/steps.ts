import type { HookPhase, Replica } from '../config/spec.js';
import { fixupEntry } from '../record/record.js';
import type { DisksPlan, PlannedFixups, PlannedInstall, PlannedStep, PlannedUnit, PointFileChange, RefixupPlan } from './action.js';
import { disksPaths } from './disks.js';

export interface StepFacts {
  readonly replica: Replica;
  readonly units: readonly PlannedUnit[];
  readonly installs: readonly PlannedInstall[];
  readonly basePoint: string | undefined;
  /** The base point is a btrfs subvolume: the copy starts as a snapshot of it. */
  readonly baseIsSnapshot?: boolean;
  readonly mayVerify: boolean;
  readonly prune: { readonly ifCopied: readonly string[]; readonly ifUnchanged: readonly string[] };
  readonly observedRunId: string | undefined;
  readonly restore?: { readonly point: string; readonly current?: string };
  readonly fixups?: PlannedFixups;
}

/**
 * The steps of one sync of a directory replica, in the order apply runs them. The snapshots of
 * every filesystem are taken before any copy (one point in time for all of them) and released
 * right after the last copy, before anything on the target moves. Fixups (a later stage) slot in
 * between `release` and `promote`: they adapt the finished copy before it becomes `current`.
 */
export function directorySyncSteps(f: StepFacts): PlannedStep[] {
  const r = f.replica;
  const target = r.target.endpoint.address;
  const path = r.target.path!;
  const list = stepList(r);
  const { steps, add, hooks } = list;

  add('lock', 'lock', 'target', `take the replica's lock ${target}:${path}/.rmm/lock`, { changes: false });
  add('check', 'check', 'target', `re-read the record: refuse if a run other than ${f.observedRunId ?? '(none)'} wrote it since the plan`, { changes: false });
  if (f.restore) {
    const back = f.restore.current ? `current back on points/${f.restore.current}` : 'current removed (no point is recorded)';
    add('restore', 'restore', 'target', `put back points/${f.restore.point}, made current by a run stopped before it recorded it: it becomes the copy in progress again (points/.partial), ${back}`);
  }
  for (const i of f.installs) add(`install ${i.package} on ${i.on}`, 'install', i.on, `install ${i.package} on the ${i.on} ${i.host} (autoInstallPackages)`);
  add('record-start', 'record-start', 'target', 'record the sync as in progress');
  add('clean', 'clean', 'origin', 'remove snapshots an interrupted run of this replica left, if any');
  hooks('preSnapshot');
  list.snapshots(f.units);
  hooks('postSnapshot');
  if (f.mayVerify) add('compare', 'compare', 'origin', `compare each filesystem's manifest with recovery point ${f.basePoint}: unchanged means the point is verified, not copied again`, { changes: false });
  hooks('preSync', 'changed');
  const via = r.environment.transfer === 'relay' ? ', reached through a reverse tunnel carried by rmm (relay)' : '';
  add('channel', 'channel', 'both', `authorize a one-run key of the origin on the target${via}`, { when: 'changed' });
  for (const u of f.units) add(`copy ${u.fs.mountPoint}`, 'copy', 'both', copyDetail(u, f.basePoint, f.baseIsSnapshot === true, r), { when: 'changed' });
  list.releases(f.units);
  add('revoke', 'revoke', 'both', "remove the one-run key from the target and the run's work files from the origin", { when: 'changed' });
  if (f.fixups) list.fixups(f.fixups);
  add('promote', 'promote', 'target', 'points/.partial becomes the new recovery point, and current points at it', { when: 'changed' });
  hooks('postSync', 'changed');
  const live = f.units.some((u) => u.provider === 'none') ? ' (inconsistent if a filesystem copied live changed while it was copied)' : '';
  add('record', 'record', 'target', `record the new recovery point${f.mayVerify ? `, or recovery point ${f.basePoint} verified,` : ''} as consistent${live}`);
  const prune = [...new Set([...f.prune.ifCopied, ...f.prune.ifUnchanged])];
  if (prune.length > 0) add('prune', 'prune', 'target', pruneDetail(f.prune, r.policy.retention.recoveryPoints));
  add('unlock', 'unlock', 'target', "release the replica's lock", { changes: false });
  return steps;
}

/**
 * The steps of one sync onto landing disks. As a directory sync's, with the disks laid out (only
 * what is not there yet) and mounted before the snapshots, and after the copy and the fixups the
 * bootloader and the initramfs made for the copy, in a chroot, then everything unmounted. There is
 * no promote: the disks are the replica, so nothing stays consistent while they are written.
 */
export function disksSyncSteps(f: StepFacts & { readonly disks: DisksPlan }): PlannedStep[] {
  const r = f.replica;
  const d = f.disks;
  const list = stepList(r);
  const { steps, add, hooks } = list;
  const landing = r.target.endpoint.address;
  add('lock', 'lock', 'target', `take the replica's lock on ${landing}`, { changes: false });
  add('check', 'check', 'target', `re-read the record: refuse if a run other than ${f.observedRunId ?? '(none)'} wrote it since the plan`, { changes: false });
  for (const i of f.installs) add(`install ${i.package} on ${i.on}`, 'install', i.on, `install ${i.package} on the ${i.on} ${i.host} (autoInstallPackages)`);
  const kept = d.keep ? ` (the last point is kept in the landing volumes' snapshots)` : '';
  add('record-start', 'record-start', 'target', `record the sync as in progress: the disks hold no consistent copy until it ends${kept}`);
  if (d.keep) {
    const names = (d.volumes ?? []).map((v) => `${v.vg}/${v.lv}`).join(', ');
    const detail = d.keep.reuse
      ? `keep the snapshots of recovery point ${d.keep.point} that the cut sync took (${names}): a failure merges them back`
      : `snapshot the landing volumes ${names} as recovery point ${d.keep.point} (lvcreate --snapshot): a failure merges them back (lvconvert --merge); dropped again if the origin is unchanged`;
    add('landing-snapshot', 'landing-snapshot', 'target', detail);
  }
  for (const s of d.layout) add(`layout ${s.id}`, 'layout', 'target', s.detail);
  add('mount', 'mount', 'target', `mount ${d.mounts.map((m) => `${m.device} at ${m.mountPoint}`).join(', ')} below ${d.mountRoot}`);
  add('clean', 'clean', 'origin', 'remove snapshots an interrupted run of this replica left, if any');
  hooks('preSnapshot');
  list.snapshots(f.units);
  hooks('postSnapshot');
  if (f.mayVerify) add('compare', 'compare', 'origin', `compare each filesystem's manifest with the last sync's: unchanged means the disks are verified, not written again`, { changes: false });
  hooks('preSync', 'changed');
  const via = r.environment.transfer === 'relay' ? ', reached through a reverse tunnel carried by rmm (relay)' : '';
  add('channel', 'channel', 'both', `authorize a one-run key of the origin on the landing host${via}`, { when: 'changed' });
  for (const u of f.units) {
    const into = `${landing}:${d.mountRoot}${u.relativePath ? `/${u.relativePath}` : ''}`;
    const how = u.method.kind === 'tar' ? 'tar streams into the new filesystem (rsync if it holds files)' : 'rsync, changed files put in place only at the end (--delay-updates); the files the fixups adapt and the boot files rmm makes are kept out, and written after every copy';
    add(`copy ${u.fs.mountPoint}`, 'copy', 'both', `${u.fs.mountPoint} -> ${into} by ${how}`, { when: 'changed' });
  }
  list.releases(f.units);
  add('revoke', 'revoke', 'both', "remove the one-run key from the landing host and the run's work files from the origin", { when: 'changed' });
  if (f.fixups) list.fixups(f.fixups);
  const boot = d.boot.firmware === 'uefi' ? `GRUB for UEFI on the ESP at ${d.boot.efiDirectory} (also at the removable-media path; the landing host's NVRAM untouched)` : `GRUB for BIOS on ${d.boot.disk}`;
  // The initramfs first: GRUB's configuration lists a kernel's initramfs only if it exists.
  add('initramfs', 'initramfs', 'target', `in a chroot of the copy: the initramfs made for every kernel with the drivers other hardware needs (${d.drivers.join(', ')}: those the kernel has), kept when nothing it is made of changed since the last sync`, { when: 'changed' });
  add('bootloader', 'bootloader', 'target', `in a chroot of the copy: ${boot}, its configuration made anew so it finds the root by UUID; then the kernels the origin no longer has removed (the copy never deletes one) and the configuration made again`, { when: 'changed' });
  add('unmount', 'unmount', 'target', `unmount everything below ${d.mountRoot}`);
  hooks('postSync', 'changed');
  const live = f.units.some((u) => u.provider === 'none') ? ' (inconsistent if a filesystem copied live changed while it was copied)' : '';
  add('record', 'record', 'target', `record the disks${f.mayVerify ? ', or their last sync verified,' : ''} as consistent${live}`);
  const prune = [...new Set([...f.prune.ifCopied, ...f.prune.ifUnchanged])];
  if (prune.length > 0) add('prune', 'prune', 'target', `remove the landing volumes' snapshots of ${pruneDetail(f.prune, r.policy.retention.recoveryPoints).replace(/^remove /, '')}`);
  add('unlock', 'unlock', 'target', "release the replica's lock", { changes: false });
  return steps;
}

/** The steps of a rollback: a cut disks sync undone from the landing volumes' snapshots, with the origin out of reach. */
export function rollbackSteps(replica: Replica, point: string, names: readonly string[], mountRoot: string): PlannedStep[] {
  const { steps, add } = stepList(replica);
  add('lock', 'lock', 'target', `take the replica's lock on ${replica.target.endpoint.address}`, { changes: false });
  add('check', 'check', 'target', 're-read the record: refuse if another run wrote it since the plan', { changes: false });
  add('rollback', 'rollback', 'target', `unmount everything below ${mountRoot}, detach the volumes' loop devices, and merge their snapshots of recovery point ${point} back into ${names.join(', ')} (lvconvert --merge)`);
  add('record', 'record', 'target', `record the disks as consistent at recovery point ${point}`);
  add('unlock', 'unlock', 'target', "release the replica's lock", { changes: false });
  return steps;
}

/**
 * The steps of a fixup re-run on recovery point `point`, in place: the record says the point's fixups
 * are being rewritten before any file changes, and names the new ones only after the last.
 */
export function refixupSteps(replica: Replica, target: RefixupPlan['target'], point: string, changes: readonly PointFileChange[], observedRunId: string | undefined): PlannedStep[] {
  const disks = target.kind === 'disks' ? target : undefined;
  const record = disks ? disksPaths(replica.name).record : replica.target.path;
  const where = `${replica.target.endpoint.address}:${record}`;
  const what = changes.length === 0 ? 'no file needs a change' : changes.map((c) => `${c.path}${c.text === undefined ? ' (removed)' : c.before === 'absent' ? ' (created)' : ''}`).join(', ');
  const step = (id: string, kind: PlannedStep['kind'], detail: string, changes = true): PlannedStep => ({ id, kind, on: 'target', detail, when: 'always', changes });
  const originals = disks ? `${record}/.rmm/originals` : `.rmm/points/${point}/originals`;
  return [
    step('lock', 'lock', `take the replica's lock ${where}/.rmm/lock`, false),
    step('check', 'check', `re-read the record: refuse if a run other than ${observedRunId ?? '(none)'} wrote it since the plan`, false),
    step('record-start', 'record-start', `record that the fixups of recovery point ${point} are being rewritten`),
    ...(disks ? [step('mount', 'mount', `mount ${disks.mounts.map((m) => `${m.device} at ${m.mountPoint}`).join(', ')} below ${disks.mountRoot}`)] : []),
    ...[hookStep(replica, 'preFixup', 'always') ?? []].flat(),
    step('fixup', 'fixup', `adapt ${disks ? 'the replica on its disks' : `recovery point ${point}`} to the new fixup settings, in place (the origin's texts are kept in ${originals}): ${what}; nothing is copied`),
    ...[hookStep(replica, 'postFixup', 'always') ?? []].flat(),
    ...(disks ? [step('unmount', 'unmount', `unmount everything below ${disks.mountRoot}`)] : []),
    step('record', 'record', `record recovery point ${point} as adapted to the new fixup settings`),
    step('unlock', 'unlock', "release the replica's lock", false),
  ];
}

/** A list of steps being written: `add` a step, `hooks` a phase's hooks where the replica has any. */
function stepList(r: Replica) {
  const steps: PlannedStep[] = [];
  const add = (id: string, kind: PlannedStep['kind'], on: PlannedStep['on'], detail: string, opts: { when?: PlannedStep['when']; changes?: boolean } = {}): void => {
    steps.push({ id, kind, on, detail, when: opts.when ?? 'always', changes: opts.changes ?? true });
  };
  const hooks = (phase: HookPhase, when: PlannedStep['when'] = 'always'): void => {
    const step = hookStep(r, phase, when);
    if (step) steps.push(step);
  };
  /** Every filesystem's snapshot, freezes last (snapshotOrder). */
  const snapshots = (units: readonly PlannedUnit[]): void => {
    for (const u of snapshotOrder(units)) add(`snapshot ${u.fs.mountPoint}`, 'snapshot', 'origin', snapshotDetail(u));
  };
  /** Every snapshot let go of, thaws first (releaseOrder). */
  const releases = (units: readonly PlannedUnit[]): void => {
    for (const u of releaseOrder(units)) add(`release ${u.fs.mountPoint}`, 'release', 'origin', u.provider === 'none' ? 'nothing to release' : `release the ${u.provider} snapshot of ${u.fs.mountPoint}`);
  };
  /** The fixups of the finished copy, between their hooks. */
  const fixups = (planned: PlannedFixups): void => {
    const what = planned.files.length === 0 ? 'no file needs a change' : planned.files.map((x) => fixupEntry(x.path, x.renamedTo)).join(', ');
    hooks('preFixup', 'changed');
    add('fixup', 'fixup', 'target', `adapt the copy to the target site (fixups): ${what}`, { when: 'changed' });
    hooks('postFixup', 'changed');
  };
  return { steps, add, hooks, snapshots, releases, fixups };
}

/** The step that runs a phase's hooks, where the replica has any. */
function hookStep(r: Replica, phase: HookPhase, when: PlannedStep['when']): PlannedStep | undefined {
  const list = r.hooks[phase];
  if (list.length === 0) return undefined;
  const places = [...new Set(list.map((h) => h.on))];
  const on = places.length === 1 ? places[0]! : 'both';
  const detail = list.map((h) => `${h.script ?? h.command!.join(' ')} on ${h.on === 'local' ? 'the rmm host' : h.on}`).join('; ');
  return { id: `hooks ${phase}`, kind: 'hooks', on, detail, when, changes: true };
}

/**
 * Freezes come last: a frozen filesystem blocks every write to it, and taking an LVM snapshot writes
 * LVM's metadata backup under /etc (a frozen root would hang lvcreate for good), so the other views
 * are taken while nothing is frozen yet.
 */
function snapshotOrder(units: readonly PlannedUnit[]): PlannedUnit[] {
  return [...units.filter((u) => u.provider !== 'fsfreeze'), ...units.filter((u) => u.provider === 'fsfreeze')];
}

/** Thaws first, for the same reason (lvremove writes under /etc), then the rest newest first. */
function releaseOrder(units: readonly PlannedUnit[]): PlannedUnit[] {
  const taken = snapshotOrder(units).reverse();
  return [...taken.filter((u) => u.provider === 'fsfreeze'), ...taken.filter((u) => u.provider !== 'fsfreeze')];
}

function snapshotDetail(u: PlannedUnit): string {
  const mp = u.fs.mountPoint;
  switch (u.provider) {
    case 'btrfs':
      return `read-only btrfs snapshot of ${mp}`;
    case 'lvm':
      return `LVM snapshot of ${u.fs.lvmName} (${u.snapshotPercent}% of its size), mounted read-only`;
    case 'fsfreeze':
      return `freeze ${mp} (fsfreeze) until its copy ends`;
    case 'none':
      return `no snapshot: ${mp} is copied live`;
  }
}

function copyDetail(u: PlannedUnit, base: string | undefined, snapshot: boolean, r: Replica): string {
  const into = `${r.target.endpoint.address}:${r.target.path}/points/.partial${u.relativePath ? `/${u.relativePath}` : ''}`;
  if (u.method.kind === 'tar') return `${u.fs.mountPoint} -> ${into} by ${r.policy.parallelStreams} tar stream(s) (rsync if a killed run left files there)`;
  const start = !base ? '' : snapshot ? `, into a btrfs snapshot of recovery point ${base}` : `, unchanged files hard-linked to recovery point ${base}`;
  return `${u.fs.mountPoint} -> ${into} by rsync${start}${u.method.why ? ` (one stream: ${u.method.why})` : ''}`;
}

function pruneDetail(prune: { ifCopied: readonly string[]; ifUnchanged: readonly string[] }, keep: number): string {
  const list = (ids: readonly string[]) => (ids.length === 0 ? 'none' : ids.join(', '));
  const same = prune.ifCopied.join() === prune.ifUnchanged.join();
  return same ? `remove recovery point(s) ${list(prune.ifCopied)} (retention keeps ${keep})` : `remove recovery point(s) ${list(prune.ifCopied)} after a copy, ${list(prune.ifUnchanged)} after a verification (retention keeps ${keep})`;
}
