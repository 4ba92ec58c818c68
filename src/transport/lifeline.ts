/**
 * Wraps a command so that it ends when the caller's stdin closes: rmm keeps the channel's stdin
 * open while it wants the command to run, so a killed rmm or a dropped connection ends it too.
 * Without this, a command under `sudo` (whose use_pty proxies output through a pty) outlives a
 * lost connection and keeps writing to the target.
 */
// sh gives background jobs /dev/null as stdin, so the watcher reads the real stdin through fd 3.
const LIFELINE = `exec 3<&0
"$@" </dev/null 3<&- &
child=$!
( exec >/dev/null 2>&1; cat <&3; kill -TERM "$child" ) &
exec 3<&-
wait "$child"`;

export function withLifeline(argv: readonly string[]): string[] {
  return ['sh', '-c', LIFELINE, 'rmm-lifeline', ...argv];
}
