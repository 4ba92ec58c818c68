import { RmmError } from '../errors.js';

/**
 * The forced command of the one-run key: the key runs nothing on the target but this run's
 * receiving commands, each the exact line rmm allowed. rmm knows every line it sends over the key
 * (the tar streams' extract commands it builds itself; the rsync server command the origin's rsync
 * client derives, checked here before it is allowed), writes them into a root-owned folder on the
 * target and authorizes the key with `command="/bin/sh FOLDER/gate"`.
 */

/** Where a run's gate lives on the target: /run is root's and goes with a reboot, and with it every key's gate. */
export const GATE_FOLDER_PREFIX = '/run/rmm-gate.';

export function gateFolder(replica: string, runId: string): string {
  return `${GATE_FOLDER_PREFIX}${replica}.${runId}`;
}

/** The `command=` of the key's authorized_keys line: sshd runs it instead of what the client asked for. */
export function forcedCommand(folder: string): string {
  // Inside authorized_keys' double quotes only \" is an escape; a path of these characters needs none.
  if (!/^\/[A-Za-z0-9._/-]+$/.test(folder)) throw new RangeError(`not a gate folder: ${folder}`);
  return `/bin/sh ${folder}/gate`;
}

export class GateError extends RmmError {
  constructor(readonly facts: { command: readonly string[]; reason: string }) {
    super('sync.gate', `the origin's rsync asked the target to run a command the one-run key does not allow (${facts.reason}): ${facts.command.join(' ').slice(0, 300)}`);
  }
}

// $0 this file, beside the allowed lines. sshd puts what the client asked for in SSH_ORIGINAL_COMMAND;
// it runs only when it equals an allowed line byte for byte (no line holds a newline, so one with a
// newline is refused before the comparison), and each line once: its number becomes a folder in
// used/ (mkdir is atomic), so a second session cannot run a copy again over what the first wrote, as
// when it would change the attributes of files linked from older recovery points. rmm allows a line
// again for each copy it starts. The list is read on fd 3: stdin is the copy's data.
export const GATE = `c=\${SSH_ORIGINAL_COMMAND-}
d=\${0%/*}
case $c in
*'
'*) ;;
?*)
  n=0
  while IFS= read -r l <&3; do
    n=$((n + 1))
    [ "x$l" = "x$c" ] && mkdir "$d/used/$n" 2>/dev/null && exec /bin/sh -c "$c" 3<&-
  done 3< "$d/allowed"
  ;;
esac
printf 'rmm: refused: the one-run key of this copy runs only its receiving commands, not: %s\\n' "$c" >&2
exit 1
`;

// $1 the run's gate folder, $2 the gate, $3 the login user. Made by root: the login user reads it and
// marks lines used (used/, its own), only root changes the gate and the list.
export const MAKE_GATE = `set -e
umask 022
rm -rf -- "$1"
mkdir -m 755 -- "$1"
printf '%s' "$2" > "$1/gate"
: > "$1/allowed"
mkdir -m 700 -- "$1/used"
chown -- "$3" "$1/used"`;

// $1 the run's gate folder, then the lines to allow.
export const ALLOW = `f=$1/allowed
shift
[ -f "$f" ] || { echo "rmm: the one-run key's gate is gone: $f" >&2; exit 1; }
printf '%s\\n' "$@" >> "$f"`;

/** Checks lines before they are allowed: a line is compared whole, so none may hold a newline. */
export function checkLines(lines: readonly string[]): void {
  for (const l of lines) if (l === '' || /[\n\r\0]/.test(l)) throw new RangeError(`a command the one-run key allows must be one non-empty line: ${JSON.stringify(l)}`);
}

/**
 * The remote shell rmm gives the origin's rsync to learn the server command it would send: it
 * prints its arguments (`-l USER HOST COMMAND...`) to stderr, NUL-separated, and exits.
 */
export const RSH_PRINTER = `#!/bin/sh
{ printf 'rmm-rsh-args'; printf '\\0%s' "$@"; echo; } >&2
exit 1
`;

/** The remote-shell arguments RSH_PRINTER reported in `stderr`, without `-l USER` and the host. */
export function printedCommand(stderr: string): string[] | undefined {
  const m = /rmm-rsh-args\0([^\n]*)\n/.exec(stderr);
  if (!m) return undefined;
  const args = m[1]!.split('\0');
  if (args[0] === '-l') args.splice(0, 2);
  return args.slice(1);
}

// What rmm's rsync options (src/sync/rsync.ts RSYNC_BASE) give the server: -a's rlptgoD, H, A, X, S
// and --one-file-system's x. None makes the receiver follow a symlink out of its folder (-K would), or
// read instead of write (--sender), or write anywhere else (--log-file, --temp-dir, --backup-dir).
const FLAGS = new Set('rlptgoDHAXSx');
const LISTED_FLAGS = new Set('RI');
const BARE = new Set(['--delete', '--stats', '--numeric-ids', '--mkpath', '--one-file-system']);
/**
 * Bare options allowed only when rmm's own rsync was given them: a disks replica's copy
 * (src/sync/rsync.ts delayUpdates), and --inplace into a copy whose listed files no other point
 * shares (a btrfs snapshot, reflinks: src/apply/delta-copy.ts), never into files linked from older points,
 * and --delete-excluded into such a copy walked in full (src/sync/rsync.ts deleteExcluded).
 */
const BARE_IF_GIVEN = new Set(['--delay-updates', '--delete-delay', '--inplace', '--delete-excluded']);
/** Options with a value, which must be the value rmm itself gave its rsync. */
const VALUED = ['--timeout', '--bwlimit', '--link-dest'];
// One word of the command as rsync (3.2.4 and later) escapes it for the remote shell: characters
// that mean nothing to sh, or any character after a backslash. Nothing is left to expand.
const SHELL_WORD = /^(?:[A-Za-z0-9_@%+=:,./-]|\\[^\n\r\0])+$/;

/**
 * The server command line the origin's rsync reported, once every word is one rmm's own rsync
 * command gives: `RSYNC_PATH --server -FLAGS[e.CAPS] OPTIONS... . DEST`, DEST exactly the copy's
 * folder, each option one of the few rmm's options make, with the value rmm gave it. Returns the
 * line as the target's sshd will see it (ssh joins its arguments with spaces).
 */
export function rsyncServerLine(reported: readonly string[], argv: readonly string[], destination: string): string {
  const refuse = (reason: string): never => {
    throw new GateError({ command: reported, reason });
  };
  const rsyncPath = valueAfter(argv, '--rsync-path') ?? 'rsync';
  const expected = new Map<string, string>();
  for (const a of argv) {
    const m = /^(--[a-z-]+)=(.*)$/s.exec(a);
    if (m && VALUED.includes(m[1]!)) expected.set(m[1]!, m[2]!);
  }
  if (reported.length < 4) refuse('too short');
  if (reported[0] !== rsyncPath) refuse(`it does not start with ${rsyncPath}`);
  if (reported[1] !== '--server') refuse('not an rsync server');
  const words = reported.slice(2);
  for (const w of words) if (!SHELL_WORD.test(w)) refuse(`${JSON.stringify(w)} is not one plain word`);
  const plain = words.map((w) => w.replace(/\\(.)/gs, '$1'));
  if (plain.at(-2) !== '.' || plain.at(-1) !== destination) refuse(`its destination is not ${destination}`);
  const options = plain.slice(0, -2);
  for (let i = 0; i < options.length; i++) {
    const o = options[i]!;
    const cluster = /^-([A-Za-z]+?)(?:e\.([A-Za-z]*))?$/.exec(o);
    if (cluster) {
      // A list of entries brings -R (paths relative to the view, each below the copy's folder) and
      // -I (every listed file compared by its blocks).
      const bad = [...cluster[1]!].filter((f) => !FLAGS.has(f) && !(LISTED_FLAGS.has(f) && argv.some((a) => a.startsWith('--files-from='))));
      if (bad.length > 0) refuse(`flag ${bad.join('')} is not one of rmm's`);
      continue;
    }
    if (BARE.has(o) || (BARE_IF_GIVEN.has(o) && argv.includes(o))) continue;
    // An xattr filter rmm gave the receiver itself (-M): it only keeps xattrs from being removed.
    if (o.startsWith('--filter=-x ') && argv.includes(`-M${o}`)) continue;
    const valued = /^(--[a-z-]+)(?:=(.*))?$/s.exec(o);
    const name = valued?.[1];
    if (name === undefined || !VALUED.includes(name)) refuse(`option ${o} is not one of rmm's`);
    const value = valued![2] ?? options[++i];
    if (!expected.has(name!) || value !== expected.get(name!)) refuse(`${name} is not the value rmm gave`);
  }
  return reported.join(' ');
}

function valueAfter(argv: readonly string[], option: string): string | undefined {
  const i = argv.indexOf(option);
  return i >= 0 ? argv[i + 1] : undefined;
}
