import { RmmError } from '../errors.js';
import { ephemeralMarker, gateFolderPrefix } from '../sync/channel.js';
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

// Shell function: `rmm_revoke USER MARKER GATE_PREFIX` removes the replica's one-run keys from the
// login user's authorized_keys as REVOKE does (src/sync/channel.ts): under the same flock, keeping the
// file's owner and mode, only when the filtered copy was written whole; then their gate folders.
const REVOKE_KEYS = `rmm_revoke() {
  k="$(getent passwd "$1" | cut -d: -f6)/.ssh/authorized_keys"
  if [ -f "$k" ] && [ ! -L "$k" ] && grep -qF -- "$2" "$k" && [ -e "\${k%/*}/.rmm.lock" ]; then
    (
      exec 8>>"\${k%/*}/.rmm.lock"
      flock 8
      grep -vF -- "$2" "$k" > "$k.rmm-tmp"
      if [ $? -le 1 ] && chown --reference="$k" "$k.rmm-tmp" && chmod --reference="$k" "$k.rmm-tmp"; then mv -f -- "$k.rmm-tmp" "$k"; else rm -f -- "$k.rmm-tmp"; fi
    )
  fi
  rm -rf -- "$3"*
}`;

// $1 lock file, $2 who holds it (also in $1.owner, whose time each heartbeat sets; $1.pid says the
// holder's pid and heartbeat timeout, for rmm unlock), $3 heartbeat timeout (s), $4 the login user, $5 the marker of the
// replica's one-run keys, $6 the prefix of their gate folders (src/sync/gate.ts). The lock lives
// as long as this process, which ends when rmm lets go, when
// its heartbeats stop or its connection ends: a lost or killed rmm leaves no stale lock, nor a key
// that still logs in. The key is removed as REVOKE does (src/sync/channel.ts): under the same flock,
// keeping the file's owner and mode, and only when the filtered copy was written whole.
const HOLDER = `${RMM_ALIVE}
${REVOKE_KEYS}
exec 9>>"$1"
if ! flock -n 9; then cat "$1.owner" 2>/dev/null; exit 75; fi
printf '%s\\n' "$2" > "$1.owner"
printf '%s %s\\n' "$$" "$3" > "$1.pid"
echo locked
rmm_alive "$3" "" "$1.owner" && exit 0
rmm_revoke "$4" "$5" "$6"
echo "let go of the lock: rmm is gone (no heartbeat for $3 s, or its connection ended)" >&2
exit 4`;

/** Takes the per-replica lock on the target, so two runs (a CI job and a watch loop) never sync one replica at once. */
export async function lockReplica(target: RemoteHost, lockFile: string, replica: string, holder: string, heartbeatTimeoutMs: number): Promise<ReplicaLock> {
  const dir = lockFile.replace(/\/[^/]+$/, '');
  await target.exec(['mkdir', '-p', '--', dir], { sudo: true });
  const argv = ['sh', '-c', HOLDER, 'rmm-lock', lockFile, holder, seconds(heartbeatTimeoutMs), target.info.user, ephemeralMarker(replica), gateFolderPrefix(replica)];
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

/** What `rmm unlock` sees of a replica's lock. */
export type LockState =
  | { readonly state: 'free'; readonly lastHolder?: string }
  | {
      readonly state: 'held';
      readonly holder: string;
      /** Seconds since the holder last heard rmm's heartbeat. */
      readonly silentFor: number;
      /** The holder's heartbeat timeout, seconds: silent longer than this (plus a grace) means it is stuck. */
      readonly timeout: number;
      readonly pid: number;
      /** The holder process's state letter (S sleeping, T stopped, ...) from /proc. */
      readonly process: string;
    };

// $1 lock file. Prints `free`, or `held`, then the holder's facts; never waits for the lock.
const INSPECT = `f=$1
if [ ! -e "$f" ] || flock -n "$f" true; then echo free; cat -- "$f.owner" 2>/dev/null; exit 0; fi
echo held
read -r pid timeout < "$f.pid" 2>/dev/null
printf 'pid %s\\n' "$pid"
printf 'timeout %s\\n' "$timeout"
printf 'silent %s\\n' $(( $(date +%s) - $(stat -c %Y -- "$f.owner" 2>/dev/null || echo 0) ))
case "$pid" in ''|*[!0-9]*) ;; *)
  grep -qa rmm-lock "/proc/$pid/cmdline" 2>/dev/null && printf 'process %s\\n' "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)";;
esac
echo @@owner
cat -- "$f.owner" 2>/dev/null`;

/** Reads a replica's lock without taking it. Everything here comes from the target: numbers are checked. */
export async function inspectLock(target: RemoteHost, lockFile: string): Promise<LockState> {
  const res = await target.exec(['sh', '-c', INSPECT, 'rmm-inspect-lock', lockFile], { sudo: true, timeoutMs: 30_000 });
  const [head = '', owner = ''] = res.stdout.split('@@owner\n');
  const lines = head.split('\n');
  if (lines[0] === 'free') {
    const last = lines.slice(1).join('\n').trim();
    return last ? { state: 'free', lastHolder: last } : { state: 'free' };
  }
  const field = (name: string): string => lines.find((l) => l.startsWith(`${name} `))?.slice(name.length + 1) ?? '';
  const number = (name: string): number => (/^[0-9]{1,10}$/.test(field(name)) ? Number(field(name)) : NaN);
  return { state: 'held', holder: owner.trim(), silentFor: number('silent'), timeout: number('timeout'), pid: number('pid'), process: field('process') };
}

/** How long past its timeout a holder may stay silent before it counts as stuck: the holder checks once a heartbeat. */
export const STUCK_GRACE_S = 5;

/** A holder that heard rmm recently is alive: its run is still syncing, and its lock is not to be broken. */
export function isStuck(lock: LockState & { state: 'held' }): boolean {
  return Number.isFinite(lock.silentFor) && Number.isFinite(lock.timeout) && lock.silentFor > lock.timeout + STUCK_GRACE_S;
}

// $1 lock file, $2 the holder's pid as inspected, $3 how long it must have been silent (s), $4 the
// login user, $5 the marker of the replica's one-run keys, $6 the prefix of their gate folders.
// Everything is checked again here, after the operator said yes: the process is this lock's holder
// (the lock file is one of its arguments), the pid file still names it, and it is still silent. It is
// stopped first so it starts no new child, then its children (they inherit the lock's descriptor) and
// itself are killed; once the lock is free, the run's key and gate go, as the holder would have done.
const BREAK = `${REVOKE_KEYS}
f=$1 pid=$2
tr '\\0' '\\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$f" || { echo "process $pid is not the holder of $f" >&2; exit 1; }
read -r named rest < "$f.pid" 2>/dev/null
[ "$named" = "$pid" ] || { echo "the lock's holder changed since it was inspected" >&2; exit 1; }
silent=$(( $(date +%s) - $(stat -c %Y -- "$f.owner" 2>/dev/null || echo 0) ))
[ "$silent" -gt "$3" ] || { echo "the holder heard its rmm $silent s ago: that run is alive" >&2; exit 1; }
kill -STOP "$pid" 2>/dev/null
pkill -KILL -P "$pid" 2>/dev/null
kill -KILL "$pid" 2>/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do
  if flock -n "$f" true; then rmm_revoke "$4" "$5" "$6"; echo free; exit 0; fi
  sleep 1
done
echo "the lock is still held after its holder $pid was killed" >&2; exit 1`;

/** Ends a stuck holder so its lock is free. Only for a holder `isStuck` says so of: rmm unlock checks first. */
export async function breakLock(target: RemoteHost, lockFile: string, replica: string, lock: LockState & { state: 'held' }): Promise<void> {
  if (!Number.isInteger(lock.pid) || lock.pid < 2) throw new RmmError('lock.unknown_holder', `the lock on ${target.info.host} does not say which process holds it; find it with fuser ${lockFile}`);
  const silent = String(lock.timeout + STUCK_GRACE_S);
  const res = await target.exec(['sh', '-c', BREAK, 'rmm-break-lock', lockFile, String(lock.pid), silent, target.info.user, ephemeralMarker(replica), gateFolderPrefix(replica)], { sudo: true, timeoutMs: 60_000, allowFailure: true });
  if (res.exitCode !== 0) throw new RmmError('lock.not_broken', `the lock of replica '${replica}' on ${target.info.host} was not broken: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
}
