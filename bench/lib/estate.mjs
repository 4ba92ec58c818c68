// rmm estates for the bench: JSON documents (JSON is YAML) joined by '---', as test/support/lab-spec.ts does.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * One origin filesystem (`root`, a mount point on the lab origin) replicated to the lab target's
 * /srv/replicas/<replica> (xfs; `targetPath` /srv/snapshots: btrfs). Connection as root by default, like the rsync and tar baselines.
 */
export function writeEstate(dir, lab, { replica, root, excludePaths = [], transfer = 'direct', user = 'root', sudo = false, parallelStreams, targetPath = '/srv/replicas' }) {
  const info = lab.info;
  const docs = [
    defaults(info, user, sudo),
    { apiVersion: 'rmm/v1', kind: 'Origin', metadata: { name: 'origin' }, spec: { address: info.hosts.origin.address, root, ...(excludePaths.length ? { exclude: { paths: excludePaths } } : {}) } },
    environment(info, transfer, targetPath),
    ...(parallelStreams ? [{ apiVersion: 'rmm/v1', kind: 'Policy', metadata: { name: 'bench' }, spec: { parallelStreams } }] : []),
    { apiVersion: 'rmm/v1', kind: 'Replica', metadata: { name: replica }, spec: { origin: 'origin', environment: 'lab', ...(parallelStreams ? { policy: 'bench' } : {}) } },
  ];
  return save(dir, `${replica}.yaml`, docs);
}

/**
 * `count` replicas of the lab origin's `root`, each its own Origin document (same address) and its
 * own folder on the target. With `users`, replica i connects as users[i % users.length] on both
 * hosts, so the session pool (one connection per user@host:port) opens that many connections.
 */
export function writeManyEstate(dir, lab, { count, root, users }) {
  const info = lab.info;
  const name = (i) => `r${String(i).padStart(5, '0')}`;
  const docs = [defaults(info, 'root', false)];
  const hosts = users ? users.map((u, k) => ({ name: `target-${k}`, address: info.hosts.target.address, path: '/srv/replicas/many', connection: conn(u) })) : [{ name: 'target', address: info.hosts.target.address, path: '/srv/replicas/many' }];
  docs.push({ apiVersion: 'rmm/v1', kind: 'Environment', metadata: { name: 'lab' }, spec: { transfer: 'direct', hosts } });
  for (let i = 0; i < count; i++) {
    const user = users?.[i % users.length];
    docs.push({ apiVersion: 'rmm/v1', kind: 'Origin', metadata: { name: `o-${name(i)}` }, spec: { address: info.hosts.origin.address, root, ...(user ? { connection: conn(user) } : {}) } });
    docs.push({ apiVersion: 'rmm/v1', kind: 'Replica', metadata: { name: name(i) }, spec: { origin: `o-${name(i)}`, environment: 'lab', ...(users ? { host: `target-${i % users.length}` } : {}) } });
  }
  return save(dir, `many-${count}${users ? `-users-${users.length}` : ''}.yaml`, docs);

  function conn(u) {
    return { user: u, sudo: true };
  }
}

function defaults(info, user, sudo) {
  return {
    apiVersion: 'rmm/v1',
    kind: 'Defaults',
    spec: { connection: { user, sudo, auth: { keyFile: info.clientKey }, knownHostsFile: info.knownHosts } },
  };
}

function environment(info, transfer, targetPath = '/srv/replicas') {
  return { apiVersion: 'rmm/v1', kind: 'Environment', metadata: { name: 'lab' }, spec: { transfer, hosts: [{ name: 'target', address: info.hosts.target.address, path: targetPath }] } };
}

function save(dir, name, docs) {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, docs.map((d) => JSON.stringify(d, null, 1)).join('\n---\n'));
  return file;
}
