import { homedir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSources } from '../../src/config/load.js';
import { MANUAL_POLICY } from '../../src/config/resolve.js';
import { readSources, type SourceFile } from '../../src/config/source.js';
import { DEFAULT_CIPHERS, type Replica, type Spec } from '../../src/config/spec.js';

const splitEstate = path.resolve(import.meta.dirname, '../fixtures/estate-split');

/** Loads in-memory files; each may claim its own folder, against which its relative paths resolve. */
function load(...files: SourceFile[]): Spec {
  const result = loadSources(files);
  if (result.diagnostics.length > 0 || !result.spec) {
    throw new Error(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column}: ${d.field}: ${d.message}`).join('\n'));
  }
  return result.spec;
}

function file(name: string, baseDir: string, ...documents: string[]): SourceFile {
  return { name, baseDir, text: documents.join('---\n') };
}

function replica(spec: Spec, name: string): Replica {
  const found = spec.replicas.find((r) => r.name === name);
  if (!found) throw new Error(`no replica ${name}`);
  return found;
}

const origin = (name: string, address: string, extra = ''): string =>
  `apiVersion: rmm/v1\nkind: Origin\nmetadata: { name: ${name} }\nspec:\n  address: ${address}\n${extra}`;
const environment = (extra = ''): string =>
  `apiVersion: rmm/v1\nkind: Environment\nmetadata: { name: dr }\nspec:\n  hosts:\n    - name: store-01\n      address: 172.20.9.10\n      path: /srv/replicas\n${extra}`;
const replicaDoc = (name: string, originName: string, extra = ''): string =>
  `apiVersion: rmm/v1\nkind: Replica\nmetadata: { name: ${name} }\nspec:\n  origin: ${originName}\n  environment: dr\n${extra}`;

describe('without Defaults', () => {
  it('uses the built-in settings', () => {
    const spec = load(file('estate.yaml', '/etc/rmm', origin('web-01', '10.1.2.11'), environment(), replicaDoc('web-01-dr', 'web-01')));
    const r = replica(spec, 'web-01-dr');
    expect(r.mode).toBe('dr');
    expect(r.policy).toEqual(MANUAL_POLICY);
    expect(r.origin.endpoint).toEqual({
      name: 'web-01',
      address: '10.1.2.11',
      port: 22,
      user: 'root',
      sudo: false,
      auth: { kind: 'default' },
      knownHostsFile: path.join(homedir(), '.ssh/known_hosts'),
      ciphers: DEFAULT_CIPHERS,
      connectTimeoutMs: 15_000,
      heartbeatTimeoutMs: 30_000,
    });
    expect(r.target.path).toBe('/srv/replicas/web-01-dr');
    expect(r.exclude).toEqual({ volumes: [], mounts: [], paths: [] });
  });
});

describe('target folders', () => {
  it('are written without double or trailing slashes, whether the replica names its own or takes the host\'s', () => {
    const host = `apiVersion: rmm/v1\nkind: Environment\nmetadata: { name: dr }\nspec:\n  hosts:\n    - name: store-01\n      address: 172.20.9.10\n      path: /srv//replicas/\n`;
    const spec = load(
      file('estate.yaml', '/etc/rmm', origin('web-01', '10.1.2.11'), origin('web-02', '10.1.2.12'), host),
      file('replicas.yaml', '/etc/rmm', replicaDoc('web-01-dr', 'web-01'), replicaDoc('web-02-dr', 'web-02', '  path: /var/lib//rmm/web-02/\n')),
    );
    expect(replica(spec, 'web-01-dr').target.path).toBe('/srv/replicas/web-01-dr');
    expect(replica(spec, 'web-02-dr').target.path).toBe('/var/lib/rmm/web-02');
  });
});

describe('Defaults inheritance', () => {
  const defaults = `apiVersion: rmm/v1
kind: Defaults
spec:
  connection:
    port: 2200
    user: rmm
    sudo: true
    auth: { keyFile: keys/rmm_ed25519, passphraseEnv: RMM_PASS }
    knownHostsFile: ./known_hosts
    ciphers: [aes256-gcm@openssh.com]
    connectTimeout: 30s
    heartbeatTimeout: 45s
  mode: backup
  policy: nightly
`;
  const policies = `apiVersion: rmm/v1
kind: Policy
metadata: { name: nightly }
spec: { schedule: { cron: "30 1 * * *" } }
---
apiVersion: rmm/v1
kind: Policy
metadata: { name: hourly }
spec: { schedule: { interval: 1h } }
`;
  const spec = load(
    file('defaults.yaml', '/etc/rmm', defaults),
    file(
      'estate.yaml',
      '/srv/estate',
      policies,
      origin('plain', '10.1.2.11'),
      origin('own', '10.1.2.12', '  connection:\n    port: 22\n    user: admin\n    auth: { agent: true }\n    knownHostsFile: hosts\n'),
      environment(),
      replicaDoc('plain-dr', 'plain'),
      replicaDoc('own-dr', 'own', '  mode: dr\n  policy: hourly\n'),
    ),
  );

  it('fills every connection field an origin leaves out', () => {
    expect(replica(spec, 'plain-dr').origin.endpoint).toEqual({
      name: 'plain',
      address: '10.1.2.11',
      port: 2200,
      user: 'rmm',
      sudo: true,
      auth: { kind: 'keyFile', path: '/etc/rmm/keys/rmm_ed25519', passphraseEnv: 'RMM_PASS' },
      knownHostsFile: '/etc/rmm/known_hosts',
      ciphers: ['aes256-gcm@openssh.com'],
      connectTimeoutMs: 30_000,
      heartbeatTimeoutMs: 45_000,
    });
  });

  it('lets each field an origin sets win, one by one, keeping the rest', () => {
    expect(replica(spec, 'own-dr').origin.endpoint).toEqual({
      name: 'own',
      address: '10.1.2.12',
      port: 22,
      user: 'admin',
      sudo: true,
      auth: { kind: 'agent' },
      knownHostsFile: '/srv/estate/hosts',
      ciphers: ['aes256-gcm@openssh.com'],
      connectTimeoutMs: 30_000,
      heartbeatTimeoutMs: 45_000,
    });
  });

  it('applies to landing hosts too', () => {
    expect(replica(spec, 'plain-dr').target.endpoint).toMatchObject({ name: 'store-01', port: 2200, user: 'rmm', sudo: true });
  });

  it('gives the mode and policy to replicas that name none', () => {
    expect(replica(spec, 'plain-dr').mode).toBe('backup');
    expect(replica(spec, 'plain-dr').policy.name).toBe('nightly');
    expect(replica(spec, 'own-dr').mode).toBe('dr');
    expect(replica(spec, 'own-dr').policy).toMatchObject({ name: 'hourly', schedule: { kind: 'interval', intervalMs: 3_600_000 } });
  });
});

describe('merging', () => {
  it('adds up the exclusions of the defaults, the origin and the replica, without repeats', () => {
    const spec = load(
      file(
        'estate.yaml',
        '/etc/rmm',
        'apiVersion: rmm/v1\nkind: Defaults\nspec:\n  exclude: { paths: [/tmp/*], volumes: [vg0/lv_scratch] }\n',
        origin('web-01', '10.1.2.11', '  exclude: { paths: [/var/cache/*, /tmp/*], mounts: [/mnt/nfs] }\n'),
        environment(),
        replicaDoc('web-01-dr', 'web-01', '  exclude: { mounts: [/u02, /mnt/nfs], paths: ["*.swp"] }\n'),
      ),
    );
    expect(replica(spec, 'web-01-dr').exclude).toEqual({
      volumes: ['vg0/lv_scratch'],
      mounts: ['/mnt/nfs', '/u02'],
      paths: ['/tmp/*', '/var/cache/*', '*.swp'],
    });
  });

  it("runs the defaults' hooks of a phase before the replica's", () => {
    const spec = load(
      file(
        'estate.yaml',
        '/etc/rmm',
        'apiVersion: rmm/v1\nkind: Defaults\nspec:\n  hooks:\n    preSnapshot: [{ command: [first] }, { command: [second] }]\n    postSync: [{ command: [only] }]\n',
        origin('web-01', '10.1.2.11'),
        environment(),
        replicaDoc('web-01-dr', 'web-01', '  hooks:\n    preSnapshot: [{ command: [third], on: target, timeout: 30s }]\n'),
      ),
    );
    const hooks = replica(spec, 'web-01-dr').hooks;
    expect(hooks.preSnapshot.map((h) => h.command?.[0])).toEqual(['first', 'second', 'third']);
    expect(hooks.preSnapshot[2]).toEqual({ command: ['third'], on: 'target', timeoutMs: 30_000, sudo: false, continueOnError: false });
    expect(hooks.postSync.map((h) => h.command?.[0])).toEqual(['only']);
    expect(hooks.preFailover).toEqual([]);
  });

  it("puts the replica's address rules first and lets its other ipRemap settings replace the environment's", () => {
    const spec = load(
      file(
        'estate.yaml',
        '/etc/rmm',
        origin('web-01', '10.1.2.11'),
        origin('web-02', '10.1.2.12'),
        environment(
          '  ipRemap:\n    networks: [{ from: 10.1.0.0/16, to: 172.20.0.0/16 }]\n    addresses: [{ from: 10.1.2.11, to: 172.20.2.111 }]\n' +
            '    gateway: 172.20.0.1\n    dns: [172.20.0.53]\n    searchDomains: [dr.example.com]\n',
        ),
        replicaDoc(
          'web-01-dr',
          'web-01',
          '  ipRemap:\n    addresses: [{ from: 10.1.2.11, to: 172.20.2.11 }]\n    dns: [172.20.0.54]\n    hostname: web-dr-01\n',
        ),
        replicaDoc('web-02-dr', 'web-02'),
      ),
    );
    expect(replica(spec, 'web-01-dr').ipRemap).toEqual({
      networks: [{ from: '10.1.0.0/16', to: '172.20.0.0/16' }],
      addresses: [
        { from: '10.1.2.11', to: '172.20.2.11' },
        { from: '10.1.2.11', to: '172.20.2.111' },
      ],
      gateway: '172.20.0.1',
      dns: ['172.20.0.54'],
      searchDomains: ['dr.example.com'],
      hostname: 'web-dr-01',
    });
    expect(replica(spec, 'web-02-dr').ipRemap).toEqual({
      networks: [{ from: '10.1.0.0/16', to: '172.20.0.0/16' }],
      addresses: [{ from: '10.1.2.11', to: '172.20.2.111' }],
      gateway: '172.20.0.1',
      dns: ['172.20.0.53'],
      searchDomains: ['dr.example.com'],
    });
  });
});

describe('relative paths', () => {
  it('resolve against the folder of the YAML file that wrote them', () => {
    const spec = load(
      file('/etc/rmm/defaults.yaml', '/etc/rmm', 'apiVersion: rmm/v1\nkind: Defaults\nspec:\n  connection:\n    auth: { keyFile: keys/id }\n'),
      file('/srv/origins/web.yaml', '/srv/origins', origin('web-01', '10.1.2.11', '  connection: { knownHostsFile: ../known_hosts }\n')),
      file(
        '/srv/envs/dr.yaml',
        '/srv/envs',
        environment('      connection: { auth: { agent: sockets/agent.sock }, knownHostsFile: "~/dr_known_hosts" }\n'),
      ),
      file('/srv/replicas.yaml', '/srv', replicaDoc('web-01-dr', 'web-01')),
    );
    const r = replica(spec, 'web-01-dr');
    expect(r.origin.endpoint.auth).toEqual({ kind: 'keyFile', path: '/etc/rmm/keys/id' });
    expect(r.origin.endpoint.knownHostsFile).toBe('/srv/known_hosts');
    expect(r.target.endpoint.auth).toEqual({ kind: 'agent', socket: '/srv/envs/sockets/agent.sock' });
    expect(r.target.endpoint.knownHostsFile).toBe(path.join(homedir(), 'dr_known_hosts'));
    expect(r.source).toEqual({ file: '/srv/replicas.yaml', line: 1 });
  });

  it('resolve hook scripts against the folder of the file that names them', async () => {
    const { files, diagnostics } = await readSources([splitEstate]);
    const result = loadSources(files, diagnostics);
    expect(result.diagnostics).toEqual([]);
    const hooks = replica(result.spec!, 'db-01-dr').hooks;
    expect(hooks.preSnapshot[0]?.script).toBe(path.join(splitEstate, 'hooks/quiesce.sh'));
    expect(hooks.postSnapshot[0]?.script).toBe(path.join(splitEstate, 'hooks/thaw.sh'));
    expect(replica(result.spec!, 'web-02-dr').target.endpoint.knownHostsFile).toBe(path.join(splitEstate, 'known_hosts'));
    expect(replica(result.spec!, 'web-01-dr').target.endpoint.knownHostsFile).toBe(path.join(splitEstate, 'lyon_known_hosts'));
  });
});

describe('spec hash', () => {
  const hashOf = (replicaExtra: string, originExtra = ''): string =>
    replica(load(file('estate.yaml', '/etc/rmm', origin('web-01', '10.1.2.11', originExtra), environment(), replicaDoc('web-01-dr', 'web-01', replicaExtra))), 'web-01-dr')
      .specHash;
  const base = hashOf('');

  it('is stable', () => {
    expect(hashOf('')).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{16}$/);
  });

  it('changes with what is copied: exclusions, on the replica or its origin', () => {
    expect(hashOf('  exclude: { paths: [/var/tmp/*] }\n')).not.toBe(base);
    expect(hashOf('', '  exclude: { mounts: [/u02] }\n')).not.toBe(base);
    expect(hashOf('', '  root: /mnt/origin\n')).not.toBe(base);
  });

  it('changes with where it is copied to', () => {
    expect(hashOf('  path: /srv/elsewhere\n')).not.toBe(base);
    expect(hashOf('  path: /srv/replicas/web-01-dr\n')).toBe(base);
  });

  it('does not change with hooks, mode or connection settings, which do not shape the copied data', () => {
    expect(hashOf('  hooks: { preSnapshot: [{ command: [sync] }] }\n')).toBe(base);
    expect(hashOf('  mode: backup\n  suspend: true\n')).toBe(base);
    expect(hashOf('', '  connection: { port: 2222 }\n')).toBe(base);
  });
});

describe('fixups', () => {
  const resolved = (replicaExtra: string): Replica =>
    replica(load(file('estate.yaml', '/etc/rmm', origin('web-01', '10.1.2.11'), environment(), replicaDoc('web-01-dr', 'web-01', replicaExtra))), 'web-01-dr');

  it('are off for a directory target unless enabled, with the documented defaults', () => {
    expect(resolved('').fixups).toEqual({ enabled: false, nics: [], networkMounts: 'comment', unavailableMounts: 'comment' });
    const on = resolved('  fixups:\n    enabled: true\n    nics: [{ from: eth0, fromMac: "52:54:00:AB:CD:EF" }, { from: eth1, to: ens4 }]\n    networkMounts: keep\n');
    expect(on.fixups).toEqual({
      enabled: true,
      nics: [{ from: 'eth0', to: 'eth0', fromMac: '52:54:00:ab:cd:ef' }, { from: 'eth1', to: 'ens4' }],
      networkMounts: 'keep',
      unavailableMounts: 'comment',
    });
  });

  it('are always on for a disks target', () => {
    const kvm = `apiVersion: rmm/v1\nkind: Environment\nmetadata: { name: dr }\nspec:\n  targetKind: disks\n  hosts:\n    - name: landing-01\n      address: 10.20.0.5\n`;
    const spec = load(file('estate.yaml', '/etc/rmm', origin('web-01', '10.1.2.11'), kvm, replicaDoc('web-01-dr', 'web-01', '  disks: [{ origin: /dev/sda, target: /dev/vdb }]\n')));
    expect(replica(spec, 'web-01-dr').fixups.enabled).toBe(true);
  });

  it('enter the spec hash by whether the copy is adapted, not by what they change', () => {
    const base = resolved('').specHash;
    expect(resolved('  fixups: { enabled: false }\n').specHash).toBe(base);
    const adapted = resolved('  fixups: { enabled: true }\n').specHash;
    expect(adapted).not.toBe(base);
    // What the fixups write is re-done on the current copy when it changes; it is no new copy.
    expect(resolved('  fixups: { enabled: true, nics: [{ from: eth0, to: ens3 }], networkMounts: nofail }\n').specHash).toBe(adapted);
    expect(resolved('  fixups: { enabled: true }\n  ipRemap: { hostname: web-01-dr }\n').specHash).toBe(adapted);
  });
});
