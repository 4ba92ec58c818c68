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
// replica's one-run keys. The lock lives as long as this process, which ends when rmm lets go or
// its heartbeats stop: a lost rmm host leaves no stale lock, nor a key that still logs in.
const HOLDER = `${RMM_ALIVE}
exec 9>>"$1"
if ! flock -n 9; then cat "$1.owner" 2>/dev/null; exit 75; fi
printf '%s\\n' "$2" > "$1.owner"
echo locked
rmm_alive "$3" && exit 0
f="$(getent passwd "$4" | cut -d: -f6)/.ssh/authorized_keys"
if [ -f "$f" ] && grep -qF -- "$5" "$f" && [ -e "\${f%/*}/.rmm.lock" ]; then
  exec 8>>"\${f%/*}/.rmm.lock"
  flock 8
  grep -vF -- "$5" "$f" > "$f.rmm-tmp" || :
  chown --reference="$f" "$f.rmm-tmp"
  chmod 600 "$f.rmm-tmp"
  mv -f -- "$f.rmm-tmp" "$f"
fi
echo "let go of the lock: no heartbeat from rmm for $3 s" >&2
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
  const stop = keepAlive(proc);
  let released: Promise<unknown> | undefined;
  let lost = false;
  void proc.exit.then(() => (lost = released === undefined));
  return {
    assertHeld: () => {
      if (lost) throw new RmmError('replica.lock_lost', `the lock of replica '${replica}' on ${target.info.host} ended before the sync did (no heartbeat from rmm reached it); nothing was recorded`);
    },
    release: async () => {
      stop();
      released ??= (proc.channel.end(), proc.exit);
      await released;
    },
  };
}
