import { RmmError } from '../errors.js';
import type { PointFileChange } from '../plan/action.js';
import type { RemoteHost } from '../transport/index.js';

/**
 * The shell scripts that write fixups into a replica on its landing host, for every kind of target:
 * each file only if it holds the text the plan read, replaced by rename, never through a symbolic
 * link, its origin's text kept first.
 */

// confined ROOT DIR: DIR exists and is where it seems below ROOT, reached through no symbolic link. In a
// copy, a link to an absolute path leads out of the replica, into the landing host's own files.
export const CONFINED = `confined() { rr=$(cd -P -- "\${1:-/}" 2>/dev/null && pwd -P) && [ "$(realpath -e -- "$2" 2>/dev/null)" = "\${rr%/}\${2#"$1"}" ]; }`;

// Keeps the origin's text of $f as $originals$p (the point's originals), once: a kept original is never replaced.
const KEEP_ORIGINAL = `o=$originals$p
if [ ! -e "$o" ]; then
  mkdir -p -- "\${o%/*}" || exit 5
  confined "$originals" "\${o%/*}" || { echo "the originals' folder is reached through a symbolic link" >&2; exit 3; }
  { rm -f -- "$o.rmm-new" && cp --preserve=all -- "$f" "$o.rmm-new" && mv -f -- "$o.rmm-new" "$o"; } || exit 5
fi`;

// $1 the copy's folder, $2 its originals' folder, $3 the file's path, $4 the sha256 of the text the plan
// read, $5 its new name or '', $6 write|keep (the new text on stdin). The file is replaced by rename,
// never written in place: in a copy made with --link-dest it is one inode with the last recovery
// point's file, which must stay as it is. The new file starts as a copy of the old one, so that its
// owner, mode, ACLs and extended attributes (an SELinux label, which a booted copy checks) stay.
// cp --preserve=all does not fail where an attribute cannot be kept (a landing host without SELinux).
export const FIXUP_SCRIPT = `${CONFINED}
root=$1 originals=$2 p=$3 want=$4 to=$5
f=$root$p
confined "$root" "\${f%/*}" || { echo "its folder is missing or reached through a symbolic link" >&2; exit 3; }
if [ ! -f "$f" ] || [ -L "$f" ]; then echo "not a regular file" >&2; exit 3; fi
have=$(sha256sum < "$f") || exit 5
[ "\${have%% *}" = "$want" ] || { echo "it is not the text the plan read" >&2; exit 4; }
${KEEP_ORIGINAL}
if [ "$6" = write ]; then
  t="$f.rmm-fixup"
  # Removed first: the copy may hold a file of that name, even a link out of the replica.
  if ! { rm -f -- "$t" && cp --preserve=all -- "$f" "$t" && cat > "$t" && mv -f -- "$t" "$f"; }; then rm -f -- "$t"; exit 5; fi
fi
if [ -n "$to" ]; then
  to=$root$to
  if [ -e "$to" ] || [ -L "$to" ]; then echo "$to is taken" >&2; exit 6; fi
  mv -- "$f" "$to"
fi`;

// $1 the copy's folder, $2 the file's path, $3 where the fixup leaves it ('' for the same path); the
// new text on stdin. A later disks sync kept this file out of its copy: the copy still holds the
// last sync's adapted file, whose owner, mode and attributes the new text takes; the origin's
// file under its old name, which a sync with other NIC maps may have left, goes.
export const KEPT_FIXUP_SCRIPT = `${CONFINED}
root=$1 p=$2 to=$3
f=$root\${to:-$p}
confined "$root" "\${f%/*}" || { echo "its folder is missing or reached through a symbolic link" >&2; exit 3; }
if [ ! -f "$f" ] || [ -L "$f" ]; then echo "not a regular file" >&2; exit 3; fi
t="$f.rmm-fixup"
if ! { rm -f -- "$t" && cp --preserve=all -- "$f" "$t" && cat > "$t" && mv -f -- "$t" "$f"; }; then rm -f -- "$t"; exit 5; fi
if [ -n "$to" ]; then
  old=$root$p
  if { [ -e "$old" ] || [ -L "$old" ]; } && confined "$root" "\${old%/*}"; then rm -f -- "$old" || exit 5; fi
fi`;

// $1 the copy's folder, then paths: prints (NUL-ended) those that are regular files in the copy,
// reached through no symbolic link.
export const PRESENT_SCRIPT = `${CONFINED}
root=$1; shift
for p in "$@"; do
  f=$root$p
  if confined "$root" "\${f%/*}" && [ -f "$f" ] && [ ! -L "$f" ]; then printf '%s\\0' "$p"; fi
done`;

// $1 the point's folder, $2 its originals' folder, $3 the file's path, $4 the sha256 of the text the plan
// read or 'absent', $5 write|remove (the new text on stdin), $6 1 to keep the file's original first,
// $7 for a file created: the path whose owner and mode it takes (its original, else the point's file).
export const REWRITE_SCRIPT = `${CONFINED}
root=$1 originals=$2 p=$3 want=$4 act=$5 keep=$6 from=$7
f=$root$p
confined "$root" "\${f%/*}" || { echo "its folder is missing or reached through a symbolic link" >&2; exit 3; }
if [ "$want" = absent ]; then
  if [ -e "$f" ] || [ -L "$f" ]; then echo "it exists; the plan found none" >&2; exit 4; fi
else
  if [ ! -f "$f" ] || [ -L "$f" ]; then echo "not a regular file" >&2; exit 3; fi
  have=$(sha256sum < "$f") || exit 5
  [ "\${have%% *}" = "$want" ] || { echo "it is not the text the plan read" >&2; exit 4; }
  if [ "$keep" = 1 ]; then
${KEEP_ORIGINAL}
  fi
fi
if [ "$act" = remove ]; then rm -f -- "$f" || exit 5; exit 0; fi
ref=
if [ "$want" != absent ]; then ref=$f
elif [ -n "$from" ]; then for r in "$originals$from" "$root$from"; do if [ -f "$r" ] && [ ! -L "$r" ]; then ref=$r; break; fi; done
fi
t="$f.rmm-fixup"
if ! { rm -f -- "$t" && { [ -z "$ref" ] || cp --preserve=all -- "$ref" "$t"; } && cat > "$t" && mv -f -- "$t" "$f"; }; then rm -f -- "$t"; exit 5; fi`;

/** Turns a fixup script's exit into the error that names the file: 4 the text changed, others a failure. */
export function fixupFailure(host: RemoteHost, res: { exitCode: number | null; stderr: string }, path: string, where: string, changed: string): void {
  if (res.exitCode === 0) return;
  const why = res.stderr.trim() || `exit ${res.exitCode}`;
  throw new RmmError(
    res.exitCode === 4 ? 'fixup.changed' : 'fixup.failed',
    `${host.info.host}: the fixup of ${path} in ${where} failed: ${why}${res.exitCode === 4 ? ` (${changed}; plan again to see its new diff)` : ''}`,
  );
}

/**
 * A fixup re-run's changes written into the replica below `root` (REWRITE_SCRIPT), in order, each
 * only if it still holds what the plan read; the origin's texts kept below `originals`. `where`
 * names the replica in errors.
 */
export async function rewriteFiles(host: RemoteHost, root: string, originals: string, changes: readonly PointFileChange[], where: string): Promise<void> {
  for (const c of changes) {
    const args = [root, originals, c.path, c.before, c.text === undefined ? 'remove' : 'write', c.keepOriginal ? '1' : '0', c.modeFrom ?? ''];
    const res = await host.exec(['sh', '-c', REWRITE_SCRIPT, 'rmm-rewrite', ...args], { sudo: true, allowFailure: true, ...(c.text !== undefined ? { stdin: c.text } : {}) });
    fixupFailure(host, res, c.path, where, 'it changed after the plan');
  }
}
