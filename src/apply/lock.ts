import { RmmError } from '../errors.js';
import { ephemeralMarker } from '../sync/channel.js';
import { keepAlive, RMM_ALIVE, seconds, type RemoteHost } from '../transport/index.js';

export class ReplicaLockedError extends RmmError {
  constructor(readonly facts: { replica: string; host: string; holder: string }) {
    super('replica.locked', `replica '${facts.replica}' is being synced by another run (${facts.holder || 'unknown holder'}) on ${facts.host}; try again when it ends`);
  }
}

export interface ReplicaLock {
  /** Throws when the holder let go before rmm did (no heartbeat reached it): the lock may be another run's now. */
  assertHeld(): void;
  release(): Promise<void>;
}

// $1 lock file, $2 who holds it, $3 heartbeat timeout (s), $4 the login user, $5 the marker of the
// replica's one-run keys. The lock lives as long as this process, which ends when rmm lets go, when
// its heartbeats stop or its connection ends: a lost or killed rmm leaves no stale lock, nor a key
// that still logs in. The key is removed as REVOKE does (src/sync/channel.ts): under the same flock,
// keeping the file's owner and mode, and only when the filtered copy was written whole.
const HOLDER = `${RMM_ALIVE}
exec 9>>"$1"
if ! flock -n 9; then cat "$1.owner" 2>/dev/null; exit 75; fi
printf '%s\\n' "$2" > "$1.owner"
echo locked
rmm_alive "$3" && exit 0
f="$(getent passwd "$4" | cut -d: -f6)/.ssh/authorized_keys"
if [ -f "$f" ] && [ ! -L "$f" ] && grep -qF -- "$5" "$f" && [ -e "\${f%/*}/.rmm.lock" ]; then
  exec 8>>"\${f%/*}/.rmm.lock"
  flock 8
  grep -vF -- "$5" "$f" > "$f.rmm-tmp"
  if [ $? -le 1 ] && chown --reference="$f" "$f.rmm-tmp" && chmod --reference="$f" "$f.rmm-tmp"; then mv -f -- "$f.rmm-tmp" "$f"; else rm -f -- "$f.rmm-tmp"; fi
fi
echo "let go of the lock: rmm is gone (no heartbeat for $3 s, or its connection ended)" >&2
exit 4`;

/** Takes the per-replica lock on the target, so two runs (a CI job and a watch loop) never sync one replica at once. */
export async function lockReplica(target: RemoteHost, lockFile: string, replica: string, holder: string, heartbeatTimeoutMs: number): Promise<ReplicaLock> {
  const dir = lockFile.replace(/\/[^/]+$/, '');
  await target.exec(['mkdir', '-p', '--', dir], { sudo: true });
  const argv = ['sh', '-c', HOLDER, 'rmm-lock', lockFile, holder, seconds(heartbeatTimeoutMs), target.info.user, ephemeralMarker(replica)];
  const proc = await target.spawn(argv, { sudo: true });
  let out = '';
  const locked = await new Promise<boolean>((resolve) => {
    proc.channel.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('locked\n')) resolve(true);
    });
    void proc.exit.then(() => resolve(false));
  });
  if (!locked) throw new ReplicaLockedError({ replica, host: target.info.host, holder: out.trim() });
  const alive = keepAlive(proc);
  let released: Promise<unknown> | undefined;
  let lost = false;
  void proc.exit.then(() => (lost = released === undefined));
  return {
    assertHeld: () => {
      if (lost) throw new RmmError('replica.lock_lost', `the lock of replica '${replica}' on ${target.info.host} ended before the sync did (no heartbeat from rmm reached it); nothing was recorded`);
    },
    release: async () => {
      released ??= (alive.release(), proc.exit);
      await released;
    },
  };
}
