import { describe, expect, it } from 'vitest';
import { formatOf, matchesPattern, wantedPatterns } from '../../src/fixup/catalog.js';
import { excludedReferences, fixupInputsOf, fixupsHash, nicIdentityOf, type FixupInputs } from '../../src/fixup/inputs.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { isSourcedFile, runFixups, sourcedPatterns, type FileOutcome, type TreeFile } from '../../src/fixup/run.js';
import { fixupFstab } from '../../src/fixup/storage.js';
import type { Replica } from '../../src/config/spec.js';

const inputs = (over: Partial<FixupInputs> = {}): FixupInputs => ({
  remap: new AddressRemap({ networks: [{ from: '10.0.1.0/24', to: '10.9.1.0/24' }], addresses: [] }),
  nics: nicIdentityOf([
    { from: 'eth0', to: 'ens3', fromMac: '52:54:00:00:00:01', toMac: '52:54:00:00:00:03' },
    { from: 'eth1', to: 'ens4' },
  ]),
  devices: new Map(),
  excluded: { volumes: [], mounts: [] },
  unavailableMounts: 'comment',
  networkMounts: 'comment',
  ...over,
});

const byPath = (outcomes: readonly FileOutcome[]): Map<string, FileOutcome> => new Map(outcomes.map((o) => [o.path, o]));

/** The tree as a caller leaves it after writing every outcome. */
function applied(files: readonly TreeFile[], outcomes: readonly FileOutcome[]): TreeFile[] {
  const out = byPath(outcomes);
  return files.map((f) => {
    const o = out.get(f.path);
    if (o?.status === 'changed') return { path: o.renamedTo ?? f.path, text: o.text };
    if (o?.status === 'renamed') return { path: o.renamedTo, text: f.text };
    return f;
  });
}

describe('the fixup catalog', () => {
  it.each([
    ['/etc/network/interfaces', 'ifupdown'],
    ['/etc/netplan/50-cloud-init.yaml', 'netplan'],
    ['/etc/NetworkManager/system-connections/Wired connection 1.nmconnection', 'nm-keyfile'],
    ['/etc/sysconfig/network-scripts/ifcfg-eth0', 'ifcfg'],
    ['/etc/sysconfig/network/ifcfg-eth0', 'ifcfg'],
    ['/etc/sysconfig/network-scripts/route-eth0', 'ifcfg-routes'],
    ['/etc/sysconfig/network-scripts/route6-eth0', 'ifcfg-routes'],
    ['/etc/sysconfig/network', 'sysconfig-network'],
    ['/etc/systemd/network/10-eth0.network', 'networkd'],
    ['/etc/systemd/network/10-eth0.link', 'networkd'],
    ['/etc/systemd/network/25-bond.netdev', 'networkd'],
    ['/etc/fstab', 'fstab'],
    ['/etc/crypttab', 'crypttab'],
    ['/etc/initramfs-tools/conf.d/resume', 'resume'],
    ['/etc/default/grub', 'grub-defaults'],
    ['/etc/kernel/cmdline', 'kernel-cmdline'],
    ['/etc/hostname', 'hostname'],
    ['/etc/hosts', 'hosts'],
    ['/etc/udev/rules.d/70-persistent-net.rules', 'udev-persistent-net'],
    ['/etc/udev/rules.d/85-persistent-net-cloud-init.rules', 'udev-persistent-net'],
  ])('reads %s as %s', (path, format) => {
    expect(formatOf(path)).toBe(format);
    expect(matchesPattern(path, wantedPatterns())).toBe(true);
  });

  it.each([
    '/etc/sysconfig/network-scripts/ifcfg-eth0.bak',
    '/etc/sysconfig/network-scripts/ifcfg-eth0~',
    '/etc/sysconfig/network-scripts/ifcfg-eth0.rpmsave',
    '/etc/netplan/sub/01.yaml',
    '/etc/udev/rules.d/99-local.rules',
    '/etc/resolv.conf',
    '/etc/fstab.d/extra',
  ])('leaves %s alone', (path) => {
    expect(formatOf(path)).toBeUndefined();
  });
});

describe('files /etc/network/interfaces sources', () => {
  const interfaces: TreeFile = {
    path: '/etc/network/interfaces',
    text: 'source-directory interfaces.d\nsource interfaces.local\nsource /etc/network/extra/*.cfg\nauto lo\niface lo inet loopback\n',
  };

  it('are asked for in rounds, each file once, until nothing new is sourced', () => {
    expect(sourcedPatterns([interfaces])).toEqual(['/etc/network/interfaces.d/*', '/etc/network/interfaces.local', '/etc/network/extra/*.cfg']);
    const local: TreeFile = { path: '/etc/network/interfaces.local', text: 'source /etc/network/more\n' };
    expect(sourcedPatterns([interfaces, local])).toEqual(['/etc/network/interfaces.d/*', '/etc/network/extra/*.cfg', '/etc/network/more']);
  });

  it('are ifupdown files when ifup reads them: a source-directory takes run-parts names only', () => {
    const files = [interfaces];
    expect(isSourcedFile('/etc/network/interfaces.d/eth0', files)).toBe(true);
    expect(isSourcedFile('/etc/network/interfaces.d/eth0.cfg', files)).toBe(false);
    expect(isSourcedFile('/etc/network/extra/a.cfg', files)).toBe(true);
    expect(isSourcedFile('/etc/network/other', files)).toBe(false);
  });

  it('get the ifupdown fixup, nested ones too', () => {
    const files: TreeFile[] = [
      interfaces,
      { path: '/etc/network/interfaces.local', text: 'source /etc/network/more\n' },
      { path: '/etc/network/more', text: 'iface eth0 inet static\n    address 10.0.1.5/24\n' },
      { path: '/etc/network/interfaces.d/eth1.cfg', text: 'iface eth1 inet static\n    address 10.0.1.6/24\n' },
    ];
    const out = byPath(runFixups(files, inputs()));
    expect(out.get('/etc/network/more')).toMatchObject({ format: 'ifupdown', status: 'changed', text: 'iface ens3 inet static\n    address 10.9.1.5/24\n' });
    expect(out.has('/etc/network/interfaces.d/eth1.cfg')).toBe(false);
  });
});

describe('runFixups', () => {
  const tree: TreeFile[] = [
    { path: '/etc/sysconfig/network-scripts/ifcfg-eth0', text: 'DEVICE=eth0\nHWADDR=52:54:00:00:00:01\nIPADDR=10.0.1.5\nPREFIX=24\n' },
    { path: '/etc/sysconfig/network-scripts/route-eth0', text: '10.2.0.0/16 via 192.168.7.1 dev eth0\n' },
    { path: '/etc/sysconfig/network-scripts/ifcfg-lo', text: 'DEVICE=lo\nIPADDR=127.0.0.1\n' },
    { path: '/etc/systemd/network/10-eth1.network', text: '[Match]\nName=eth1\n\n[Network]\nDHCP=yes\n' },
    { path: '/etc/hostname', text: 'web01\n' },
    { path: '/etc/hosts', text: '127.0.0.1 localhost\n10.0.1.5 web01.example.com web01\n10.0.1.6 db01\n' },
    { path: '/etc/motd', text: 'eth0 10.0.1.5\n' },
  ];

  it('gives each catalog file its outcome, in path order, with a diff a/ to b/', () => {
    const outcomes = runFixups(tree, inputs());
    expect(outcomes.map((o) => [o.path, o.status])).toEqual([
      ['/etc/hostname', 'unchanged'],
      ['/etc/hosts', 'changed'],
      ['/etc/sysconfig/network-scripts/ifcfg-eth0', 'changed'],
      ['/etc/sysconfig/network-scripts/ifcfg-lo', 'unchanged'],
      ['/etc/sysconfig/network-scripts/route-eth0', 'changed'],
      ['/etc/systemd/network/10-eth1.network', 'changed'],
    ]);
    const out = byPath(outcomes);
    expect(out.get('/etc/sysconfig/network-scripts/ifcfg-eth0')).toMatchObject({
      renamedTo: '/etc/sysconfig/network-scripts/ifcfg-ens3',
      text: 'DEVICE=ens3\nHWADDR=52:54:00:00:00:03\nIPADDR=10.9.1.5\nPREFIX=24\n',
    });
    expect(out.get('/etc/sysconfig/network-scripts/route-eth0')).toMatchObject({ renamedTo: '/etc/sysconfig/network-scripts/route-ens3', text: '10.2.0.0/16 via 192.168.7.1 dev ens3\n' });
    expect(out.get('/etc/systemd/network/10-eth1.network')).toMatchObject({ renamedTo: '/etc/systemd/network/10-ens4.network' });
    // The hosts file knows the origin's own lines by the name in /etc/hostname.
    const hosts = out.get('/etc/hosts')!;
    expect(hosts.status === 'changed' && hosts.text).toBe('127.0.0.1 localhost\n10.9.1.5 web01.example.com web01\n10.0.1.6 db01\n');
    expect(hosts.status === 'changed' && hosts.diff).toBe(
      '--- a/etc/hosts\n+++ b/etc/hosts\n@@ -1,3 +1,3 @@\n 127.0.0.1 localhost\n-10.0.1.5 web01.example.com web01\n+10.9.1.5 web01.example.com web01\n 10.0.1.6 db01\n',
    );
  });

  it('is idempotent over the whole tree: a second run on what the first wrote changes nothing', () => {
    const once = applied(tree, runFixups(tree, inputs()));
    expect(runFixups(once, inputs()).filter((o) => o.status !== 'unchanged')).toEqual([]);
  });

  it('moves a file without changing it when only its name names an interface', () => {
    const files = [{ path: '/etc/systemd/network/10-eth1.link', text: '[Link]\nMTUBytes=9000\n' }];
    const [outcome] = runFixups(files, inputs());
    expect(outcome).toMatchObject({ status: 'renamed', renamedTo: '/etc/systemd/network/10-ens4.link' });
    expect(outcome?.status === 'renamed' && outcome.diff).toBe('--- a/etc/systemd/network/10-eth1.link\n+++ b/etc/systemd/network/10-ens4.link\n');
  });

  it('leaves a file alone when its new name is taken', () => {
    const files = [
      { path: '/etc/sysconfig/network-scripts/ifcfg-eth0', text: 'DEVICE=eth0\n' },
      { path: '/etc/sysconfig/network-scripts/ifcfg-ens3', text: 'DEVICE=ens3\n' },
    ];
    expect(byPath(runFixups(files, inputs())).get('/etc/sysconfig/network-scripts/ifcfg-eth0')).toEqual({
      path: '/etc/sysconfig/network-scripts/ifcfg-eth0',
      format: 'ifcfg',
      status: 'unparsable',
      problem: 'it would be renamed to /etc/sysconfig/network-scripts/ifcfg-ens3, which exists already; merge the two by hand',
    });
  });

  it("reports /etc/hosts when it has to change and the origin's name is not known", () => {
    const hosts = { path: '/etc/hosts', text: '10.0.1.5 web01\n' };
    expect(runFixups([hosts], inputs())[0]).toMatchObject({ status: 'unparsable', problem: expect.stringContaining("origin's hostname is not known") });
    expect(runFixups([hosts], inputs({ originHostname: 'web01' }))[0]).toMatchObject({ status: 'changed', text: '10.9.1.5 web01\n' });
    expect(runFixups([hosts], inputs({ remap: new AddressRemap({ networks: [], addresses: [] }) }))[0]).toMatchObject({ status: 'unchanged' });
  });

  it('passes an unparsable result through with its line', () => {
    const [outcome] = runFixups([{ path: '/etc/fstab', text: '/dev/sda1 / ext4 defaults 0 x\n' }], inputs());
    expect(outcome).toMatchObject({ status: 'unparsable', line: 1 });
  });

  it('treats the exclusions\' globs as the fstab lines they match', () => {
    const fstab = '/dev/sda1 / ext4 defaults 0 1\n/dev/mapper/vg_asm-data /u02 xfs defaults 0 2\n/dev/sdc1 /u03 xfs defaults 0 2\n/dev/sdd1 /mnt/nfs/a xfs defaults 0 2\nnas:/x /srv/x nfs defaults 0 0\n';
    const excluded = { volumes: ['vg_asm/*', '/dev/sdc'], mounts: ['/mnt/nfs/*'] };
    const [outcome] = runFixups([{ path: '/etc/fstab', text: fstab }], inputs({ excluded, networkMounts: 'keep' }));
    const direct = fixupFstab(fstab, { devices: new Map(), excluded: new Set(['/dev/vg_asm/data', '/dev/mapper/vg_asm-data', '/dev/sdc', '/mnt/nfs/a']), excludedHandling: 'comment', networkMounts: 'keep' });
    expect(outcome?.status === 'changed' && outcome.text).toBe(direct.kind === 'changed' && direct.text);
    expect(outcome?.status === 'changed' && outcome.changes.map((c) => c.line)).toEqual([2, 3, 4]);
  });
});

describe('excludedReferences', () => {
  it('keeps literal exclusions and expands globs against the devices and mount points the files name', () => {
    const texts = ['/dev/mapper/vg--a-lv--1 /data ext4 defaults 0 2\n/dev/sdb1 /mnt/nfs/b xfs defaults 0 0\n', 'GRUB_CMDLINE_LINUX="rd.lvm.lv=vg-a/swap resume=/dev/mapper/asm1"\n'];
    const found = excludedReferences({ volumes: ['vg-a/*', '/dev/mapper/asm*', '/dev/sdz'], mounts: ['/u02', '/mnt/nfs/*'] }, texts);
    expect([...found].sort()).toEqual(['/dev/mapper/asm1', '/dev/mapper/vg--a-lv--1', '/dev/mapper/vg--a-swap', '/dev/sdz', '/dev/vg-a/swap', '/mnt/nfs/b', '/u02']);
  });
});

describe('fixupInputsOf', () => {
  it('takes the NIC map, the remap and the exclusions from the resolved replica', () => {
    const replica = {
      ipRemap: { networks: [], addresses: [{ from: '10.0.1.5', to: '10.9.9.9' }] },
      exclude: { volumes: ['/dev/sdc'], mounts: ['/u02'], paths: ['/tmp/*'] },
      fixups: { enabled: true, nics: [{ from: 'eth0', to: 'eth0', fromMac: '52:54:00:00:00:01' }], networkMounts: 'keep', unavailableMounts: 'nofail' },
    } as unknown as Replica;
    const got = fixupInputsOf(replica);
    expect(got.remap.address('10.0.1.5')?.to).toBe('10.9.9.9');
    expect(got.nics).toEqual({ names: new Map([['eth0', 'eth0']]), macs: new Map([['52:54:00:00:00:01', undefined]]) });
    expect(got.excluded).toEqual({ volumes: ['/dev/sdc'], mounts: ['/u02'] });
    expect([got.networkMounts, got.unavailableMounts]).toEqual(['keep', 'nofail']);
  });
});

describe('fixupsHash', () => {
  const replica = (over: Record<string, unknown> = {}): Replica =>
    ({
      ipRemap: { networks: [{ from: '10.0.1.0/24', to: '10.9.1.0/24' }], addresses: [] },
      exclude: { volumes: [], mounts: ['/u02'], paths: [] },
      fixups: { enabled: true, nics: [], networkMounts: 'comment', unavailableMounts: 'comment' },
      ...over,
    }) as unknown as Replica;

  it('changes with what the fixups write, and only with that', () => {
    const base = fixupsHash(replica());
    expect(fixupsHash(replica())).toBe(base);
    expect(fixupsHash(replica({ ipRemap: { networks: [{ from: '10.0.1.0/24', to: '10.8.1.0/24' }], addresses: [] } }))).not.toBe(base);
    expect(fixupsHash(replica({ fixups: { enabled: true, nics: [{ from: 'eth0', to: 'ens3' }], networkMounts: 'comment', unavailableMounts: 'comment' } }))).not.toBe(base);
    expect(fixupsHash(replica({ exclude: { volumes: [], mounts: ['/u02'], paths: ['/tmp/*'] } }))).toBe(base);
  });
});
