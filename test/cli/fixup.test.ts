import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixupHostname, fixupHosts } from '../../src/fixup/identity.js';
import { fixupIfcfg } from '../../src/fixup/ifcfg.js';
import { fixupIfupdown } from '../../src/fixup/ifupdown.js';
import { fixupNetplan } from '../../src/fixup/netplan.js';
import { fixupNetworkd } from '../../src/fixup/networkd.js';
import { fixupNmKeyfile } from '../../src/fixup/nm-keyfile.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { fixupFstab } from '../../src/fixup/storage.js';
import type { FixupResult, NicIdentity } from '../../src/fixup/types.js';
import { fixupPersistentNetRules } from '../../src/fixup/udev.js';
import { expectOutput } from '../support/json-contract.js';
import { rmm } from '../support/cli.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/fixup');

const SPEC = `apiVersion: rmm/v1
kind: Origin
metadata: { name: web01 }
spec: { address: 10.0.2.15 }
---
apiVersion: rmm/v1
kind: Environment
metadata: { name: dr }
spec:
  hosts:
    - { name: dr-01, address: 172.20.9.10, path: /srv/replicas }
  ipRemap:
    networks:
      - { from: 10.0.0.0/16, to: 10.9.0.0/16 }
      - { from: 192.168.0.0/24, to: 10.30.0.0/24 }
      - { from: 10.10.10.0/24, to: 10.40.10.0/24 }
---
apiVersion: rmm/v1
kind: Replica
metadata: { name: web01-dr }
spec:
  origin: web01
  environment: dr
  exclude: { mounts: [/home/foo] }
  ipRemap: { hostname: web01-dr }
  fixups:
    enabled: true
    nics:
      - { from: eth0, to: ens3, fromMac: "74:d0:2b:98:17:f1", toMac: "52:54:00:00:00:03" }
      - { from: eth1, to: ens4, fromMac: "74:D0:2B:98:17:F0" }
      - { from: enp2s0, to: ens5 }
`;

/** The same inputs as SPEC, written out by hand, so the test checks the command's wiring against the transforms. */
const remap = new AddressRemap({
  networks: [
    { from: '10.0.0.0/16', to: '10.9.0.0/16' },
    { from: '192.168.0.0/24', to: '10.30.0.0/24' },
    { from: '10.10.10.0/24', to: '10.40.10.0/24' },
  ],
  addresses: [],
  hostname: 'web01-dr',
});
const nics: NicIdentity = {
  names: new Map([
    ['eth0', 'ens3'],
    ['eth1', 'ens4'],
    ['enp2s0', 'ens5'],
  ]),
  macs: new Map([
    ['74:d0:2b:98:17:f1', '52:54:00:00:00:03'],
    ['74:d0:2b:98:17:f0', undefined],
  ]),
};

/** One file of each format: where it goes in the tree, its fixture, and the transform the command must apply. */
const TREE: { at: string; fixture: string; transform: (text: string) => FixupResult; movesTo?: string }[] = [
  { at: '/etc/network/interfaces', fixture: 'ifupdown/debian-manual.interfaces', transform: (t) => fixupIfupdown(t, remap, nics) },
  { at: '/etc/netplan/01-static.yaml', fixture: 'netplan/static.yaml', transform: (t) => fixupNetplan(t, remap, nics) },
  { at: '/etc/NetworkManager/system-connections/wired.nmconnection', fixture: 'nm-keyfile/nm-Test_Wired_Connection.nmconnection', transform: (t) => fixupNmKeyfile(t, remap, nics) },
  {
    at: '/etc/sysconfig/network-scripts/ifcfg-eth0',
    fixture: 'ifcfg/rhel-guide.ifcfg-eth0',
    transform: (t) => fixupIfcfg(t, remap, nics),
    movesTo: '/etc/sysconfig/network-scripts/ifcfg-ens3',
  },
  { at: '/etc/systemd/network/50-enp2s0.network', fixture: 'networkd/systemd-network-50-static.network', transform: (t) => fixupNetworkd(t, remap, nics), movesTo: '/etc/systemd/network/50-ens5.network' },
  {
    at: '/etc/fstab',
    fixture: 'storage/fstab',
    transform: (t) => fixupFstab(t, { devices: new Map(), excluded: new Set(['/home/foo']), excludedHandling: 'comment', networkMounts: 'comment' }),
  },
  { at: '/etc/hosts', fixture: 'identity/hosts-debian-static', transform: (t) => fixupHosts(t, remap, 'web01') },
  { at: '/etc/hostname', fixture: 'identity/hostname-debian', transform: (t) => fixupHostname(t, 'web01-dr') },
  { at: '/etc/udev/rules.d/70-persistent-net.rules', fixture: 'udev/70-persistent-net.rules', transform: (t) => fixupPersistentNetRules(t, nics) },
];

/** A file /etc/network/interfaces pulls in with `source-directory`, and one ifup skips there (not a run-parts name). */
const SOURCED = { at: '/etc/network/interfaces.d/eth5', text: 'auto eth5\niface eth5 inet static\n    address 10.0.5.5/24\n' };
const SKIPPED = { at: '/etc/network/interfaces.d/eth5.bak', text: 'iface eth5 inet static\n    address 10.0.5.5/24\n' };
const BROKEN = { at: '/etc/netplan/99-broken.yaml', fixture: 'netplan/broken.yaml' };

let work: string;
let root: string;
let specFile: string;

function put(at: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, at)), { recursive: true });
  writeFileSync(path.join(root, at), text);
}

function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

function expected(entry: (typeof TREE)[number]): string {
  const result = entry.transform(fixture(entry.fixture));
  if (result.kind === 'unparsable') throw new Error(`${entry.fixture}: ${result.problem}`);
  return result.text;
}

beforeEach(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rmm-fixup-'));
  root = path.join(work, 'root');
  specFile = path.join(work, 'dr.yaml');
  writeFileSync(specFile, SPEC);
  for (const entry of TREE) put(entry.at, fixture(entry.fixture));
  put(SOURCED.at, SOURCED.text);
  put(SKIPPED.at, SKIPPED.text);
  chownSync(path.join(root, TREE[3]!.at), 1234, 1234);
  chmodSync(path.join(root, TREE[3]!.at), 0o640);
});

afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('rmm fixup --root', () => {
  it('prints the diff of every file the fixups change, as a patch that gives exactly their output, and exits 3', async () => {
    const { code, out, err } = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root);
    expect(err).toBe('Fixup: 10 files to change (--write writes them), 0 files unchanged.\n');
    expect(code).toBe(3);
    for (const entry of TREE) expect(out).toContain(`--- a${entry.at}\n+++ b${entry.movesTo ?? entry.at}\n`);
    expect(out).toContain('rename /etc/sysconfig/network-scripts/ifcfg-eth0 -> /etc/sysconfig/network-scripts/ifcfg-ens3\n');
    expect(out).toContain('+    address 10.9.5.5/24\n');
    expect(out).not.toContain('eth5.bak');

    // The printed diff, applied by patch(1) to a copy of the tree, gives what each transform gives.
    const copy = path.join(work, 'copy');
    cpSync(root, copy, { recursive: true });
    execFileSync('patch', ['-p1', '-s', '-d', copy], { input: out });
    for (const entry of TREE) expect(readFileSync(path.join(copy, entry.at), 'utf8'), entry.at).toBe(expected(entry));
    expect(readFileSync(path.join(root, TREE[0]!.at), 'utf8')).toBe(fixture(TREE[0]!.fixture));
  });

  it('writes exactly the transforms\' output, keeps owner and mode, renames, leaves an unparsable file alone, and a second run changes nothing', async () => {
    put(BROKEN.at, fixture(BROKEN.fixture));
    const before = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root);
    expect(before.code).toBe(1);
    expect(before.err).toMatch(/^\/etc\/netplan\/99-broken\.yaml(:\d+)?: left alone: .+\n/m);
    expect(before.err).toContain('Fixup: 10 files to change (--write writes them), 0 files unchanged, 1 file left alone.');

    const written = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root, '--write');
    expect(written.code).toBe(1);
    expect(written.err).toContain('Fixup: 10 files written, 0 files unchanged, 1 file left alone.');
    for (const entry of TREE) {
      const at = path.join(root, entry.movesTo ?? entry.at);
      expect(readFileSync(at, 'utf8'), entry.at).toBe(expected(entry));
      if (entry.movesTo) expect(existsSync(path.join(root, entry.at))).toBe(false);
    }
    const ifcfg = statSync(path.join(root, TREE[3]!.movesTo!));
    expect({ uid: ifcfg.uid, gid: ifcfg.gid, mode: ifcfg.mode & 0o7777 }).toEqual({ uid: 1234, gid: 1234, mode: 0o640 });
    expect(statSync(path.join(root, '/etc/fstab')).mode & 0o7777).toBe(0o644);
    expect(readFileSync(path.join(root, BROKEN.at))).toEqual(readFileSync(path.join(FIXTURES, BROKEN.fixture)));
    expect(readFileSync(path.join(root, SKIPPED.at), 'utf8')).toBe(SKIPPED.text);

    rmSync(path.join(root, BROKEN.at));
    const again = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root);
    expect(again.out).toBe('');
    expect(again.err).toBe('Fixup: nothing to change, 10 files unchanged.\n');
    expect(again.code).toBe(0);
  });

  it('-o json gives each file with its status, changes and diff', async () => {
    put(BROKEN.at, fixture(BROKEN.fixture));
    const { code, out } = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root, '-o', 'json');
    expect(code).toBe(1);
    const result = expectOutput('fixup', out) as { files: { file: string; status: string; renamedTo?: string; changes?: { line: number; before: string; after: string; reason: string }[]; diff?: string; problem?: string }[]; summary: unknown; changesPending: boolean };
    expect(result.summary).toEqual({ changed: 10, unchanged: 0, leftAlone: 1 });
    expect(result.changesPending).toBe(true);
    const hostname = result.files.find((f) => f.file === '/etc/hostname')!;
    expect(hostname).toMatchObject({ status: 'changed', changes: [{ line: 1, before: 'web01', after: 'web01-dr' }] });
    expect(hostname.changes![0]!.reason).toContain('web01-dr');
    expect(hostname.diff).toBe('--- a/etc/hostname\n+++ b/etc/hostname\n@@ -1,1 +1,1 @@\n-web01\n+web01-dr\n');
    expect(result.files.find((f) => f.file === TREE[3]!.at)).toMatchObject({ status: 'changed', renamedTo: TREE[3]!.movesTo });
    const broken = result.files.find((f) => f.file === BROKEN.at)!;
    expect(broken.status).toBe('unparsable');
    expect(broken.problem).toBeTruthy();
  });

  it('refuses a symlink that leaves the tree and follows one that stays inside', async () => {
    rmSync(path.join(root, '/etc/fstab'));
    symlinkSync('/etc/passwd', path.join(root, '/etc/fstab'));
    rmSync(path.join(root, '/etc/hostname'));
    writeFileSync(path.join(root, '/etc/hostname.real'), 'web01\n');
    symlinkSync('hostname.real', path.join(root, '/etc/hostname'));
    const { code, err } = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root, '--write');
    expect(code).toBe(1);
    expect(err).toContain('/etc/fstab: left alone: a symlink that leaves the tree (to /etc/passwd)');
    expect(readFileSync(path.join(root, '/etc/hostname.real'), 'utf8')).toBe('web01-dr\n');
    expect(readFileSync('/etc/passwd', 'utf8')).not.toContain('rmm');
  });

  it("reads SUSE's /etc/sysconfig/network folder for its ifcfg files instead of refusing it as a file", async () => {
    put('/etc/sysconfig/network/ifcfg-eth1', "BOOTPROTO='static'\nIPADDR='10.0.3.7/24'\n");
    const { code, out, err } = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root, '--write');
    expect(err).not.toContain('left alone');
    expect(code).toBe(0);
    expect(out).toContain('rename /etc/sysconfig/network/ifcfg-eth1 -> /etc/sysconfig/network/ifcfg-ens4\n');
    expect(readFileSync(path.join(root, '/etc/sysconfig/network/ifcfg-ens4'), 'utf8')).toBe("BOOTPROTO='static'\nIPADDR='10.9.3.7/24'\n");
  });

  it('refuses a file over the size limit, and input it cannot use with exit 2', async () => {
    put('/etc/crypttab', `${'#'.repeat(1024 * 1024)}\n`);
    const big = await rmm('fixup', 'web01-dr', '-f', specFile, '--root', root);
    expect(big.code).toBe(1);
    expect(big.err).toContain('/etc/crypttab: left alone: 1048577 bytes, more than the 1048576 bytes a configuration file may have');
    expect((await rmm('fixup', 'web01-dr', '-f', specFile)).code).toBe(2);
    expect((await rmm('fixup', 'web01-dr', '-f', specFile, '--root', path.join(work, 'nowhere'))).err).toContain('is not a directory');
    const unknown = await rmm('fixup', 'nope', '-f', specFile, '--root', root);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("no replica named 'nope'");
  });
});
