import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixupIfcfg, fixupIfcfgRoutes, fixupSysconfigNetwork, ifcfgFileName } from '../../src/fixup/ifcfg.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { checkFixture, FIXTURES, nicIdentity, type FixtureCase, type Transform } from './network-fixture.js';

/** The transform a file's own name calls for, as the caller will pick it. */
function transformFor(file: string): Transform {
  const name = file.slice(file.indexOf('.') + 1);
  if (name.startsWith('route-') || name.startsWith('route6-')) return fixupIfcfgRoutes;
  if (name.startsWith('network')) return fixupSysconfigNetwork;
  return fixupIfcfg;
}

const cloudInitBond: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.0.0/24', to: '172.20.0.0/24' },
    { from: '192.168.1.0/24', to: '172.20.1.0/24' },
    { from: '10.1.3.0/24', to: '172.21.3.0/24' },
    { from: '2001:1::/64', to: '2001:db8:20::/64' },
    { from: '2001:67c:1562::/48', to: '2001:db8:1562::/48' },
  ],
  addresses: [],
  gateway: '172.20.0.254',
};
const bondNics = { names: { bond0s0: 'ens3', bond0s1: 'ens4' }, macs: { 'aa:bb:cc:dd:e8:00': '52:54:00:dd:e8:00', 'aa:bb:cc:dd:e8:ff': '52:54:00:dd:e8:ff' } };
const cloudInitLarge: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.0.0/24', to: '10.20.0.0/24' },
    { from: '192.168.14.0/24', to: '10.20.14.0/24' },
    { from: '2001:1::/64', to: '2001:db8:20::/64' },
    { from: '2001:4800:78ff:1b::/64', to: '2001:db8:78::/64' },
  ],
  addresses: [{ from: '192.168.2.10', to: '10.20.2.10' }],
  gateway: '10.20.0.254',
  dns: ['10.20.0.53', '10.20.0.54', '10.20.0.55'],
  searchDomains: ['dr.example.com', 'example.com'],
};
const largeNics = {
  names: { eth0: 'ens3', eth1: 'ens4', eth2: 'ens5', eth3: 'ens6', eth4: 'ens7' },
  // MACADDR and LLADDR set an address: the bridge keeps bb:bb:bb:bb:bb:aa even though it is in this map.
  macs: { 'aa:d6:9f:2c:e8:80': '52:54:00:2c:e8:80', 'bb:bb:bb:bb:bb:aa': '52:54:00:bb:bb:aa' },
};
const nmTests: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.1.0/24', to: '10.1.1.0/24' },
    { from: '11.22.33.0/24', to: '10.22.33.0/24' },
    { from: '44.55.66.0/24', to: '10.55.66.0/24' },
    { from: '1.2.3.0/24', to: '10.2.3.0/24' },
    { from: '4.2.2.0/24', to: '10.42.2.0/24' },
    { from: '9.9.9.0/24', to: '10.9.9.0/24' },
    { from: 'dead:beaf::/64', to: 'fd00:beaf::/64' },
    { from: '1001:abba::/56', to: 'fd00:abba::/56' },
    { from: '2001:abba::/64', to: 'fd01:abba::/64' },
    { from: '9876::/96', to: 'fd00:9876::/96' },
    { from: 'aaaa::/64', to: 'fd00:aaaa::/64' },
  ],
  addresses: [{ from: '1.1.1.1', to: '10.1.1.11' }],
};
const nmNics = { names: { eth0: 'ens3', eth2: 'ens4', eth9: 'ens9' }, macs: { '00:11:22:33:44:ee': '52:54:00:33:44:ee', '00:22:15:59:62:97': undefined } };
const guide: FixtureCase['remap'] = {
  networks: [
    { from: '10.0.1.0/24', to: '10.50.1.0/24' },
    { from: '2001:db8:1::/64', to: '2001:db8:50::/64' },
  ],
  addresses: [],
};
const guideNics = { names: { eth0: 'ens3' }, macs: { '52:54:00:0a:01:1b': undefined } };

const cases: FixtureCase[] = [
  ...['ifcfg-bond0', 'ifcfg-bond0s0', 'route-bond0', 'route6-bond0'].map((f) => ({ file: `cloud-init-rhel.${f}`, expected: `cloud-init-rhel.${f}.expected`, remap: cloudInitBond, nics: bondNics })),
  ...['rhel.ifcfg-eth0.101', 'rhel.ifcfg-br0', 'rhel.ifcfg-eth1', 'suse.ifcfg-br0', 'suse.ifcfg-eth0.101'].map((f) => ({
    file: `cloud-init-${f}`,
    expected: `cloud-init-${f}.expected`,
    remap: cloudInitLarge,
    nics: largeNics,
  })),
  ...[
    'ifcfg-test-wired-static',
    'ifcfg-test-wired-static-routes',
    'route-test-wired-static-routes',
    'route-test-wired-static-routes-legacy',
    'ifcfg-test-wired-ipv6-manual',
    'route6-test-wired-ipv6-manual',
    'ifcfg-test-wired-obsolete-gateway-n',
    'ifcfg-test-vlan-interface',
    'ifcfg-test-bridge-component',
  ].map((f) => ({ file: `nm.${f}`, expected: `nm.${f}.expected`, remap: nmTests, nics: nmNics })),
  {
    file: 'nm.ifcfg-test-wired-static',
    expected: 'nm.ifcfg-test-wired-static.site-services.expected',
    remap: { ...nmTests, gateway: '10.1.1.254', dns: ['10.1.1.53'], searchDomains: ['dr.example.com'] },
    nics: nmNics,
  },
  { file: 'nm.network-test-wired-global-gateway', expected: 'nm.network-test-wired-global-gateway.expected', remap: nmTests, nics: nmNics },
  { file: 'rhel-guide.ifcfg-eth0', expected: 'rhel-guide.ifcfg-eth0.expected', remap: guide, nics: guideNics },
  {
    file: 'rhel-guide.ifcfg-eth0',
    expected: 'rhel-guide.ifcfg-eth0.site-services.expected',
    remap: { ...guide, gateway: '10.50.1.254', dns: ['10.50.1.53', '10.50.9.53', '2001:db8:50::53'], searchDomains: ['dr.example.com', 'example.com'] },
    nics: guideNics,
  },
  { file: 'rhel-guide.network', expected: 'rhel-guide.network.expected', remap: { ...guide, gateway: '10.50.1.254' }, nics: guideNics },
];

describe('ifcfg fixup on real files', () => {
  for (const c of cases) it(`${c.file} -> ${c.expected}`, () => checkFixture('ifcfg', transformFor(c.file), c));

  it('leaves a file with an unclosed quote alone and says where (NetworkManager ifcfg-test-variables-corner-cases-1)', () => {
    const text = readFileSync(join(FIXTURES, 'ifcfg', 'nm.ifcfg-test-variables-corner-cases-1'), 'utf8');
    expect(fixupIfcfg(text, new AddressRemap(nmTests), nicIdentity(nmNics))).toMatchObject({ kind: 'unparsable', line: 5 });
  });
});

describe('ifcfg fixup', () => {
  const remap = new AddressRemap(guide);
  const nics = nicIdentity({ names: { eth0: 'ens3', eth1: 'ens4' }, macs: { '52:54:00:0a:01:1b': undefined } });

  it('names the files the target needs: ifcfg-, route- and route6- follow the interface', () => {
    expect(ifcfgFileName('ifcfg-eth0', nics)).toBe('ifcfg-ens3');
    expect(ifcfgFileName('route6-eth1', nics)).toBe('route6-ens4');
    expect(ifcfgFileName('ifcfg-eth0.101', nics)).toBe('ifcfg-ens3.101');
    expect(ifcfgFileName('ifcfg-eth0:1', nics)).toBe('ifcfg-ens3:1');
    expect(ifcfgFileName('ifcfg-eth10', nics)).toBeUndefined();
    expect(ifcfgFileName('ifcfg-lo', nics)).toBeUndefined();
  });

  it('refuses to drop the HWADDR of a file without DEVICE: nothing would tie it to a NIC', () => {
    expect(fixupIfcfg('HWADDR=52:54:00:0a:01:1b\nIPADDR=10.0.1.7\n', remap, nics)).toMatchObject({ kind: 'unparsable', line: 1 });
  });

  it('refuses shell that is more than assignments', () => {
    expect(fixupIfcfg('DEVICE=eth0\nif [ -f /x ]; then IPADDR=10.0.1.7; fi\n', remap, nics)).toMatchObject({ kind: 'unparsable', line: 2 });
    expect(fixupIfcfg('IPADDR=10.0.1.7 10.0.1.8\n', remap, nics)).toMatchObject({ kind: 'unparsable', line: 1 });
  });

  it('treats a default route in the ADDRESSn form as the default gateway', () => {
    const text = 'ADDRESS0=0.0.0.0\nNETMASK0=0.0.0.0\nGATEWAY0=10.0.1.1\nADDRESS1=10.0.1.0\nNETMASK1=255.255.255.0\nGATEWAY1=10.0.1.1\n';
    const result = fixupIfcfgRoutes(text, new AddressRemap({ ...guide, gateway: '10.50.1.254' }), nics);
    expect(result).toMatchObject({ kind: 'changed', text: 'ADDRESS0=0.0.0.0\nNETMASK0=0.0.0.0\nGATEWAY0=10.50.1.254\nADDRESS1=10.50.1.0\nNETMASK1=255.255.255.0\nGATEWAY1=10.50.1.1\n' });
  });
});

describe('ifcfg fixup reasons', () => {
  it('says for each changed line what moved and by which rule, in the operator\'s words', () => {
    const text = readFileSync(join(FIXTURES, 'ifcfg', 'rhel-guide.ifcfg-eth0'), 'utf8');
    const remap = new AddressRemap({ ...guide, gateway: '10.50.1.254', dns: ['10.50.1.53', '10.50.9.53', '2001:db8:50::53'] });
    const result = fixupIfcfg(text, remap, nicIdentity(guideNics));
    expect(result.kind === 'changed' && result.changes.map((c) => [c.line, c.reason])).toEqual([
      [2, "interface eth0 -> ens3 (the target's NIC)"],
      [6, 'address 10.0.1.27 -> 10.50.1.27 (network 10.0.1.0/24 -> 10.50.1.0/24)'],
      [7, 'address 10.0.1.28 -> 10.50.1.28 (network 10.0.1.0/24 -> 10.50.1.0/24)'],
      [10, "default gateway 10.0.1.1 -> 10.50.1.254 (the spec's gateway)"],
      [11, "DNS servers 10.0.1.2 10.0.9.2 -> 10.50.1.53 10.50.9.53 2001:db8:50::53 (the spec's dns)"],
      [12, "DNS servers 10.0.1.2 10.0.9.2 -> 10.50.1.53 10.50.9.53 2001:db8:50::53 (the spec's dns)"],
      [14, "MAC pin 52:54:00:0A:01:1B removed (the origin's NIC is not on the target and its MAC there is not known)"],
      [16, "interface eth0 -> ens3 (the target's NIC)"],
    ]);
  });

  it('leaves a binary file alone', () => {
    expect(fixupIfcfg('DEVICE=eth0\n\0\0', new AddressRemap(guide), nicIdentity({}))).toMatchObject({ kind: 'unparsable', line: 2 });
  });
});
