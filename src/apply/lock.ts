import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';

export class ReplicaLockedError extends RmmError {
  constructor(readonly facts: { replica: string; host: string; holder: string }) {
    super('replica.locked', `replica '${facts.replica}' is being synced by another run (${facts.holder || 'unknown holder'}) on ${facts.host}; try again when it ends`);
  }
}

export interface ReplicaLock {
  release(): Promise<void>;
}

// $1 lock file, $2 who holds it. The lock lives as long as this process: rmm ends it by closing
// stdin, and a lost rmm or connection ends it too, so a lock is never stale.
const HOLDER = `exec 9>>"$1"
if ! flock -n 9; then cat "$1.owner" 2>/dev/null; exit 75; fi
printf '%s\\n' "$2" > "$1.owner"
echo locked
cat >/dev/null`;

/** Takes the per-replica lock on the target, so two runs (a CI job and a watch loop) never sync one replica at once. */
export async function lockReplica(target: RemoteHost, lockFile: string, replica: string, holder: string): Promise<ReplicaLock> {
  const dir = lockFile.replace(/\/[^/]+$/, '');
  await target.exec(['mkdir', '-p', '--', dir], { sudo: true });
  const proc = await target.spawn(['sh', '-c', HOLDER, 'rmm-lock', lockFile, holder], { sudo: true });
  let out = '';
  const locked = await new Promise<boolean>((resolve) => {
    proc.channel.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('locked\n')) resolve(true);
    });
    void proc.exit.then(() => resolve(false));
  });
  if (!locked) throw new ReplicaLockedError({ replica, host: target.info.host, holder: out.trim() });
  let released: Promise<unknown> | undefined;
  return {
    release: async () => {
      released ??= (proc.channel.end(), proc.exit);
      await released;
    },
  };
}
