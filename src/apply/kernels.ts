import { posix } from 'node:path';
import type { PlannedUnit } from '../plan/action.js';
import type { SnapshotView } from '../snapshot/take.js';
import type { RemoteHost } from '../transport/index.js';
import { unitHolding } from './kept-fixups.js';

/** What a kernel version may be called: it becomes a file name in the replica. */
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

/**
 * The kernels the origin has (the versions of its /boot/vmlinuz-*), read from the held view of the
 * filesystem that holds /boot; undefined when `unit` is not that filesystem. A name that is not a
 * plain version is left out, and a listing that fails gives none: the bootloader step then removes
 * no kernel.
 */
export async function originKernels(origin: RemoteHost, view: SnapshotView, unit: PlannedUnit, units: readonly PlannedUnit[]): Promise<string[] | undefined> {
  if (unitHolding('/boot/vmlinuz', units) !== unit) return undefined;
  const boot = posix.join(view.sourcePath, posix.relative(unit.fs.mountPoint, '/boot'));
  const res = await origin.exec(['find', boot, '-maxdepth', '1', '-type', 'f', '-name', 'vmlinuz-*', '-printf', '%f\\n'], { sudo: true, allowFailure: true, timeoutMs: 60_000 });
  if (res.exitCode !== 0) return [];
  return parseKernels(res.stdout);
}

/** `vmlinuz-VERSION` lines -> the versions, sorted; anything else is dropped. */
export function parseKernels(listing: string): string[] {
  const versions = listing
    .split('\n')
    .filter((l) => l.startsWith('vmlinuz-'))
    .map((l) => l.slice('vmlinuz-'.length))
    .filter((v) => VERSION.test(v));
  return [...new Set(versions)].sort();
}
