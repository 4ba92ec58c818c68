import { RmmError } from '../../errors.js';
import type { PlannedFixupFile, PointFileChange } from '../../plan/action.js';
import { readConfigFiles } from '../../observe/config-files.js';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { parseRecord, POINT_ID, pointDir, readRecord, recordPath, writeRecord, type RecoveryPoint, type ReplicaRecord } from '../../record/record.js';
import { RecordError } from '../../record/record.js';
import type { CopyUnit } from '../../snapshot/select.js';
import { gunzipListing } from '../../sync/delta.js';
import { escapeGlob } from '../../sync/manifest.js';
import { targetDir } from '../../sync/rsync.js';
import type { RemoteHost } from '../../transport/index.js';
import type { TargetInventory } from '../../record/rebuild.js';
import type { PointConfig, TargetDriver, TargetObservation } from '../driver.js';
import { replicaLayout } from './layout.js';
import { FIXUP_SCRIPT, fixupFailure, rewriteFiles } from '../fixup-files.js';

const gzipAsync = promisify(gzip);

/** Tools a sync needs on a directory target. */
export const TARGET_TOOLS = ['rsync', 'flock', 'tar', 'timeout', 'pkill'] as const;

/** Where a point keeps the origin's text of each file its fixups changed, below its data folder. */
const ORIGINALS = 'originals';

const POINT_GLOB = '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z';

// A btrfs subvolume's top folder: a snapshot of it is a whole copy of its tree, made at once, and
// deleting it needs no walk. Points on a btrfs target are subvolumes (src/target/directory/layout.ts).
const IS_SUBVOLUME = `is_subvolume() { [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -f -c %T -- "$1" 2>/dev/null)" = btrfs ] && [ "$(stat -c %i -- "$1" 2>/dev/null)" = 256 ] && command -v btrfs >/dev/null 2>&1; }`;

// $1 the record file, $2 the points folder, $3 current, $4 the replica's folder, then tool names. One
// round trip: the tools found, the points' folders, where current points, whether a copy is under way,
// the free space where the replica goes (its nearest folder that exists), then the record if any.
const OBSERVE = `${IS_SUBVOLUME}
f=$1 points=$2 current=$3 replica=$4; shift 4
for t in "$@"; do command -v "$t" >/dev/null 2>&1 && printf 'tool %s\\n' "$t"; done
for l in "\${current%/*}" "\${f%/*}" "\${f%/*}/points" "$points"; do [ -L "$l" ] && printf 'symlink %s\\n' "$l"; done
# Only names shaped as point ids (a glob of digits), so no name can forge a line of this output.
[ -d "$points" ] && for p in "$points"/${POINT_GLOB}; do [ -d "$p" ] && [ ! -L "$p" ] && printf 'point %s\\n' "\${p##*/}" && is_subvolume "$p" && printf 'subvolume %s\\n' "\${p##*/}"; done
printf 'current %s\\n' "$(readlink -- "$current" 2>/dev/null)"
[ -e "$points/.partial" ] && echo partial
d=$replica
while [ -n "$d" ] && [ ! -d "$d" ]; do d=\${d%/*}; done
df -P -B1 -- "\${d:-/}" 2>/dev/null | awk 'NR == 2 { print "free " $4 }'
if [ -e "$f" ] || [ -L "$f" ]; then echo @@rmm:record; exec cat -- "$f"; fi
echo @@rmm:none`;

// $1 partial dir, $2 final point dir, $3 current symlink, $4 its relative target, $5 the copy's data
// folder, $6 the point's, $7 the list of the copy's files written in place (whole now). rename() of
// a symlink over the old one is atomic: `current` is always one whole point. The point's data
// follows its tree, so a point whose tree is not there has none.
const PROMOTE = `set -e
rm -f -- "$7"
mv -T -- "$1" "$2"
if [ -d "$5" ]; then rm -rf -- "$6"; mv -T -- "$5" "$6"; fi
ln -sfn -- "$4" "$3.rmm-new"
mv -T -- "$3.rmm-new" "$3"
sync -f -- "$3"`;

// $1 point dir, $2 partial dir, $3 current symlink, $4 the previous point's relative target or '',
// $5 the point's data folder, $6 the copy's. Puts back what PROMOTE changed: the copy returns to
// .partial, where the next run resumes it.
const DEMOTE = `set -e
if [ -n "$4" ]; then ln -sfn -- "$4" "$3.rmm-new"; mv -T -- "$3.rmm-new" "$3"; else rm -f -- "$3"; fi
if [ -d "$5" ] && [ ! -e "$6" ]; then mv -T -- "$5" "$6"; fi
if [ -d "$1" ] && [ ! -e "$2" ]; then mv -T -- "$1" "$2"; fi
sync -f -- "$3" 2>/dev/null || :`;

// $1 current symlink, $2 its relative target: switched atomically, as PROMOTE does.
const REPOINT = `set -e
ln -sfn -- "$2" "$1.rmm-new"
mv -T -- "$1.rmm-new" "$1"
sync -f -- "$1"`;

function folderNames(lines: readonly string[]): string[] {
  return lines.filter((line) => line.startsWith('point ')).map((line) => line.slice('point '.length));
}

// to_trash TRASH PATH: PATH moved into a folder of its own in the trash (names there never collide).
const TO_TRASH = `to_trash() { mv -- "$2" "$(mktemp -d -- "$1/x.XXXXXX")/"; }`;

// $1 the trash folder, then the points' folders and their data folders: each moved into the trash
// (a rename: a point of 100,000 files took 1.4-1.6 s to remove on the bench), removed after the run.
export const PRUNE = `${TO_TRASH}
t=$1; shift
mkdir -p -- "$t"
for d in "$@"; do
  [ -e "$d" ] || [ -L "$d" ] || continue
  to_trash "$t" "$d" || exit
done`;

// $1 the trash folder, $2 the point just recorded, $3 the spares' prefix, $4 that point's id. Run on
// its own after the run, holding no lock: first the next sync's start (a spare: hard links to every
// file of the point, named spare.ID only once whole; none for a point that is a btrfs subvolume,
// which the next sync snapshots), then the trash emptied. rmm sets no immutable or append-only flag
// on a replica's files (src/sync/attributes.ts); one set by hand would make rm fail.
// Another run may start meanwhile: it takes only a whole spare of its last point, and a spare of
// any other point goes to the trash. A spare's files are never written: what a fixup re-run rewrites
// in a point is made anew by rename, and the next sync sends those files again (src/apply/delta-copy.ts).
export const AFTER_RUN = `${TO_TRASH}
${IS_SUBVOLUME}
t=$1 p=$2 s=$3 id=$4
mkdir -p -- "$t"
for x in "$s".*; do
  [ -e "$x" ] || continue
  [ "$x" = "$s.$id" ] || to_trash "$t" "$x" 2>/dev/null
done
if [ ! -e "$s.$id" ] && [ -d "$p" ] && [ ! -L "$p" ] && ! is_subvolume "$p"; then
  m="$s.making-$$"
  if mkdir -- "$m" && cp -al -- "$p/." "$m/" && mv -T -- "$m" "$s.$id"; then :; else to_trash "$t" "$m" 2>/dev/null; fi
fi
for x in "$t"/*; do
  [ -e "$x" ] || continue
  for v in "$x"/* "$x"/.[!.]*; do is_subvolume "$v" && btrfs subvolume delete -- "$v" >/dev/null 2>&1; done
  rm -rf -- "$x" 2>/dev/null || { chattr -R -i -a -- "$x" 2>/dev/null; rm -rf -- "$x"; }
done`;

// $1 the trash folder, $2 the spares' prefix: AFTER_RUN's job of this replica ended (it is named by
// its trash folder), then every spare, whole or not, moved to the trash.
export const DROP_SPARES = `${TO_TRASH}
t=$1 s=$2
for pid in $(pgrep -f -- "rmm-after-run $t "); do
  # setsid made it a process group of its own: its cp or rm ends with it.
  case $(tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null) in *" rmm-after-run $t "*) kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null ;; esac
done
mkdir -p -- "$t"
for x in "$s".*; do
  [ -e "$x" ] || continue
  to_trash "$t" "$x" || exit
done`;

// Starts AFTER_RUN ($1) with its arguments, detached: the command returns at once.
const DETACH = `s=$1; shift
setsid sh -c "$s" rmm-after-run "$@" </dev/null >/dev/null 2>&1 &`;

// real_dirs ROOT PATH: whether every folder above PATH below ROOT is a real folder; a symbolic link
// there would lead rm or cp outside.
const REAL_DIRS = `real_dirs() {
  d=$1; rest=$2
  while :; do
    case $rest in */*) ;; *) return 0 ;; esac
    d=$d/\${rest%%/*}; rest=\${rest#*/}
    if [ -L "$d" ] || [ ! -d "$d" ]; then return 1; fi
  done
}`;

// xargs -0 -r sh -c "$SAFE_PATHS" NAME < paths, in the copy's folder: each path printed (./path,
// NUL-terminated) only where every folder above it in the copy is a real folder.
const SAFE_PATHS = `${REAL_DIRS}
for p; do real_dirs . "$p" && printf "%s\\0" "./$p"; done`;

// $1 the copy's folder, $2 its data folder, $3 `subvolume` for a first copy. The copy's data is
// written anew by each copy: what a killed run left is dropped. A first copy on btrfs is a subvolume,
// so that its point, and each point after it, can be snapshotted (FROM_POINT).
const PREPARE = `set -e
if [ "$3" = subvolume ] && [ ! -e "$1" ] && [ ! -L "$1" ]; then
  mkdir -p -- "\${1%/*}"
  if [ "$(stat -f -c %T -- "\${1%/*}")" = btrfs ] && command -v btrfs >/dev/null 2>&1; then btrfs subvolume create -- "$1" >/dev/null 2>&1 || :; fi
fi
mkdir -p -- "$1"
rm -rf -- "$2"
mkdir -p -- "$2"`;

// $1 the last point's folder, $2 the copy's, $3 a whole spare of that point, $4 `links`, `fresh` or
// `none`, $5 the trash folder, $6 the list of the copy's files an interrupted run wrote in place
// (REFLINK): those are dropped from what it left first (the full copy that follows sends them
// again). A point that is a btrfs subvolume: the copy becomes a snapshot of it
// (`snapshot`: constant time, and the copy shares no file with the point by a hard link, so it may
// be written in place); what an interrupted run left in the copy goes to the trash first
// (`snapshot replaced`), as starting again from the point costs nothing. Otherwise only an empty
// copy is started, and only with `links`: as hard links to every file of the point, its folders
// made anew with their attributes, in one pass (cp -al: 100,000 files in about 2 s on the bench's
// xfs, where rsync --link-dest took 8 s), or by taking the spare AFTER_RUN made of them (rename(2)
// puts a folder in place of an empty one). A file that cannot be linked (made immutable on the
// target, or at its filesystem's most links) leaves the copy empty again: the sync copies in full,
// as rsync --link-dest copies what it cannot link. `fresh`: as `links`, what an interrupted run left
// in the copy going to the trash first (`replaced`). `none`: the copy is left as it was.
export const FROM_POINT = `set -e
${TO_TRASH}
${IS_SUBVOLUME}
empty() { [ -z "$(find "$1" -mindepth 1 -maxdepth 1 -print -quit)" ]; }
if [ -e "$6" ] || [ -L "$6" ]; then
  if [ -d "$2" ] && [ ! -L "$2" ] && ! empty "$2"; then (cd -P -- "$2" && xargs -0 -r sh -c '${SAFE_PATHS}' rmm-drop < "$6" | xargs -0 -r rm -rf --); fi
  rm -f -- "$6"
fi
if [ ! -e "$1" ] && [ ! -L "$1" ]; then echo none; exit 0; fi
if [ ! -d "$1" ] || [ -L "$1" ]; then echo "rmm: $1 is not a folder" >&2; exit 3; fi
if is_subvolume "$1"; then
  left=
  if ! empty "$2"; then mkdir -p -- "$5"; to_trash "$5" "$2"; left=' replaced'
  elif is_subvolume "$2"; then btrfs subvolume delete -- "$2" >/dev/null
  else rmdir -- "$2"; fi
  if btrfs subvolume snapshot -- "$1" "$2" >/dev/null; then echo "snapshot$left"; exit 0; fi
  mkdir -p -- "$2"
fi
if [ "$4" = fresh ] && ! empty "$2"; then mkdir -p -- "$5"; to_trash "$5" "$2"; mkdir -p -- "$2"; left=' replaced'; fi
if [ "$4" = none ] || ! empty "$2"; then echo "none$left"; exit 0; fi
if [ -d "$3" ] && [ ! -L "$3" ] && ! is_subvolume "$2" && mv -T -- "$3" "$2" 2>/dev/null; then echo "spare$left"; exit 0; fi
if is_subvolume "$2"; then btrfs subvolume delete -- "$2" >/dev/null; fi
mkdir -p -- "$2"
if ! cp -al -- "$1/." "$2/" 2>/dev/null; then
  rm -rf -- "$2"
  mkdir -- "$2"
  echo unlinkable
  exit 0
fi
echo "linked$left"`;

// $1 the copy's folder; paths relative to it on stdin, NUL-terminated, each removed (never through
// a symbolic link).
export const DROP = `cd -P -- "$1" || exit 3
xargs -0 -r sh -c '${SAFE_PATHS}' rmm-drop | xargs -0 -r rm -rf --`;

// $1 the last point's folder, $2 the copy's, $3 the list of files made in place (appended to); on
// stdin, NUL-terminated, the copy's changed files (k PATH: still there, hard links to the point's)
// and new ones (n PATH: not there), relative to both folders. Each changed file is made a reflink of
// the point's (cp --reflink --remove-destination: a new inode sharing the point's blocks until written,
// its time now, so no quick check takes a half-written one for whole), for rsync to write only its
// changed blocks in place; a new one still there is removed. Then no file rsync writes in place is
// the point's. Prints \`reflinked\`, or \`dropped\` when the filesystem cannot (then the changed files
// are removed too, and rsync makes them anew). The list is written first: a copy an interrupted run
// left drops those files (FROM_POINT), whatever they hold.
export const REFLINK = `pt=$1 c=$2 m=$3
cd -P -- "$c" || exit 3
t=$(mktemp -d) || exit 3
trap 'rm -rf -- "$t"' EXIT
xargs -0 -r sh -c '${REAL_DIRS}
pt=$1; shift
for r; do
  p=\${r#?}
  case $r in n*) [ -e "$p" ] || [ -L "$p" ] || continue ;; k*) ;; *) continue ;; esac
  real_dirs . "$p" && real_dirs "$pt" "$p" || continue
  case $r in
    k*) [ -f "$p" ] && [ ! -L "$p" ] && [ -f "$pt/$p" ] && [ ! -L "$pt/$p" ] && printf "%s\\0" "./$p" >&3 ;;
    n*) printf "%s\\0" "./$p" ;;
  esac
done' rmm-reflink "$pt" 3>"$t/k" >"$t/n" || exit 3
xargs -0 -r rm -f -- < "$t/n" || exit 3
cat -- "$t/k" >> "$m" || exit 3
if [ ! -s "$t/k" ] || (cd -P -- "$pt" && xargs -0 -r cp --reflink=always --remove-destination --parents -t "$c" --) < "$t/k" 2>/dev/null; then echo reflinked; exit 0; fi
xargs -0 -r rm -f -- < "$t/k" || exit 3
echo dropped`;

/** A replica kept as a tree of recovery points on its landing host, with an atomic `current` link. */
export class DirectoryTarget implements TargetDriver {
  readonly kind = 'directory';
  readonly #layout;

  constructor(
    private readonly host: RemoteHost,
    private readonly path: string,
  ) {
    this.#layout = replicaLayout(path);
  }

  get lockFile(): string {
    return this.#layout.lock;
  }

  get flushDir(): string {
    return this.#layout.partial;
  }

  async observe(): Promise<TargetObservation> {
    const { lines, recordText, file } = await this.#look();
    const tools = Object.fromEntries(TARGET_TOOLS.map((t) => [t, lines.includes(`tool ${t}`)]));
    const record = recordText === undefined ? undefined : parseRecord(recordText, `${this.host.info.host}:${file}`);
    const current = lines.find((line) => line.startsWith('current '))?.slice('current '.length);
    const kept = new Set(record?.points.map((p) => p.id));
    // Points this record dropped (retention) whose folders are still there: a prune that failed
    // after the record let go of them. Only those: a folder no record of this replica named is not
    // rmm's to remove (another replica's, an operator's).
    const folders = new Set(folderNames(lines));
    const leftoverPoints = (record?.pruning ?? []).filter((id) => POINT_ID.test(id) && folders.has(id) && !kept.has(id) && current !== `points/${id}`);
    const free = Number(lines.find((line) => line.startsWith('free '))?.slice('free '.length));
    const snapshotPoints = lines.filter((line) => line.startsWith('subvolume ')).map((line) => line.slice('subvolume '.length)).filter((id) => folders.has(id));
    return { record, tools, leftoverPoints, current: current ?? '', partial: lines.includes('partial'), pointFolders: [...folders], snapshotPoints, ...(Number.isFinite(free) ? { freeBytes: free } : {}) };
  }

  async applyFixups(files: readonly PlannedFixupFile[]): Promise<void> {
    const l = this.#layout;
    for (const file of files) {
      const args = [l.partial, posix.join(l.partialData, ORIGINALS), file.path, file.before, file.renamedTo ?? '', file.text === undefined ? 'keep' : 'write'];
      const res = await this.host.exec(['sh', '-c', FIXUP_SCRIPT, 'rmm-fixup', ...args], {
        sudo: true,
        allowFailure: true,
        ...(file.text !== undefined ? { stdin: file.text } : {}),
      });
      fixupFailure(this.host, res, file.path, 'the copy', 'the origin changed it after the plan');
    }
  }

  /** The point's configuration files, and the origins' texts its fixups kept (`rmm plan` re-runs the fixups from those). */
  async readPointConfig(point: string): Promise<PointConfig> {
    const dir = pointDir(this.path, point);
    const [files, originals] = await Promise.all([readConfigFiles(this.host, dir), readConfigFiles(this.host, posix.join(this.#layout.pointData(point), ORIGINALS))]);
    return { point, files, originals };
  }

  async rewritePoint(point: string, changes: readonly PointFileChange[]): Promise<void> {
    // A spare made before this rewrite holds the files as they were, some of which the record will
    // no longer name as rewritten (src/apply/delta-copy.ts renews those it names): spares go first.
    await this.#dropSpares();
    await rewriteFiles(this.host, pointDir(this.path, point), posix.join(this.#layout.pointData(point), ORIGINALS), changes, `recovery point ${point}`);
  }



  /** The points' folders, `current` and the record's raw text: what `rmm repair` rebuilds a damaged record from. */
  async inventory(): Promise<TargetInventory> {
    const { lines, recordText } = await this.#look();
    const current = lines.find((line) => line.startsWith('current '))?.slice('current '.length) ?? '';
    return { folders: folderNames(lines), current, ...(recordText !== undefined ? { recordText } : {}) };
  }

  /**
   * Puts a rebuilt record in place of a damaged one, which is kept beside it for the operator
   * (`record.json.damaged-TIME`), and points `current` at `repointCurrent` when given.
   */
  async replaceRecord(record: ReplicaRecord | undefined, repointCurrent: string | undefined, stamp: string): Promise<string> {
    const file = recordPath(this.path);
    const kept = `${file}.damaged-${stamp}`;
    // Kept first, then replaced: a write that fails leaves the damaged record where it was.
    await this.host.exec(['sh', '-c', 'if [ -f "$1" ] && [ ! -L "$1" ]; then cp -p -- "$1" "$2"; fi', 'rmm-keep-damaged', file, kept], { sudo: true });
    if (record) await writeRecord(this.host, this.path, record);
    else await this.host.exec(['rm', '-f', '--', file], { sudo: true });
    if (repointCurrent !== undefined) {
      const l = this.#layout;
      pointDir(this.path, repointCurrent);
      await this.host.exec(['sh', '-c', REPOINT, 'rmm-repoint', l.current, `points/${repointCurrent}`], { sudo: true });
    }
    return kept;
  }

  /** One round trip of OBSERVE: its lines and the record's text; refuses a replica reached through a symlink. */
  async #look(): Promise<{ lines: string[]; recordText?: string; file: string }> {
    const file = recordPath(this.path);
    const l = this.#layout;
    const res = await this.host.exec(['sh', '-c', OBSERVE, 'rmm-observe', file, l.points, l.current, this.path, ...TARGET_TOOLS], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
    const [head = '', ...rest] = res.stdout.split('@@rmm:record\n');
    const lines = head.split('\n');
    if (res.exitCode !== 0) throw new RecordError('record.unreadable', `cannot read ${file} on ${this.host.info.host}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
    // A replica folder, .rmm or points that is a symlink would lead rmm's writes and removals elsewhere.
    const symlink = lines.find((line) => line.startsWith('symlink '));
    if (symlink) throw new RecordError('target.symlink', `${this.host.info.host}:${symlink.slice('symlink '.length)} is a symbolic link; rmm writes a replica only into real folders (remove the link, or point the replica's path at the folder itself)`);
    return { lines, file, ...(rest.length > 0 ? { recordText: rest.join('@@rmm:record\n') } : {}) };
  }

  readRecord(): Promise<ReplicaRecord | undefined> {
    return readRecord(this.host, this.path);
  }

  writeRecord(record: ReplicaRecord): Promise<void> {
    return writeRecord(this.host, this.path, record);
  }

  /** `first`: a first copy, which on a btrfs target starts as a subvolume of its own (its point, and every later one, a snapshot). */
  async prepareCopy(first = false): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', PREPARE, 'rmm-prepare', l.partial, l.partialData, first ? 'subvolume' : ''], { sudo: true });
  }

  /** The flags sidecar point `point` kept for this filesystem, if any (read back: parse it as untrusted). */
  async readAttributes(point: string, unit: CopyUnit): Promise<Buffer | undefined> {
    pointDir(this.path, point); // refuses an id that is not a point's
    const file = posix.join(this.#layout.pointData(point), `attributes-${encodeURIComponent(unit.fs.mountPoint)}`);
    return this.#readIfThere(file);
  }

  /** A file's bytes, or undefined when it is not there (a failure to ask still fails). */
  async #readIfThere(file: string): Promise<Buffer | undefined> {
    const res = await this.host.exec(['sh', '-c', '[ -f "$1" ] && [ ! -L "$1" ] || exit 0; echo rmm-file; exec base64 -w0 -- "$1"', 'rmm-read', file], { sudo: true });
    return res.stdout.startsWith('rmm-file\n') ? Buffer.from(res.stdout.slice('rmm-file\n'.length), 'base64') : undefined;
  }

  attributesFile(unit: CopyUnit): string {
    return posix.join(this.#layout.partialData, `attributes-${encodeURIComponent(unit.fs.mountPoint)}`);
  }

  copyDir(unit: CopyUnit): string {
    return targetDir(this.#layout.partial, unit.relativePath);
  }

  pointDir(point: string, unit: CopyUnit): string {
    return targetDir(this.#layout.point(point), unit.relativePath);
  }

  /** Where a point (or the copy being written) keeps the listing of the view a filesystem was copied from. */
  #listingFile(dataDir: string, unit: CopyUnit, signature: string): string {
    return posix.join(dataDir, `listing-${encodeURIComponent(unit.fs.mountPoint)}.${signature}.gz`);
  }

  /** The listing point `point` kept for this filesystem with these filters, if it kept one. */
  async readListing(point: string, unit: CopyUnit, signature: string): Promise<Buffer | undefined> {
    pointDir(this.path, point); // refuses an id that is not a point's
    const file = this.#listingFile(this.#layout.pointData(point), unit, signature);
    const packed = await this.#readIfThere(file);
    return packed && gunzipListing(packed);
  }

  /** Keeps the view's listing with the copy: the next sync compares its own with it. */
  async keepListing(unit: CopyUnit, signature: string, listing: Buffer): Promise<void> {
    await this.host.writeFileAtomic(this.#listingFile(this.#layout.partialData, unit, signature), await gzipAsync(listing, { level: 1 }), { sudo: true, mode: 0o600 });
  }

  /**
   * Makes the copy a whole copy of point `point`: `snapshot` when the point is a btrfs subvolume
   * (`replaced`: what an interrupted run left in the copy went to the trash first). Else, only
   * when the copy is empty and `how` is `links` (or whatever it holds, with `fresh`: what an
   * interrupted run left goes to the trash, `replaced`): hard links to every file of the point, `spare`
   * when they were made after the last run, `linked` now, `unlinkable` when a file could not be
   * linked (the copy is left empty). `none`: the copy is as it was.
   */
  async startFrom(point: string, how: 'links' | 'fresh' | 'none' = 'links'): Promise<{ start: 'snapshot' | 'spare' | 'linked' | 'unlinkable' | 'none'; replaced: boolean }> {
    const l = this.#layout;
    const res = await this.host.exec(['sh', '-c', FROM_POINT, 'rmm-from-point', pointDir(this.path, point), l.partial, `${l.spare}.${point}`, how, l.trash, l.inPlace], { sudo: true, timeoutMs: 3_600_000 });
    const [said = '', replaced] = res.stdout.trim().split(' ');
    const start = said === 'snapshot' || said === 'spare' || said === 'unlinkable' || said === 'none' ? said : 'linked';
    return { start, replaced: replaced === 'replaced' };
  }

  /** Ends this replica's AFTER_RUN job, if one runs, and moves every spare to the trash. */
  async #dropSpares(): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', DROP_SPARES, 'rmm-drop-spares', l.trash, l.spare], { sudo: true });
  }

  /**
   * Starts, on its own, what can wait until the run is over: the next sync's start from point
   * `point` (a spare), and the removal of what prune moved to the trash.
   */
  async afterRun(point: string): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', DETACH, 'rmm-detach', AFTER_RUN, l.trash, pointDir(this.path, point), l.spare, point], { sudo: true });
  }

  /** Removes these paths (relative to the copy's folder) from the copy, never through a symbolic link. */
  async drop(paths: Buffer): Promise<void> {
    await this.host.exec(['sh', '-c', DROP, 'rmm-drop', this.#layout.partial], { sudo: true, stdin: paths, timeoutMs: 3_600_000 });
  }

  /**
   * Makes the copy's changed files (`changed`, still hard links to point `point`'s) reflinks of
   * them, for rsync to write in place, and removes any new file (`fresh`) the copy holds (REFLINK).
   * Paths relative to the copy's folder. False: the target's filesystem cannot (no reflinks), and
   * the changed files were removed instead.
   */
  async reflinkFrom(point: string, changed: readonly string[], fresh: readonly string[]): Promise<boolean> {
    const l = this.#layout;
    const records = Buffer.from([...changed.map((p) => `k${p}\0`), ...fresh.map((p) => `n${p}\0`)].join(''), 'latin1');
    const res = await this.host.exec(['sh', '-c', REFLINK, 'rmm-reflink', pointDir(this.path, point), l.partial, l.inPlace], { sudo: true, stdin: records, timeoutMs: 3_600_000 });
    return res.stdout.trim() === 'reflinked';
  }

  async isEmpty(dir: string): Promise<boolean> {
    const res = await this.host.exec(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-print', '-quit'], { sudo: true, allowFailure: true });
    return res.exitCode === 0 ? res.stdout.trim() === '' : /No such file or directory/.test(res.stderr);
  }

  /** Removes every entry of `dir` that is a hard link, but below `skip` (folders relative to it that other copies fill). */
  async unshare(dir: string, skip: readonly string[] = []): Promise<void> {
    // Any entry but a folder may be a hard link (cp -al and rsync link symbolic links and devices too).
    // find's -delete would imply -depth, under which -prune does nothing: -exec rm removes them,
    // and find's exit status still says when one could not be removed.
    const pruned = skip.flatMap((p, i) => [...(i > 0 ? ['-o'] : []), '-path', `./${escapeGlob(p)}`]);
    const find = ['find', '.', ...(pruned.length > 0 ? ['(', ...pruned, ')', '-prune', '-o'] : []), '!', '-type', 'd', '-links', '+1', '-exec', 'rm', '-f', '--', '{}', '+'];
    await this.host.exec(['sh', '-c', 'cd -P -- "$1" || exit 3; shift; exec "$@"', 'rmm-unshare', dir, ...find], { sudo: true, timeoutMs: 3_600_000 });
  }

  async currentIs(point: string): Promise<boolean> {
    const res = await this.host.exec(['readlink', '--', this.#layout.current], { sudo: true, allowFailure: true });
    return res.stdout.trim() === `points/${point}`;
  }

  async promote(id: string): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', PROMOTE, 'rmm-promote', l.partial, l.point(id), l.current, `points/${id}`, l.partialData, l.pointData(id), l.inPlace], { sudo: true });
  }

  async demote(id: string, previous: RecoveryPoint | undefined): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', DEMOTE, 'rmm-demote', l.point(id), l.partial, l.current, previous ? `points/${previous.id}` : '', l.pointData(id), l.partialData], { sudo: true });
  }

  async restore(id: string, previous: RecoveryPoint | undefined): Promise<void> {
    // The promoted copy is newer and whole; a copy in progress beside it is an older run's leftover.
    // A copy that is a subvolume is deleted as one (rm -rf cannot remove it before Linux 4.18).
    await this.host.exec(['sh', '-c', `${IS_SUBVOLUME}
[ -d "$1" ] || exit 0; if is_subvolume "$2"; then btrfs subvolume delete -- "$2" >/dev/null 2>&1 || :; fi; rm -rf -- "$2" "$3"`, 'rmm-restore', this.#layout.point(id), this.#layout.partial, this.#layout.partialData], { sudo: true });
    await this.demote(id, previous);
  }

  async prune(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // Ids come from a record and a plan, both read from files: pointDir refuses any that would leave points/.
    const dirs = ids.map((id) => pointDir(this.path, id));
    // Checked ids only (above): the data folder is named by the same id.
    const data = dirs.map((dir) => this.#layout.pointData(posix.basename(dir)));
    await this.host.exec(['sh', '-c', PRUNE, 'rmm-prune', this.#layout.trash, ...dirs, ...data], { sudo: true });
  }
}
