import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Lab } from './lab/lab.js';

export interface LabSpecOptions {
  replica?: string;
  transfer?: 'direct' | 'relay';
  knownHosts?: string;
  user?: string;
  policy?: Record<string, unknown>;
  exclude?: { volumes?: string[]; mounts?: string[]; paths?: string[] };
  hooks?: Record<string, unknown[]>;
  /** More connection settings for every host (heartbeatTimeout, ...). */
  connection?: Record<string, unknown>;
  /** More fields of the Environment's and the Replica's spec (ipRemap, fixups, ...). */
  environment?: Record<string, unknown>;
  replicaSpec?: Record<string, unknown>;
  /** The target's folder for replicas: /srv/replicas (xfs) unless given; the lab's /srv/snapshots is btrfs. */
  targetPath?: string;
}

/** Writes an estate that replicates the lab origin to the lab target; returns the file's path. */
export function writeLabSpec(lab: Lab, opts: LabSpecOptions = {}): string {
  const replica = opts.replica ?? 'origin-copy';
  const exclude = opts.exclude ?? { mounts: ['/u02'], paths: ['/var/tmp/*'] };
  const docs = [
    {
      apiVersion: 'rmm/v1',
      kind: 'Defaults',
      spec: {
        connection: {
          user: opts.user ?? 'rmm',
          sudo: true,
          auth: { keyFile: lab.clientKey },
          knownHostsFile: opts.knownHosts ?? lab.knownHosts,
          ...opts.connection,
        },
      },
    },
    { apiVersion: 'rmm/v1', kind: 'Origin', metadata: { name: 'origin' }, spec: { address: lab.hosts.origin.address, exclude } },
    {
      apiVersion: 'rmm/v1',
      kind: 'Environment',
      metadata: { name: 'lab' },
      spec: { transfer: opts.transfer ?? 'direct', hosts: [{ name: 'target', address: lab.hosts.target.address, path: opts.targetPath ?? '/srv/replicas' }], ...opts.environment },
    },
    ...(opts.policy ? [{ apiVersion: 'rmm/v1', kind: 'Policy', metadata: { name: 'test-policy' }, spec: opts.policy }] : []),
    { apiVersion: 'rmm/v1', kind: 'Replica', metadata: { name: replica }, spec: { origin: 'origin', environment: 'lab', ...(opts.policy ? { policy: 'test-policy' } : {}), ...(opts.hooks ? { hooks: opts.hooks } : {}), ...opts.replicaSpec } },
  ];
  const dir = mkdtempSync(path.join(tmpdir(), 'rmm-spec-'));
  const file = path.join(dir, 'lab.yaml');
  // JSON is YAML: documents joined by '---'.
  writeFileSync(file, docs.map((d) => JSON.stringify(d, null, 2)).join('\n---\n'));
  return file;
}
