/**
 * Landing devices that are LVM logical volumes of the landing host (a KVM host's VM disks often are).
 * Such a volume stands for a whole origin disk, partition table included; the kernel reads no
 * partition table inside a device-mapper device, so rmm attaches the volume as a loop device with
 * partition scanning, and the copy's partitions and volume groups appear as on any disk
 * (/dev/loopNp1…). LVM snapshots of the volumes keep the last consistent point while a sync writes
 * them: a failed sync merges them back (`lvconvert --merge`), and retention removes old ones.
 */
import { RmmError } from '../../errors.js';
import { POINT_ID } from '../../record/record.js';

export interface LandingVolume {
  /** As the spec names it: /dev/VG/LV or /dev/mapper/VG-LV. */
  readonly path: string;
  /** The loop device it is attached as: the landing disk the layout, the copy and GRUB write. */
  readonly loop: string;
  readonly vg: string;
  readonly lv: string;
  /** A thin volume: its snapshots take no space up front. */
  readonly thin: boolean;
  readonly sizeBytes: number;
  /** Free bytes in its volume group (what a full-size snapshot of a thick volume takes from). */
  readonly vgFreeBytes: number;
  /** rmm's snapshots of it (`LV_rmm_POINT`), oldest first. */
  readonly snapshots: readonly VolumeSnapshot[];
  /** LVM is merging a snapshot into it, or will at its next activation: what it holds is not settled. */
  readonly merging?: boolean;
}

export interface VolumeSnapshot {
  readonly point: string;
  /** False when the snapshot overflowed (a full thick snapshot): it holds nothing usable. */
  readonly valid: boolean;
}

/** The name of rmm's snapshot of volume `lv` holding recovery point `point`. */
export function snapshotLv(lv: string, point: string): string {
  return `${lv}_rmm_${point}`;
}

/** The tag rmm puts on its snapshots of a replica's volumes. */
export function snapshotTag(replica: string): string {
  return `rmm_${replica}`;
}

// Finds the loop device backed by $1 (a resolved device path); prints it.
const LOOP_OF = `loop_of() {
  for f in /sys/block/loop*/loop/backing_file; do
    [ -r "$f" ] || continue
    if [ "$(cat "$f")" = "$1" ]; then l=\${f#/sys/block/}; echo "/dev/\${l%%/*}"; return 0; fi
  done
  return 1
}`;

// release VG LV: nothing of rmm's holds the volume open any more: the volume groups inside it
// deactivated, its loop device detached. The next observation attaches it again.
const RELEASE = `${LOOP_OF}
release() {
  real=$(readlink -f -- "/dev/$1/$2")
  loop=$(loop_of "$real") || return 0
  for pv in "$loop" "$loop"p*; do
    [ -b "$pv" ] || continue
    inner=$(lvm pvs --noheadings -o vg_name -- "$pv" 2>/dev/null | tr -d ' ') || inner=
    if [ -n "$inner" ]; then lvm vgchange -an -- "$inner" >&2; fi
  done
  losetup -d "$loop"
  udevadm settle 2>/dev/null || :
}`;

// The spec's landing devices. For each: `plain DEV` (not a logical volume), or
// `volume DEV LOOP` and lvs's row of it, then a `snapshot` row for every volume of its group, hidden
// ones included (the reader keeps those named and tagged as rmm's snapshots of it: a thin merge
// clears the origin of older thin snapshots). A volume not attached yet is attached, with partition scanning.
export const ATTACH = `set -e
${LOOP_OF}
for dev in "$@"; do
  if [ "$(lsblk -dno TYPE -- "$dev" 2>/dev/null)" != lvm ]; then printf 'plain %s\\n' "$dev"; continue; fi
  real=$(readlink -f -- "$dev")
  loop=$(loop_of "$real") || { loop=$(losetup --find --show --partscan -- "$real"); udevadm settle 2>/dev/null || :; }
  printf 'volume %s %s\\n' "$dev" "$loop"
  lvm lvs --noheadings --nameprefixes --units b --nosuffix -o vg_name,lv_name,segtype,lv_size,vg_free,lv_merging -- "$dev"
  vg=$(lvm lvs --noheadings -o vg_name -- "$dev" | tr -d ' ')
  lvm lvs -a --noheadings --nameprefixes -o lv_name,lv_tags,lv_snapshot_invalid,segtype -- "$vg" | sed 's/^/snapshot /'
done`;

// $1 the replica, $2 the point, then for each volume: VG LV thin(1|0). A snapshot of the point rmm
// left (a run stopped after it) is replaced: the volume holds the point now. A volume of that name
// that is not rmm's is refused, never removed.
export const SNAPSHOT = `set -e
replica=$1 point=$2; shift 2
sync
while [ $# -ge 3 ]; do
  vg=$1 lv=$2 thin=$3; shift 3
  name=\${lv}_rmm_$point
  if lvm lvs -- "$vg/$name" >/dev/null 2>&1; then
    tags=$(lvm lvs --noheadings -o lv_tags -- "$vg/$name" | tr -d ' ')
    case ",$tags," in *",rmm_$replica,"*) lvm lvremove -y -- "$vg/$name" >&2 ;; *) echo "$vg/$name exists and is not rmm's snapshot of replica $replica: rename or remove it" >&2; exit 3 ;; esac
  fi
  if [ "$thin" = 1 ]; then lvm lvcreate -s -n "$name" --addtag "rmm_$replica" -- "$vg/$lv" >&2
  else lvm lvcreate -s -l 100%ORIGIN -n "$name" --addtag "rmm_$replica" -- "$vg/$lv" >&2; fi
  printf 'made %s/%s\\n' "$vg" "$name"
done`;

// $1 the mount root, $2 the point, then for each volume: VG LV. Everything below the mount root is
// unmounted, the volume groups inside the volumes deactivated and their loop devices detached, so
// that nothing holds a volume open: LVM then merges the snapshot at once, and the volume is the
// point again. Every snapshot is checked there, and every volume and snapshot closed, before the
// first merge: a merge LVM would only start at a later activation (it cannot be called off) is
// never asked for. Once started it goes on if rmm's connection drops (a hang-up, a closed pipe),
// so that no volume is left at the sync's state while another is back at the point.
export const ROLLBACK = `set -e
trap '' HUP PIPE
root=$1 point=$2; shift 2
${RELEASE}
if mountpoint -q -- "$root"; then umount -R -- "$root"; fi
[ -d "$root" ] && rmdir -- "$root" 2>/dev/null || :
# Three passes over the volumes (VG LV pairs, rotated through "$@" behind a -- mark), then the merges.
for step in check release open; do
  set -- "$@" --
  while [ "$1" != -- ]; do
    vg=$1 lv=$2; shift 2; set -- "$@" "$vg" "$lv"
    case $step in
      check) lvm lvs -- "$vg/\${lv}_rmm_$point" >/dev/null 2>&1 || { echo "$vg/$lv has no snapshot of recovery point $point" >&2; exit 5; } ;;
      release) release "$vg" "$lv" ;;
      open) if lvm lvs --noheadings -o lv_device_open -- "$vg/$lv" "$vg/\${lv}_rmm_$point" | grep -q open; then echo "$vg/$lv or its snapshot is still open on the landing host: close what holds it, then apply again" >&2; exit 4; fi ;;
    esac
  done
  shift
done
while [ $# -ge 2 ]; do
  vg=$1 lv=$2; shift 2
  out=$(lvm lvconvert --merge -i 1 -y -- "$vg/\${lv}_rmm_$point" 2>&1) || { printf '%s\\n' "$out" >&2 || :; exit 1; }
  case $out in *Delaying*|*"next activation"*) printf '%s: %s\\n' "$vg/$lv" "$out" >&2 || :; exit 4 ;; esac
  printf 'rolled back %s/%s\\n' "$vg" "$lv" || :
done`;

// $1 the replica, then point ids, --, then for each volume: VG LV. Removes rmm's snapshots of those
// points (only those tagged for the replica), each volume released first (the copy is unmounted by
// then): nothing holds a volume while LVM changes its snapshots.
export const PRUNE = `set -e
${RELEASE}
replica=$1; shift
points=
while [ $# -gt 0 ] && [ "$1" != -- ]; do points="$points $1"; shift; done
[ $# -gt 0 ] && shift
while [ $# -ge 2 ]; do
  vg=$1 lv=$2; shift 2
  release "$vg" "$lv"
  for p in $points; do
    name=\${lv}_rmm_$p
    tags=$(lvm lvs --noheadings -o lv_tags -- "$vg/$name" 2>/dev/null | tr -d ' ') || continue
    case ",$tags," in *",rmm_$replica,"*) lvm lvremove -y -- "$vg/$name" >&2; printf 'removed %s/%s\\n' "$vg" "$name" ;; esac
  done
done`;

const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

/** Reads ATTACH's output, which comes from the landing host: every name is checked before rmm acts on it. */
export function parseAttach(output: string, where: string, replica: string): { plain: string[]; volumes: LandingVolume[] } {
  const bad = (problem: string): never => {
    throw new RmmError('landing.unreadable', `${where}: the landing volumes' listing is not what rmm reads: ${problem}`);
  };
  const plain: string[] = [];
  const volumes: LandingVolume[] = [];
  let current: { path: string; loop: string; row?: Record<string, string>; snapshots: VolumeSnapshot[] } | undefined;
  const finish = () => {
    if (!current) return;
    const r = current.row ?? bad(`no lvs row for ${current.path}`);
    const vg = name(r.LVM2_VG_NAME, 'vg_name');
    const lv = name(r.LVM2_LV_NAME, 'lv_name');
    volumes.push({
      path: current.path,
      loop: current.loop,
      vg,
      lv,
      thin: r.LVM2_SEGTYPE === 'thin',
      sizeBytes: count(r.LVM2_LV_SIZE, 'lv_size'),
      vgFreeBytes: count(r.LVM2_VG_FREE, 'vg_free'),
      snapshots: current.snapshots,
      ...(r.LVM2_LV_MERGING === 'merging' || r.LVM2_LV_MERGING === '1' ? { merging: true } : {}),
    });
    current = undefined;
  };
  const name = (v: string | undefined, field: string): string => (v !== undefined && LVM_NAME.test(v) ? v : bad(`${field} ${JSON.stringify(v)} is not an LVM name`));
  const count = (v: string | undefined, field: string): number => (v !== undefined && /^\d{1,18}$/.test(v) ? Number(v) : bad(`${field} ${JSON.stringify(v)} is not a size in bytes`));
  for (const line of output.split('\n')) {
    const text = line.trim();
    if (text === '') continue;
    const plainMatch = /^plain (\/dev\/\S+)$/.exec(text);
    const volumeMatch = /^volume (\/dev\/\S+) (\/dev\/loop\d{1,6})$/.exec(text);
    if (plainMatch) {
      finish();
      plain.push(plainMatch[1]!);
    } else if (volumeMatch) {
      finish();
      current = { path: volumeMatch[1]!, loop: volumeMatch[2]!, snapshots: [] };
    } else if (text.startsWith('snapshot ')) {
      if (!current) bad('a snapshot row before its volume');
      const r = fields(text.slice('snapshot '.length), bad);
      // lvs -a shows a hidden volume (a snapshot being merged) in brackets.
      const snap = name(r.LVM2_LV_NAME?.replace(/^\[(.*)\]$/, '$1'), 'snapshot lv_name');
      const prefix = snapshotLv(current!.row ? name(current!.row.LVM2_LV_NAME, 'lv_name') : bad('a snapshot row before its volume row'), '');
      const point = snap.startsWith(prefix) ? snap.slice(prefix.length) : '';
      // Another replica's, or another tool's: not a recovery point of this replica; rmm neither uses nor removes it.
      if (!POINT_ID.test(point) || !(r.LVM2_LV_TAGS ?? '').split(',').includes(snapshotTag(replica))) continue;
      // lvs says `invalid` of a thick snapshot that overflowed; of a thin one, which cannot, `unknown`.
      const flag = r.LVM2_LV_SNAPSHOT_INVALID ?? '';
      // lvs -a may list a snapshot twice (with its hidden exception store).
      if (current!.snapshots.some((s) => s.point === point)) continue;
      current!.snapshots.push({ point, valid: ['', '0', 'unknown', '-1'].includes(flag) });
    } else if (current && !current.row) {
      current.row = fields(text, bad);
    } else {
      bad(`unexpected line ${JSON.stringify(text.slice(0, 80))}`);
    }
  }
  finish();
  for (const v of volumes) (v.snapshots as VolumeSnapshot[]).sort((a, b) => a.point.localeCompare(b.point));
  return { plain, volumes };
}

/** lvs --nameprefixes: KEY='value' pairs. */
function fields(text: string, bad: (p: string) => never): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(LVM2_[A-Z_]+)='([^']*)'/g;
  let m: RegExpExecArray | null;
  let seen = 0;
  while ((m = re.exec(text))) {
    out[m[1]!] = m[2]!;
    seen += m[0].length;
  }
  if (seen === 0) bad(`not an lvs row: ${JSON.stringify(text.slice(0, 80))}`);
  return out;
}
