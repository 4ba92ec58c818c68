import { posix } from 'node:path';
import { RmmError } from '../../errors.js';
import { readDiskLayout } from '../../observe/layout.js';
import { readConfigFiles, type ConfigFiles } from '../../observe/config-files.js';
import type { DisksMount, DisksPlan, PlannedFixupFile, PointFileChange } from '../../plan/action.js';
import { disksPaths, landingFingerprint } from '../../plan/disks.js';
import type { LayoutStep } from '../../plan/layout.js';
import { LANDING_TOOLS } from '../../plan/tools.js';
import { parseRecord, readRecord, recordPath, writeRecord, type RecoveryPoint, type ReplicaRecord } from '../../record/record.js';
import type { TargetInventory } from '../../record/rebuild.js';
import type { CopyUnit } from '../../snapshot/select.js';
import type { RemoteHost } from '../../transport/index.js';
import { FIXUP_SCRIPT, fixupFailure, KEPT_FIXUP_SCRIPT, PRESENT_SCRIPT, rewriteFiles } from '../fixup-files.js';
import { ADAPTED_FILE, formatAdapted, parseAdapted, type AdaptedReplica } from './adapted.js';
import type { PointConfig, TargetDriver, TargetObservation } from '../driver.js';
import { BOOTLOADER, INITRAMFS, MOUNT, UNMOUNT } from './scripts.js';
import { ATTACH, parseAttach, PRUNE, ROLLBACK, SNAPSHOT, type LandingVolume } from './volumes.js';
import type { PlannedVolume } from '../../plan/action.js';

const NONE: ConfigFiles = { files: [], refused: [] };

// $1 the record file, then tool names: the tools found, then the record if any.
const OBSERVE = `f=$1; shift
for t in "$@"; do command -v "$t" >/dev/null 2>&1 && printf 'tool %s\\n' "$t"; done
if [ -e "$f" ]; then echo @@rmm:record; exec cat -- "$f"; fi
echo @@rmm:none`;

/**
 * A replica written onto block devices of its landing host, laid out like the origin's. The record
 * lives on the landing host (/var/lib/rmm/replicas/NAME); the copy is mounted below
 * /run/rmm-replica.NAME while a sync writes it, and made bootable in a chroot there.
 */
export class DisksTarget implements TargetDriver {
  readonly kind = 'disks';
  readonly #paths;

  constructor(
    private readonly host: RemoteHost,
    private readonly replica: string,
    /** The landing devices the spec names. */
    private readonly devices: readonly string[] = [],
  ) {
    this.#paths = disksPaths(replica);
  }

  get lockFile(): string {
    return posix.join(this.#paths.record, '.rmm', 'lock');
  }

  get flushDir(): string {
    return this.#paths.mountRoot;
  }

  get #originals(): string {
    return posix.join(this.#paths.record, '.rmm', 'originals');
  }

  async observe(): Promise<TargetObservation> {
    const file = recordPath(this.#paths.record);
    const res = await this.host.exec(['sh', '-c', OBSERVE, 'rmm-observe', file, ...LANDING_TOOLS], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
    if (res.exitCode !== 0) throw new RmmError('record.unreadable', `cannot read ${file} on ${this.host.info.host}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
    const [head = '', ...rest] = res.stdout.split('@@rmm:record\n');
    const lines = head.split('\n');
    const record = rest.length > 0 ? parseRecord(rest.join('@@rmm:record\n'), `${this.host.info.host}:${file}`) : undefined;
    const tools = Object.fromEntries(LANDING_TOOLS.map((t) => [t, lines.includes(`tool ${t}`)]));
    // Attached first: the layout then reads the partitions and volume groups inside the volumes.
    const volumes = await this.attachVolumes();
    return { record, tools, layout: await readDiskLayout(this.host), volumes };
  }

  /**
   * The named landing devices that are logical volumes, each attached as a loop device with its
   * partitions (already attached: found again), with rmm's snapshots of it. Writes no device.
   */
  async attachVolumes(): Promise<LandingVolume[]> {
    if (this.devices.length === 0) return [];
    const out = await this.run(ATTACH, 'rmm-attach', this.devices, 'landing.attach_failed', 'attaching the landing volumes', 5 * 60_000);
    return parseAttach(out, this.host.info.host, this.replica).volumes;
  }

  /** Each volume's snapshot holding recovery point `point`, replacing one a stopped run left. */
  async snapshotVolumes(point: string, volumes: readonly PlannedVolume[]): Promise<void> {
    const args = volumes.flatMap((v) => [v.vg, v.lv, v.thin ? '1' : '0']);
    await this.run(SNAPSHOT, 'rmm-snapshot', [this.replica, point, ...args], 'landing.snapshot_failed', `snapshotting the landing volumes as recovery point ${point}`, 10 * 60_000);
  }

  /** Unmounts the copy, detaches the volumes and merges their snapshots of `point` back: the disks are that point again. */
  async rollbackVolumes(mountRoot: string, point: string, volumes: readonly PlannedVolume[]): Promise<void> {
    const args = volumes.flatMap((v) => [v.vg, v.lv]);
    await this.run(ROLLBACK, 'rmm-rollback', [mountRoot, point, ...args], 'landing.rollback_failed', `merging the landing volumes' snapshots of recovery point ${point} back`, 60 * 60_000);
  }

  /** Removes the volumes' snapshots of these points (only those tagged rmm_REPLICA). */
  async pruneSnapshots(points: readonly string[], volumes: readonly PlannedVolume[]): Promise<void> {
    if (points.length === 0 || volumes.length === 0) return;
    await this.run(PRUNE, 'rmm-prune', [this.replica, ...points, '--', ...volumes.flatMap((v) => [v.vg, v.lv])], 'landing.prune_failed', 'removing old snapshots of the landing volumes', 10 * 60_000);
  }

  readRecord(): Promise<ReplicaRecord | undefined> {
    return readRecord(this.host, this.#paths.record);
  }

  writeRecord(record: ReplicaRecord): Promise<void> {
    return writeRecord(this.host, this.#paths.record, record);
  }

  /** Refuses when a landing disk no longer holds what the plan saw: its layout steps were made for that. */
  async assertLanding(plan: DisksPlan): Promise<void> {
    // A loop device's number is the landing host's to give: after a restart it may back another volume.
    const attached = plan.volumes && plan.volumes.length > 0 ? await this.attachVolumes() : [];
    for (const v of plan.volumes ?? []) {
      const loop = attached.find((a) => a.path === v.path)?.loop;
      if (loop !== v.loop) throw new RmmError('replica.moved', `landing volume ${v.path} on ${this.host.info.host} is attached as ${loop ?? 'nothing'} now, not ${v.loop} as planned; nothing was written, plan again`);
    }
    const now = await readDiskLayout(this.host);
    for (const [disk, seen] of Object.entries(plan.landingSeen)) {
      if (landingFingerprint(now, disk) !== seen) throw new RmmError('replica.moved', `landing disk ${disk} on ${this.host.info.host} changed since the plan; nothing was written, plan again`);
    }
  }

  /** One command of the layout, exactly as the plan showed it. */
  async layout(step: LayoutStep): Promise<void> {
    const res = await this.host.exec([...step.argv], { sudo: true, allowFailure: true, timeoutMs: 30 * 60_000, ...(step.stdin !== undefined ? { stdin: step.stdin } : {}) });
    if (res.exitCode !== 0) throw new RmmError('layout.failed', `${this.host.info.host}: ${step.detail} failed: ${res.stderr.trim().split('\n').slice(-3).join(' | ') || `exit ${res.exitCode}`}`);
  }

  /** Mounts the copy's filesystems as the origin mounts them, below the mount root (what a killed run left mounted is unmounted first). */
  async mount(mountRoot: string, mounts: readonly DisksMount[]): Promise<void> {
    const args = mounts.flatMap((m) => [m.device, m.relativePath || '.', m.fsType, m.volumeGroup ?? '']);
    await this.run(MOUNT, 'rmm-mount', [mountRoot, ...args], 'mount.failed', 'mounting the copy', 10 * 60_000);
  }

  async unmount(mountRoot: string): Promise<void> {
    await this.run(UNMOUNT, 'rmm-unmount', [mountRoot], 'mount.failed', 'unmounting the copy', 10 * 60_000);
  }

  /** GRUB for the target's firmware; then the kernels not in `originKernels` (when one of them is in the copy) removed. Returns those removed. */
  async bootloader(plan: DisksPlan, originKernels: readonly string[]): Promise<string[]> {
    const b = plan.boot;
    const out = await this.run(BOOTLOADER, 'rmm-bootloader', [plan.mountRoot, b.firmware, b.disk, b.efiDirectory ?? '', ...originKernels], 'boot.failed', 'installing the bootloader in the copy', 30 * 60_000);
    return out.split('\n').flatMap((l) => (l.startsWith('removed ') ? [l.slice('removed '.length)] : []));
  }

  /** Returns false when nothing the initramfs is made of changed since the last sync made it: nothing was rebuilt. */
  async initramfs(plan: DisksPlan): Promise<boolean> {
    const stamp = posix.join(this.#paths.record, '.rmm', 'initramfs.stamp');
    const out = await this.run(INITRAMFS, 'rmm-initramfs', [stamp, plan.mountRoot, ...plan.drivers], 'boot.failed', "rebuilding the copy's initramfs", 60 * 60_000);
    return out.trim() !== 'unchanged';
  }

  private async run(script: string, name: string, args: readonly string[], code: string, what: string, timeoutMs: number): Promise<string> {
    const res = await this.host.exec(['sh', '-c', script, name, ...args], { sudo: true, allowFailure: true, timeoutMs });
    if (res.exitCode !== 0) throw new RmmError(code, `${this.host.info.host}: ${what} failed: ${res.stderr.trim().split('\n').slice(-4).join(' | ') || `exit ${res.exitCode}`}`);
    return res.stdout;
  }

  async prepareCopy(): Promise<void> {}

  copyDir(unit: CopyUnit): string {
    return unit.relativePath === '' ? this.#paths.mountRoot : posix.join(this.#paths.mountRoot, unit.relativePath);
  }

  pointDir(): string {
    throw new RmmError('apply.bad_plan', 'a disks replica has no recovery point folders');
  }

  /** A new filesystem holds lost+found and the folders other filesystems are mounted on: no file yet. */
  async isEmpty(dir: string): Promise<boolean> {
    const res = await this.host.exec(['find', dir, '-xdev', '-mindepth', '1', '!', '-type', 'd', '-print', '-quit'], { sudo: true, allowFailure: true });
    return res.exitCode === 0 && res.stdout.trim() === '';
  }

  async unshare(): Promise<void> {}

  async currentIs(): Promise<boolean> {
    return true;
  }

  async promote(): Promise<void> {}

  async demote(_id: string, _previous: RecoveryPoint | undefined): Promise<void> {}

  async restore(): Promise<void> {}

  async prune(): Promise<void> {}

  /**
   * The fixups in the mounted copy; the origin's texts are kept beside the record, from this sync
   * only. `kept`: the origin's texts of the files this sync kept out of its copy (src/apply/kept-fixups.ts),
   * written over the last sync's adapted files.
   */
  async applyFixups(files: readonly PlannedFixupFile[], kept: ReadonlyMap<string, string> = new Map()): Promise<void> {
    await this.host.exec(['rm', '-rf', '--', this.#originals], { sudo: true });
    for (const file of files) {
      const origin = kept.get(file.path);
      if (origin !== undefined && file.text !== undefined) {
        await this.host.exec(['sh', '-c', 'mkdir -p -- "${1%/*}" && cat > "$1.rmm-new" && mv -f -- "$1.rmm-new" "$1"', 'rmm-original', this.#originals + file.path], { sudo: true, stdin: origin });
        const res = await this.host.exec(['sh', '-c', KEPT_FIXUP_SCRIPT, 'rmm-fixup', this.#paths.mountRoot, file.path, file.renamedTo ?? ''], { sudo: true, allowFailure: true, stdin: file.text });
        fixupFailure(this.host, res, file.path, 'the copy', 'the origin changed it after the plan');
        continue;
      }
      const args = [this.#paths.mountRoot, this.#originals, file.path, file.before, file.renamedTo ?? '', file.text === undefined ? 'keep' : 'write'];
      const res = await this.host.exec(['sh', '-c', FIXUP_SCRIPT, 'rmm-fixup', ...args], { sudo: true, allowFailure: true, ...(file.text !== undefined ? { stdin: file.text } : {}) });
      fixupFailure(this.host, res, file.path, 'the copy', 'the origin changed it after the plan');
    }
  }

  /** Of these paths, those the mounted copy holds as regular files, reached through no symbolic link. */
  async regularFiles(paths: readonly string[]): Promise<Set<string>> {
    if (paths.length === 0) return new Set();
    const res = await this.host.exec(['sh', '-c', PRESENT_SCRIPT, 'rmm-present', this.#paths.mountRoot, ...paths], { sudo: true, timeoutMs: 60_000 });
    return new Set(res.stdout.split('\0').filter((p) => paths.includes(p)));
  }

  get #adaptedFile(): string {
    return posix.join(this.#paths.record, '.rmm', ADAPTED_FILE);
  }

  /**
   * After the fixups of a sync (the copy mounted): what a fixup re-run needs, kept beside the record.
   * The configuration files are read from the copy as it holds them now.
   */
  async keepAdapted(point: string, plan: DisksPlan): Promise<void> {
    const files = await readConfigFiles(this.host, this.#paths.mountRoot);
    await this.writeAdapted({ point, mounts: plan.mounts, devices: plan.fixupDevices, files });
  }

  private async writeAdapted(adapted: AdaptedReplica): Promise<void> {
    await this.host.writeFileAtomic(this.#adaptedFile, formatAdapted(adapted), { sudo: true, mode: 0o600 });
  }

  /** Why not, when there is none or it is out of shape: the plan then copies again. */
  async readAdapted(): Promise<AdaptedReplica | { invalid: string }> {
    const res = await this.host.exec(['cat', '--', this.#adaptedFile], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
    if (res.exitCode !== 0) return { invalid: /No such file/.test(res.stderr) ? 'none is kept (made by a sync of an rmm that kept none)' : res.stderr.trim() };
    return parseAdapted(res.stdout);
  }

  /** The replica's configuration files as its last sync (or fixup re-run) left them, and the origin's texts of those its fixups changed. */
  async readPointConfig(point: string): Promise<PointConfig> {
    const adapted = await this.readAdapted();
    if ('invalid' in adapted) return { point: '', files: NONE, originals: NONE, unavailable: `${this.host.info.host}:${this.#adaptedFile}: ${adapted.invalid}` };
    if (adapted.point !== point) return { point: adapted.point, files: NONE, originals: NONE };
    const originals = await readConfigFiles(this.host, this.#originals);
    return { point, files: adapted.files, originals, disks: { mounts: adapted.mounts, devices: adapted.devices } };
  }

  /** Rewrites the mounted copy's files as the re-run's plan says, each only if it is what the plan read; then keeps what it holds now. */
  async rewritePoint(point: string, changes: readonly PointFileChange[]): Promise<void> {
    const adapted = await this.readAdapted();
    if ('invalid' in adapted || adapted.point !== point) throw new RmmError('replica.moved', `${this.host.info.host}: ${this.#adaptedFile} no longer describes recovery point ${point}; plan again`);
    await rewriteFiles(this.host, this.#paths.mountRoot, this.#originals, changes, 'the replica');
    await this.writeAdapted({ ...adapted, files: await readConfigFiles(this.host, this.#paths.mountRoot) });
  }

  inventory(): Promise<TargetInventory> {
    throw new RmmError('target.unsupported', 'rmm repair is for directory replicas');
  }

  replaceRecord(): Promise<string> {
    throw new RmmError('target.unsupported', 'rmm repair is for directory replicas');
  }
}

/** The driver of a step that only a disks target has; any other is a plan this rmm did not make. */
export function disksDriver(driver: TargetDriver, replica: string): DisksTarget {
  if (!(driver instanceof DisksTarget)) throw new RmmError('apply.bad_plan', `replica ${replica}: a disks step for a ${driver.kind} target`);
  return driver;
}
