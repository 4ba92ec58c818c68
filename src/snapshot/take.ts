import { posix } from 'node:path';
import type { RemoteProcess, SshSession } from '../transport/index.js';
import { SnapshotError } from './errors.js';
import type { CopyUnit } from './select.js';

/** A point-in-time view of one filesystem, and how to let it go. */
export interface SnapshotView {
  readonly unit: CopyUnit;
  /** Where rsync reads from on the origin. */
  readonly sourcePath: string;
  readonly pointInTime: boolean;
  release(): Promise<void>;
}

// '.' cannot appear in replica names, so one replica's prefix never matches another's snapshots.
export const SNAPSHOT_PREFIX = '.rmm-snap.';

/** A fsfreeze longer than this is surely a lost rmm; the holder thaws by itself. */
const MAX_FREEZE_SECONDS = 6 * 3600;

export function snapshotName(replica: string, runId: string): string {
  return `${SNAPSHOT_PREFIX}${replica}.${runId}`;
}

export async function takeSnapshot(session: SshSession, unit: CopyUnit, replica: string, runId: string): Promise<SnapshotView> {
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
      return freeze(session, unit);
    case 'none':
      return { unit, sourcePath: mount, pointInTime: false, release: async () => {} };
    case 'lvm':
      throw new SnapshotError('snapshot.unsupported', `LVM snapshots are not implemented yet (${mount} on ${unit.fs.lvmName ?? unit.fs.source}); use provider fsfreeze or none for now`);
  }
}

// $1 mount point, $2 time limit. Thaws when rmm closes stdin: at the end, or when rmm or its connection dies.
const FREEZE_HOLDER = `fsfreeze --freeze "$1" || exit 3
echo frozen
timeout "$2" cat >/dev/null
fsfreeze --unfreeze "$1"`;

async function freeze(session: SshSession, unit: CopyUnit): Promise<SnapshotView> {
  const mount = unit.fs.mountPoint;
  const holder: RemoteProcess = await session.spawn(['sh', '-c', FREEZE_HOLDER, 'rmm-freeze', mount, String(MAX_FREEZE_SECONDS)], { sudo: true });
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
  return {
    unit,
    sourcePath: mount,
    pointInTime: true,
    release: async () => {
      holder.channel.end();
      await holder.wait();
    },
  };
}

/** Removes snapshots that a killed run of this replica left behind; returns their paths. */
export async function cleanLeftoverSnapshots(session: SshSession, mounts: readonly string[], replica: string): Promise<string[]> {
  const removed: string[] = [];
  for (const mount of mounts) {
    const res = await session.exec(['find', mount, '-mindepth', '1', '-maxdepth', '1', '-name', `${SNAPSHOT_PREFIX}${replica}.*`], {
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
