import { RmmError } from '../../errors.js';
import type { PlannedFixupFile, PointFileChange } from '../../plan/action.js';
import { readConfigFiles } from '../../observe/config-files.js';
import { posix } from 'node:path';
import { parseRecord, POINT_ID, pointDir, readRecord, recordPath, writeRecord, type RecoveryPoint, type ReplicaRecord } from '../../record/record.js';
import { RecordError } from '../../record/record.js';
import type { CopyUnit } from '../../snapshot/select.js';
import { targetDir } from '../../sync/rsync.js';
import type { RemoteHost } from '../../transport/index.js';
import type { TargetInventory } from '../../record/rebuild.js';
import type { PointConfig, TargetDriver, TargetObservation } from '../driver.js';
import { replicaLayout } from './layout.js';

/** Tools a sync needs on a directory target. */
export const TARGET_TOOLS = ['rsync', 'flock', 'tar', 'timeout', 'pkill'] as const;

/** Where a point keeps the origin's text of each file its fixups changed, below its data folder. */
const ORIGINALS = 'originals';

const POINT_GLOB = '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z';

// $1 the record file, $2 the points folder, $3 current, $4 the replica's folder, then tool names. One
// round trip: the tools found, the points' folders, where current points, whether a copy is under way,
// the free space where the replica goes (its nearest folder that exists), then the record if any.
const OBSERVE = `f=$1 points=$2 current=$3 replica=$4; shift 4
for t in "$@"; do command -v "$t" >/dev/null 2>&1 && printf 'tool %s\\n' "$t"; done
for l in "\${current%/*}" "\${f%/*}" "\${f%/*}/points" "$points"; do [ -L "$l" ] && printf 'symlink %s\\n' "$l"; done
# Only names shaped as point ids (a glob of digits), so no name can forge a line of this output.
[ -d "$points" ] && for p in "$points"/${POINT_GLOB}; do [ -d "$p" ] && [ ! -L "$p" ] && printf 'point %s\\n' "\${p##*/}"; done
printf 'current %s\\n' "$(readlink -- "$current" 2>/dev/null)"
[ -e "$points/.partial" ] && echo partial
d=$replica
while [ -n "$d" ] && [ ! -d "$d" ]; do d=\${d%/*}; done
df -P -B1 -- "\${d:-/}" 2>/dev/null | awk 'NR == 2 { print "free " $4 }'
if [ -e "$f" ] || [ -L "$f" ]; then echo @@rmm:record; exec cat -- "$f"; fi
echo @@rmm:none`;

// $1 partial dir, $2 final point dir, $3 current symlink, $4 its relative target, $5 the copy's data
// folder, $6 the point's. rename() of a symlink over the old one is atomic: `current` is always one
// whole point. The point's data follows its tree, so a point whose tree is not there has none.
const PROMOTE = `set -e
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

// confined ROOT DIR: DIR exists and is where it seems below ROOT, reached through no symbolic link. In a
// copy, a link to an absolute path leads out of the replica, into the landing host's own files.
const CONFINED = `confined() { rr=$(cd -P -- "\${1:-/}" 2>/dev/null && pwd -P) && [ "$(realpath -e -- "$2" 2>/dev/null)" = "\${rr%/}\${2#"$1"}" ]; }`;

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
const FIXUP = `${CONFINED}
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

// $1 the point's folder, $2 its originals' folder, $3 the file's path, $4 the sha256 of the text the plan
// read or 'absent', $5 write|remove (the new text on stdin), $6 1 to keep the file's original first,
// $7 for a file created: the path whose owner and mode it takes (its original, else the point's file).
const REWRITE = `${CONFINED}
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

function folderNames(lines: readonly string[]): string[] {
  return lines.filter((line) => line.startsWith('point ')).map((line) => line.slice('point '.length));
}

// The points' folders, then their data folders. rmm sets no immutable or append-only flag on a
// replica's files (src/sync/attributes.ts); one set by hand would make rm fail at every prune.
const PRUNE = `rm -rf -- "$@" 2>/dev/null && exit
chattr -R -i -a -- "$@" 2>/dev/null
rm -rf -- "$@"`;

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
    return { record, tools, leftoverPoints, current: current ?? '', partial: lines.includes('partial'), pointFolders: [...folders], ...(Number.isFinite(free) ? { freeBytes: free } : {}) };
  }

  async applyFixups(files: readonly PlannedFixupFile[]): Promise<void> {
    const l = this.#layout;
    for (const file of files) {
      const args = [l.partial, posix.join(l.partialData, ORIGINALS), file.path, file.before, file.renamedTo ?? '', file.text === undefined ? 'keep' : 'write'];
      const res = await this.host.exec(['sh', '-c', FIXUP, 'rmm-fixup', ...args], {
        sudo: true,
        allowFailure: true,
        ...(file.text !== undefined ? { stdin: file.text } : {}),
      });
      this.#fixupResult(res, file.path, 'the copy', 'the origin changed it after the plan');
    }
  }

  /** The point's configuration files, and the origins' texts its fixups kept (`rmm plan` re-runs the fixups from those). */
  async readPointConfig(point: string): Promise<PointConfig> {
    const dir = pointDir(this.path, point);
    const [files, originals] = await Promise.all([readConfigFiles(this.host, dir), readConfigFiles(this.host, posix.join(this.#layout.pointData(point), ORIGINALS))]);
    return { point, files, originals };
  }

  async rewritePoint(point: string, changes: readonly PointFileChange[]): Promise<void> {
    const dir = pointDir(this.path, point);
    const originals = posix.join(this.#layout.pointData(point), ORIGINALS);
    for (const c of changes) {
      const args = [dir, originals, c.path, c.before, c.text === undefined ? 'remove' : 'write', c.keepOriginal ? '1' : '0', c.modeFrom ?? ''];
      const res = await this.host.exec(['sh', '-c', REWRITE, 'rmm-rewrite', ...args], { sudo: true, allowFailure: true, ...(c.text !== undefined ? { stdin: c.text } : {}) });
      this.#fixupResult(res, c.path, `recovery point ${point}`, 'it changed after the plan');
    }
  }

  #fixupResult(res: { exitCode: number | null; stderr: string }, path: string, where: string, changed: string): void {
    if (res.exitCode === 0) return;
    const why = res.stderr.trim() || `exit ${res.exitCode}`;
    throw new RmmError(
      res.exitCode === 4 ? 'fixup.changed' : 'fixup.failed',
      `${this.host.info.host}: the fixup of ${path} in ${where} failed: ${why}${res.exitCode === 4 ? ` (${changed}; plan again to see its new diff)` : ''}`,
    );
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

  async prepareCopy(): Promise<void> {
    const l = this.#layout;
    // The copy's data is written anew by each copy: what a killed run left is dropped.
    await this.host.exec(['sh', '-c', 'mkdir -p -- "$1" && rm -rf -- "$2" && mkdir -p -- "$2"', 'rmm-prepare', l.partial, l.partialData], { sudo: true });
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

  async isEmpty(dir: string): Promise<boolean> {
    const res = await this.host.exec(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-print', '-quit'], { sudo: true, allowFailure: true });
    return res.exitCode === 0 ? res.stdout.trim() === '' : /No such file or directory/.test(res.stderr);
  }

  async unshare(dir: string): Promise<void> {
    await this.host.exec(['find', dir, '-type', 'f', '-links', '+1', '-delete'], { sudo: true, timeoutMs: 3_600_000 });
  }

  async currentIs(point: string): Promise<boolean> {
    const res = await this.host.exec(['readlink', '--', this.#layout.current], { sudo: true, allowFailure: true });
    return res.stdout.trim() === `points/${point}`;
  }

  async promote(id: string): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', PROMOTE, 'rmm-promote', l.partial, l.point(id), l.current, `points/${id}`, l.partialData, l.pointData(id)], { sudo: true });
  }

  async demote(id: string, previous: RecoveryPoint | undefined): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', DEMOTE, 'rmm-demote', l.point(id), l.partial, l.current, previous ? `points/${previous.id}` : '', l.pointData(id), l.partialData], { sudo: true });
  }

  async restore(id: string, previous: RecoveryPoint | undefined): Promise<void> {
    // The promoted copy is newer and whole; a copy in progress beside it is an older run's leftover.
    await this.host.exec(['sh', '-c', '[ ! -d "$1" ] || rm -rf -- "$2" "$3"', 'rmm-restore', this.#layout.point(id), this.#layout.partial, this.#layout.partialData], { sudo: true });
    await this.demote(id, previous);
  }

  async prune(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // Ids come from a record and a plan, both read from files: pointDir refuses any that would leave points/.
    const dirs = ids.map((id) => pointDir(this.path, id));
    // Checked ids only (above): the data folder is named by the same id.
    const data = dirs.map((dir) => this.#layout.pointData(posix.basename(dir)));
    await this.host.exec(['sh', '-c', PRUNE, 'rmm-prune', ...dirs, ...data], { sudo: true });
  }
}
