import type { RemoteProcess } from './host.js';

/** How often rmm tells a holder on a host (a freeze, a lock) that it is still there. */
export const HEARTBEAT_MS = 5_000;

/** What rmm sends a holder to let go of it, before EOF: EOF alone means rmm's connection ended. */
export const RELEASE = 'R';

/**
 * Shell function for holders: `rmm_alive TIMEOUT [SECONDS [FILE]]` (FILE's time is set at each
 * heartbeat, so others can tell a live holder from a stuck one) returns when rmm lets go (it sends R:
 * 0), when no heartbeat came for TIMEOUT seconds (rmm, its host or the network is gone: 1), after
 * SECONDS in all (2), or at EOF without R (rmm died or was killed, its connection closed: 3). TCP
 * alone cannot tell the second case: a connection whose peer vanished stays open on the host until
 * keepalives give up, for hours with sshd's defaults.
 */
export const RMM_ALIVE = `rmm_alive() {
  end=
  [ -z "$2" ] || end=$(( $(date +%s) + $2 ))
  while :; do
    t=$1
    if [ -n "$end" ]; then
      now=$(date +%s)
      [ "$now" -lt "$end" ] || return 2
      [ $((end - now)) -ge "$t" ] || t=$((end - now))
    fi
    # A wait cut short by the deadline that ends without a byte is the deadline, not a lost rmm.
    b=$(timeout "$t" head -c 1 2>/dev/null) || { [ "$t" -lt "$1" ] && return 2; return 1; }
    [ -n "$b" ] || return 3
    [ "$b" != R ] || return 0
    [ -z "$3" ] || touch -c -- "$3" 2>/dev/null
  done
}`;

/** Sends a heartbeat to a holder every HEARTBEAT_MS; `release()` lets go of it (R, then EOF). */
export function keepAlive(proc: RemoteProcess): { release(): void } {
  const timer = setInterval(() => {
    if (!proc.channel.writableEnded && !proc.channel.destroyed) proc.channel.write('.');
  }, HEARTBEAT_MS);
  timer.unref();
  return {
    release: () => {
      clearInterval(timer);
      if (!proc.channel.writableEnded && !proc.channel.destroyed) proc.channel.end(RELEASE);
    },
  };
}

/** Whole seconds for a holder's `timeout`, never below one. */
export function seconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
