import type { Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';
import { DirectoryTarget } from './directory/driver.js';
import type { TargetDriver } from './driver.js';

export type { TargetDriver, TargetObservation } from './driver.js';

/** The driver for a replica's kind of target, on its landing host. */
export function targetDriver(replica: Replica, host: RemoteHost): TargetDriver {
  if (replica.environment.targetKind === 'directory' && replica.target.path !== undefined) return new DirectoryTarget(host, replica.target.path);
  throw new RmmError('target.unsupported', 'disks targets are not supported yet');
}
