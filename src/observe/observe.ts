import type { Replica, Spec } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { OriginFacts } from './facts.js';
import { wantsFixups, wantsRefixup } from '../fixup/inputs.js';
import { readConfigFiles, type ConfigFiles } from './config-files.js';
import { discoverOrigin } from './origin.js';
import { readDiskLayout, type DiskLayout } from './layout.js';
import { targetDriver, type TargetObservation } from '../target/index.js';
import type { SessionPool } from '../transport/index.js';
import { endpointSession } from '../apply/sessions.js';
import { mapBounded } from '../util/bounded.js';

/** What one replica looks like in the world right now. */
export interface ObservedReplica {
  readonly replica: string;
  /** `layout`: the origin's disks, read for replicas whose target is disks. */
  readonly origin: { readonly facts: OriginFacts; readonly configFiles?: ConfigFiles; readonly layout?: DiskLayout } | ObserveError;
  readonly target: TargetObservation | ObserveError;
}

/** A host that could not be read: the cause, and its code (`record.damaged`, `ssh.connect_failed`, ...). */
export interface ObserveError {
  readonly error: string;
  readonly code?: string;
}

export interface Observed {
  readonly at: string;
  readonly replicas: ReadonlyMap<string, ObservedReplica>;
}

/** Reads every replica's origin and target, hosts in parallel with a bound. Read-only. */
export async function observe(spec: Spec, pool: SessionPool, opts: { parallelism: number; trustNewHostKeys: boolean }): Promise<Observed> {
  const results = await mapBounded(spec.replicas, opts.parallelism, (r) => observeReplica(r, pool, opts.trustNewHostKeys));
  return { at: new Date().toISOString(), replicas: new Map(results.map((o) => [o.replica, o])) };
}

export async function observeReplica(replica: Replica, pool: SessionPool, trustNewHostKeys: boolean): Promise<ObservedReplica> {
  const [origin, target] = await Promise.all([
    endpointSession(pool, replica.origin.endpoint, trustNewHostKeys)
      .then(async (s) => {
        const facts = await discoverOrigin(s, replica.origin.root);
        const layout = replica.environment.targetKind === 'disks' ? { layout: await readDiskLayout(s) } : {};
        // The files the fixups rewrite, read only for replicas that get fixups: the plan shows their diffs.
        if (!wantsFixups(replica)) return { facts, ...layout };
        return { facts, configFiles: await readConfigFiles(s, replica.origin.root), ...layout };
      })
      .catch(observeError),
    endpointSession(pool, replica.target.endpoint, trustNewHostKeys)
          .then(async (s) => {
            const driver = targetDriver(replica, s);
            const seen = await driver.observe();
            // The current point's files, read only when the plan may re-run its fixups (a changed ipRemap).
            const point = wantsRefixup(replica, seen.record);
            return point ? { ...seen, pointConfig: await driver.readPointConfig(point.id) } : seen;
          })
          .catch(observeError),
  ]);
  return { replica: replica.name, origin, target };
}

function observeError(err: unknown): ObserveError {
  return { error: err instanceof Error ? err.message : String(err), ...(err instanceof RmmError ? { code: err.code } : {}) };
}
