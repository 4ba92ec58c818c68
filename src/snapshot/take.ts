import { posix } from 'node:path';
import { keepAlive, RMM_ALIVE, seconds, type RemoteHost, type RemoteProcess } from '../transport/index.js';
import { SnapshotError } from './errors.js';
import type { CopyUnit } from './select.js';

/** A point-in-time view of one filesystem, and how to let it go. */
export interface SnapshotView {
  readonly unit: CopyUnit;
  /** Where rsync reads from on the origin. */
  readonly sourcePath: string;
  readonly pointInTime: boolean;
  release(): Promise<void>;
  /** Throws when the view stopped being the point in time it was taken as (an LVM snapshot that overflowed). */
  assertIntact?(): Promise<void>;
}

// '.' cannot appear in replica names, so one replica's prefix never matches another's snapshots.
export const SNAPSHOT_PREFIX = '.rmm-snap.';

/** How long what rmm holds on the origin outlives rmm, and how long a freeze may last at most. */
export interface HoldLimits {
  readonly heartbeatTimeoutMs: number;
  readonly maxFreezeMs: number;
}

export function snapshotName(replica: string, runId: string): string {
  return `${SNAPSHOT_PREFIX}${replica}.${runId}`;
}

export async function takeSnapshot(session: RemoteHost, unit: CopyUnit, replica: string, runId: string, limits: HoldLimits): Promise<SnapshotView> {
  const mount = unit.fs.mountPoint;
  switch (unit.provider) {
    case 'btrfs': {
      const snap = posix.join(mount, snapshotName(replica, runId));
      await session.exec(['btrfs', 'subvolume', 'snapshot', '-r', mount, snap], { sudo: true, timeoutMs: 120_000 });
      return {
        unit,
        sourcePath: snap,
        pointInTime: true,
        release: async () => {
          await session.exec(['btrfs', 'subvolume', 'delete', snap], { sudo: true, timeoutMs: 300_000 });
        },
      };
    }
    case 'fsfreeze':
      return freeze(session, unit, limits, unit.nestedMounts.length > 0 ? posix.join(LVM_MOUNT_BASE, `${replica}.${runId}`, `rmm-freeze${mount.replace(/[^A-Za-z0-9]/g, '_')}`) : '');
    case 'none':
      return { unit, sourcePath: mount, pointInTime: false, release: async () => {} };
    case 'lvm':
      return lvmSnapshot(session, unit, replica, runId);
  }
}

/** Where LVM snapshots are mounted on the origin: /run is never copied (it is not a local filesystem). */
export const LVM_MOUNT_BASE = '/run/.rmm-snap';

// $1 vg/lv, $2 snapshot LV name, $3 size in bytes, $4 mount dir, $5 mount options.
// lvcreate freezes the filesystem while it takes the snapshot, so the copy is clean.
const LVM_TAKE = `set -e
lvcreate --quiet --snapshot --name "$2" --size "$3"b "$1" >/dev/null
mkdir -p "$4"
if ! mount -o "$5" "/dev/\${1%%/*}/$2" "$4"; then lvremove --quiet -f "\${1%%/*}/$2" >/dev/null; exit 1; fi`;

// $1 vg, $2 snapshot LV name, $3 mount dir.
const LVM_RELEASE = `umount "$3" 2>/dev/null || ! mountpoint -q "$3"
rmdir "$3" 2>/dev/null || :
if lvs "$1/$2" >/dev/null 2>&1; then lvremove --quiet -f "$1/$2" >/dev/null; fi`;

async function lvmSnapshot(session: RemoteHost, unit: CopyUnit, replica: string, runId: string): Promise<SnapshotView> {
  const [vg] = unit.fs.lvmName!.split('/') as [string];
  const name = lvmSnapshotName(replica, runId, unit.fs.lvmName!);
  const dir = posix.join(LVM_MOUNT_BASE, `${replica}.${runId}`, name);
  // The snapshot holds the blocks that change while it lives: minFreePercent of the LV, as the plan checked.
  const size = Math.max(64 * 1024 * 1024, Math.ceil((unit.fs.sizeBytes * unit.snapshotPercent) / 100 / 512) * 512);
  // XFS refuses a second mount of the same UUID; ext4 replays nothing on a frozen, clean snapshot.
  const options = unit.fs.fsType === 'xfs' ? 'ro,nouuid' : 'ro';
  await session.exec(['sh', '-c', LVM_TAKE, 'rmm-lvm', unit.fs.lvmName!, name, String(size), dir, options], { sudo: true, timeoutMs: 300_000 });
  return {
    unit,
    sourcePath: dir,
    pointInTime: true,
    release: async () => {
      await session.exec(['sh', '-c', LVM_RELEASE, 'rmm-lvm-release', vg, name, dir], { sudo: true, timeoutMs: 300_000 });
    },
    assertIntact: async () => {
      // lv_attr's fifth letter is I for a snapshot that overflowed: LVM dropped it, reads fail with EIO.
      const res = await session.exec(['lvs', '--noheadings', '-o', 'lv_attr,snap_percent', `${vg}/${name}`], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
      const [attr = '', percent = ''] = res.stdout.trim().split(/\s+/);
      // Only what lvs says for sure: a busy LVM lock or a vanished volume is not an overflow.
      if (res.exitCode !== 0 || (attr[4] !== 'I' && !percent.startsWith('100'))) return;
      throw new SnapshotError(
        'snapshot.overflowed',
        `${session.info.host}: the LVM snapshot of ${unit.fs.mountPoint} overflowed during its copy (its ${size} bytes of room filled with the origin's writes), so the copy is not a point in time; raise policy snapshot.minFreePercent or sync at a quieter time`,
      );
    },
  };
}

/** LV names allow [A-Za-z0-9+_.-]; the origin LV's name keeps snapshots of two LVs apart. */
export function lvmSnapshotName(replica: string, runId: string, lvmName: string): string {
  return `rmm-snap.${replica}.${runId}.${lvmName.split('/')[1]}`;
}

// $1 mount point, $2 heartbeat timeout, $3 the longest freeze (seconds), $4 '' or where to bind-mount
// the filesystem alone first: the view to copy from when other filesystems are mounted inside it,
// whose mount points then show as the plain folders they are (the live path shows the mounted
// filesystems' roots there, /proc's or /sys's, which tar finds changing as it reads them). Thaws when
// rmm lets go, when its heartbeats stop or its connection ends, at the limit, or when it is
// signalled (an interrupted run ends the processes its step started: the trap runs once fsfreeze
// returns); says which on stderr and in its exit code.
const FREEZE_HOLDER = `${RMM_ALIVE}
# Lazily: a walk of the view that outlives its copy must not keep the bind for good.
unbind() { [ -z "$4" ] || { umount -l "$4" 2>/dev/null; rmdir "$4" 2>/dev/null; }; }
trap 'fsfreeze --unfreeze "$1" 2>/dev/null; unbind; echo "thawed $1: the holder was signalled" >&2; exit 6' TERM INT HUP
if [ -n "$4" ]; then mkdir -p "$4" && mount --bind "$1" "$4" || exit 3; fi
fsfreeze --freeze "$1" || { unbind; exit 3; }
echo frozen
rmm_alive "$2" "$3"; why=$?
fsfreeze --unfreeze "$1"
unbind
case $why in
1) echo "thawed $1: no heartbeat from rmm for $2 s" >&2; exit 4 ;;
2) echo "thawed $1: frozen for the longest allowed ($3 s, policy snapshot.maxFreeze)" >&2; exit 5 ;;
3) echo "thawed $1: rmm's connection ended" >&2; exit 7 ;;
esac`;

async function freeze(session: RemoteHost, unit: CopyUnit, limits: HoldLimits, bindView: string): Promise<SnapshotView> {
  const mount = unit.fs.mountPoint;
  const argv = ['sh', '-c', FREEZE_HOLDER, 'rmm-freeze', mount, seconds(limits.heartbeatTimeoutMs), seconds(limits.maxFreezeMs), bindView];
  const holder: RemoteProcess = await session.spawn(argv, { sudo: true });
  const ready = await new Promise<boolean>((resolve) => {
    let seen = '';
    holder.channel.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.includes('frozen')) resolve(true);
    });
    void holder.exit.then(() => resolve(false));
  });
  if (!ready) {
    const status = await holder.exit;
    throw new SnapshotError('snapshot.freeze_failed', `${session.info.host}: cannot freeze ${mount}: ${status.stderr.trim() || `exit ${status.exitCode}`}`);
  }
  const alive = keepAlive(holder);
  let released = false;
  return {
    unit,
    sourcePath: bindView || mount,
    pointInTime: true,
    release: async () => {
      if (released) return;
      released = true;
      alive.release();
      const status = await holder.exit;
      // It thawed before rmm let go, so what was copied after that is not the frozen point in time.
      if ([4, 5, 6, 7].includes(status.exitCode ?? -1)) {
        throw new SnapshotError('snapshot.freeze_ended', `${session.info.host}: the freeze of ${mount} ended before its copy did (${status.stderr.trim()}); the copy is not a point in time`);
      }
      await holder.wait();
    },
  };
}

// $1 the replica's LVM snapshot name prefix, $2 its mount base. Unmounts and removes every leftover.
const LVM_CLEAN = `for m in "$2".*/*; do [ -d "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; rmdir "$m"; }; done
rmdir "$2".* 2>/dev/null
command -v lvs >/dev/null || exit 0
lvs --noheadings -o vg_name,lv_name 2>/dev/null | while read -r vg lv; do
  case "$lv" in "$1"*) lvremove --quiet -f "$vg/$lv" >/dev/null && echo "$vg/$lv";; esac
done`;

/** Removes snapshots (btrfs subvolumes, LVM volumes) that a killed run of this replica left behind; returns their names. */
export async function cleanLeftoverSnapshots(session: RemoteHost, mounts: readonly string[], replica: string): Promise<string[]> {
  const removed: string[] = [];
  const lvm = await session.exec(['sh', '-c', LVM_CLEAN, 'rmm-lvm-clean', `rmm-snap.${replica}.`, posix.join(LVM_MOUNT_BASE, replica)], { sudo: true, allowFailure: true });
  removed.push(...lvm.stdout.split('\n').filter(Boolean));
  for (const mount of mounts) {
    // Only subvolumes (inode 256): a user's folder of that name is the origin's, not a leftover.
    const res = await session.exec(['find', mount, '-mindepth', '1', '-maxdepth', '1', '-name', `${SNAPSHOT_PREFIX}${replica}.*`, '-type', 'd', '-inum', '256'], {
      sudo: true,
      allowFailure: true,
    });
    for (const path of res.stdout.split('\n').filter(Boolean)) {
      await session.exec(['btrfs', 'subvolume', 'delete', path], { sudo: true });
      removed.push(path);
    }
  }
  return removed;
}
