import { parseRecord, POINT_ID, pointDir, readRecord, recordPath, writeRecord, type RecoveryPoint, type ReplicaRecord } from '../../record/record.js';
import { RecordError } from '../../record/record.js';
import type { CopyUnit } from '../../snapshot/select.js';
import { targetDir } from '../../sync/rsync.js';
import type { RemoteHost } from '../../transport/index.js';
import type { TargetDriver, TargetObservation } from '../driver.js';
import { replicaLayout } from './layout.js';

/** Tools a sync needs on a directory target. */
export const TARGET_TOOLS = ['rsync', 'flock'] as const;

// $1 the record file, $2 the points folder, $3 current, $4 the replica's folder, then tool names. One
// round trip: the tools found, the points' folders, where current points, whether a copy is under way,
// the free space where the replica goes (its nearest folder that exists), then the record if any.
const OBSERVE = `f=$1 points=$2 current=$3 replica=$4; shift 4
for t in "$@"; do command -v "$t" >/dev/null 2>&1 && printf 'tool %s\\n' "$t"; done
for l in "\${current%/*}" "\${f%/*}" "$points"; do [ -L "$l" ] && printf 'symlink %s\\n' "$l"; done
[ -d "$points" ] && for p in "$points"/*; do [ -d "$p" ] && [ ! -L "$p" ] && printf 'point %s\\n' "\${p##*/}"; done
printf 'current %s\\n' "$(readlink -- "$current" 2>/dev/null)"
[ -e "$points/.partial" ] && echo partial
d=$replica
while [ -n "$d" ] && [ ! -d "$d" ]; do d=\${d%/*}; done
df -P -B1 -- "\${d:-/}" 2>/dev/null | awk 'NR == 2 { print "free " $4 }'
if [ -e "$f" ] || [ -L "$f" ]; then echo @@rmm:record; exec cat -- "$f"; fi
echo @@rmm:none`;

// $1 partial dir, $2 final point dir, $3 current symlink, $4 its relative target.
// rename() of a symlink over the old one is atomic: `current` is always one whole point.
const PROMOTE = `set -e
mv -T -- "$1" "$2"
ln -sfn -- "$4" "$3.rmm-new"
mv -T -- "$3.rmm-new" "$3"
sync -f -- "$3"`;

// $1 point dir, $2 partial dir, $3 current symlink, $4 the previous point's relative target or ''.
// Puts back what PROMOTE changed: the copy returns to .partial, where the next run resumes it.
const DEMOTE = `set -e
if [ -n "$4" ]; then ln -sfn -- "$4" "$3.rmm-new"; mv -T -- "$3.rmm-new" "$3"; else rm -f -- "$3"; fi
if [ -d "$1" ] && [ ! -e "$2" ]; then mv -T -- "$1" "$2"; fi
sync -f -- "$3" 2>/dev/null || :`;

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
    const file = recordPath(this.path);
    const l = this.#layout;
    const res = await this.host.exec(['sh', '-c', OBSERVE, 'rmm-observe', file, l.points, l.current, this.path, ...TARGET_TOOLS], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
    const [head = '', ...rest] = res.stdout.split('@@rmm:record\n');
    const lines = head.split('\n');
    const tools = Object.fromEntries(TARGET_TOOLS.map((t) => [t, lines.includes(`tool ${t}`)]));
    if (res.exitCode !== 0) throw new RecordError('record.unreadable', `cannot read ${file} on ${this.host.info.host}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
    // A replica folder, .rmm or points that is a symlink would lead rmm's writes and removals elsewhere.
    const symlink = lines.find((line) => line.startsWith('symlink '));
    if (symlink) throw new RecordError('target.symlink', `${this.host.info.host}:${symlink.slice('symlink '.length)} is a symbolic link; rmm writes a replica only into real folders (remove the link, or point the replica's path at the folder itself)`);
    const record = rest.length === 0 ? undefined : parseRecord(rest.join('@@rmm:record\n'), `${this.host.info.host}:${file}`);
    const current = lines.find((line) => line.startsWith('current '))?.slice('current '.length);
    const kept = new Set(record?.points.map((p) => p.id));
    // Points this record dropped (retention) whose folders are still there: a prune that failed
    // after the record let go of them. Only those: a folder no record of this replica named is not
    // rmm's to remove (another replica's, an operator's).
    const folders = new Set(lines.filter((line) => line.startsWith('point ')).map((line) => line.slice('point '.length)));
    const leftoverPoints = (record?.pruning ?? []).filter((id) => POINT_ID.test(id) && folders.has(id) && !kept.has(id) && current !== `points/${id}`);
    const free = Number(lines.find((line) => line.startsWith('free '))?.slice('free '.length));
    return { record, tools, leftoverPoints, current: current ?? '', partial: lines.includes('partial'), ...(Number.isFinite(free) ? { freeBytes: free } : {}) };
  }

  readRecord(): Promise<ReplicaRecord | undefined> {
    return readRecord(this.host, this.path);
  }

  writeRecord(record: ReplicaRecord): Promise<void> {
    return writeRecord(this.host, this.path, record);
  }

  async prepareCopy(): Promise<void> {
    await this.host.exec(['mkdir', '-p', '--', this.#layout.partial], { sudo: true });
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

  async currentIs(point: string): Promise<boolean> {
    const res = await this.host.exec(['readlink', '--', this.#layout.current], { sudo: true, allowFailure: true });
    return res.stdout.trim() === `points/${point}`;
  }

  async promote(id: string): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', PROMOTE, 'rmm-promote', l.partial, l.point(id), l.current, `points/${id}`], { sudo: true });
  }

  async demote(id: string, previous: RecoveryPoint | undefined): Promise<void> {
    const l = this.#layout;
    await this.host.exec(['sh', '-c', DEMOTE, 'rmm-demote', l.point(id), l.partial, l.current, previous ? `points/${previous.id}` : ''], { sudo: true });
  }

  async prune(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // Ids come from a record and a plan, both read from files: pointDir refuses any that would leave points/.
    const dirs = ids.map((id) => pointDir(this.path, id));
    await this.host.exec(['rm', '-rf', '--', ...dirs], { sudo: true });
  }
}
