import type { Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';
import { DirectoryTarget } from './directory/driver.js';
import { DisksTarget } from './disks/driver.js';
import type { TargetDriver } from './driver.js';

export type { TargetDriver, TargetObservation } from './driver.js';

/** The driver for a replica's kind of target, on its landing host. */
export function targetDriver(replica: Replica, host: RemoteHost): TargetDriver {
  if (replica.environment.targetKind === 'directory' && replica.target.path !== undefined) return new DirectoryTarget(host, replica.target.path);
  if (replica.environment.targetKind === 'disks') return new DisksTarget(host, replica.name, (replica.target.disks ?? []).map((m) => m.target));
  throw new RmmError('target.unsupported', `replica ${replica.name}: a directory target needs a path`);
}
