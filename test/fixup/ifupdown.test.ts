import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixupIfupdown, ifupdownSources } from '../../src/fixup/ifupdown.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { checkFixture, FIXTURES, nicIdentity, type FixtureCase } from './network-fixture.js';

const cloudInitLarge: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.0.0/24', to: '10.20.0.0/24' },
    { from: '192.168.1.0/24', to: '10.20.1.0/24' },
    { from: '192.168.14.0/24', to: '10.20.14.0/24' },
    { from: '2001:1::/64', to: '2001:db8:20::/64' },
    { from: '2001:4800:78ff:1b::/64', to: '2001:db8:78::/64' },
  ],
  addresses: [{ from: '192.168.2.10', to: '10.20.2.10' }],
};
const cloudInitNics: FixtureCase['nics'] = {
  names: { eth0: 'ens3', eth1: 'ens4', eth2: 'ens5', eth3: 'ens6', eth4: 'ens7', eth5: 'ens8' },
  // The InfiniBand card is not on the target: its pin goes.
  macs: { 'a0:00:02:20:fe:80:00:00:00:00:00:00:ec:0d:9a:03:00:15:e2:c1': undefined },
};
const siteServices = { gateway: '10.20.0.254', dns: ['10.20.0.53', '2001:db8:20::53'], searchDomains: ['dr.example.com'] };

const debianManual: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.1.0/24', to: '10.30.1.0/24' },
    { from: 'fec0:0:0:1::/64', to: 'fd00:30:0:1::/64' },
  ],
  addresses: [],
};
const debianNics = { names: { eth0: 'ens3', eth1: 'ens4', eth2: 'ens5', eth3: 'ens6', eth4: 'ens7', eth5: 'ens8' } };

const ifupdownTests: FixtureCase['remap'] = {
  networks: [
    { from: '1.2.3.0/24', to: '10.1.3.0/24' },
    { from: '3ffe:ffff:100:f101::/64', to: '2001:db8:f101::/64' },
    { from: '3ffe:ffff:120::/48', to: '2001:db8:120::/48' },
  ],
  addresses: [{ from: '1.5.3.4', to: '10.1.5.4' }],
};
const ifupdownTestNics = {
  names: { eth0: 'ens3', eth1: 'ens4', eth2: 'ens5', eth3: 'ens6' },
  macs: { '00:de:ad:00:be:af': '52:54:00:00:be:af', '12:34:56:89:0a:bc': undefined },
};

const cases: FixtureCase[] = [
  { file: 'cloud-init-large.interfaces', expected: 'cloud-init-large.interfaces.expected', remap: cloudInitLarge, nics: cloudInitNics },
  { file: 'cloud-init-large.interfaces', expected: 'cloud-init-large.interfaces.site-services.expected', remap: { ...cloudInitLarge, ...siteServices }, nics: cloudInitNics },
  { file: 'cloud-init-large-route-cmd.interfaces', expected: 'cloud-init-large-route-cmd.interfaces.expected', remap: cloudInitLarge, nics: cloudInitNics },
  {
    file: 'cloud-init-bond.interfaces',
    expected: 'cloud-init-bond.interfaces.expected',
    remap: {
      networks: [
        { from: '192.168.0.0/24', to: '172.20.0.0/24' },
        { from: '192.168.1.0/24', to: '172.20.1.0/24' },
        { from: '10.1.3.0/24', to: '172.21.3.0/24' },
        { from: '2001:1::/64', to: '2001:db8:20::/64' },
        { from: '2001:67c:1562::/48', to: '2001:db8:1562::/48' },
      ],
      addresses: [],
      gateway: '172.20.0.254',
    },
    nics: { names: { bond0s0: 'ens3', bond0s1: 'ens4' } },
  },
  {
    file: 'cloud-init-dns.interfaces',
    expected: 'cloud-init-dns.interfaces.expected',
    remap: { networks: [{ from: '192.168.0.0/16', to: '10.168.0.0/16' }], addresses: [], dns: ['10.9.0.53'], searchDomains: ['dr.example.com', 'example.com'] },
    nics: { names: { interface0: 'ens3' } },
  },
  { file: 'debian-manual.interfaces', expected: 'debian-manual.interfaces.expected', remap: debianManual, nics: debianNics },
  {
    file: 'debian-manual.interfaces',
    expected: 'debian-manual.interfaces.site-services.expected',
    remap: { ...debianManual, gateway: '10.30.1.254', dns: ['10.30.1.53'], searchDomains: ['dr.example.com'] },
    nics: debianNics,
  },
  ...['1', '3', '5', '7', '8', '16'].map((n) => ({
    file: `ifupdown-testcase-${n}.interfaces`,
    expected: `ifupdown-testcase-${n}.interfaces.expected`,
    remap: ifupdownTests,
    nics: ifupdownTestNics,
  })),
  {
    file: 'ifupdown-ng-vlan-complex.interfaces',
    expected: 'ifupdown-ng-vlan-complex.interfaces.expected',
    remap: {
      networks: [
        { from: '1.2.0.0/16', to: '10.2.0.0/16' },
        { from: 'abcd:ef12:3456::/48', to: 'fd00:1:3456::/48' },
      ],
      addresses: [],
      gateway: '10.2.10.254',
    },
    nics: { names: { eth0: 'ens3' } },
  },
  {
    file: 'ifupdown-ng-bonded-bridge.interfaces',
    expected: 'ifupdown-ng-bonded-bridge.interfaces.expected',
    remap: {
      networks: [
        { from: '203.0.113.0/24', to: '198.51.100.0/24' },
        { from: '2001:db8:1000::/48', to: '2001:db8:2000::/48' },
      ],
      addresses: [],
    },
    nics: { names: { eth0: 'ens3', eth1: 'ens4' } },
  },
  {
    file: 'ifupdown-ng-static-routing.interfaces',
    expected: 'ifupdown-ng-static-routing.interfaces.expected',
    remap: {
      networks: [
        { from: '192.0.2.0/24', to: '198.18.2.0/24' },
        { from: '172.16.0.0/16', to: '172.30.0.0/16' },
      ],
      addresses: [],
      gateway: '198.18.2.254',
    },
  },
  {
    file: 'ifupdown-ng-tunnel.interfaces',
    expected: 'ifupdown-ng-tunnel.interfaces.expected',
    remap: { networks: [{ from: '203.0.113.0/24', to: '198.51.100.0/24' }], addresses: [] },
    nics: { names: { eth0: 'ens3' } },
  },
  { file: 'ifupdown-examples.interfaces', expected: 'ifupdown-examples.interfaces', remap: debianManual, nics: debianNics },
];

describe('ifupdown fixup on real files', () => {
  for (const c of cases) it(`${c.file} -> ${c.expected}`, () => checkFixture('ifupdown', fixupIfupdown, c));

  it('leaves a file with a nameless iface alone and says where (ifupdown testcase.12)', () => {
    const text = readFileSync(join(FIXTURES, 'ifupdown', 'ifupdown-testcase-12.interfaces'), 'utf8');
    expect(fixupIfupdown(text, new AddressRemap(ifupdownTests), nicIdentity(ifupdownTestNics))).toEqual({ kind: 'unparsable', problem: "'iface' names no interface", line: 4 });
  });
});

describe('ifupdown fixup', () => {
  const remap = new AddressRemap(debianManual);
  const nics = nicIdentity(debianNics);

  it('reports the files a file sources, for the caller to read', () => {
    const text = readFileSync(join(FIXTURES, 'ifupdown', 'debian-manual.interfaces'), 'utf8');
    expect(ifupdownSources(text)).toEqual([
      { kind: 'source-directory', path: '/etc/network/interfaces.d', line: 3 },
      { kind: 'source', path: 'interfaces.local', line: 4 },
    ]);
  });

  it('keeps CRLF line ends and whatever follows the address on its line', () => {
    const result = fixupIfupdown('iface eth1 inet static\r\n  address 192.168.1.7/24 # the web address\r\n', remap, nics);
    expect(result).toMatchObject({ kind: 'changed', text: 'iface ens4 inet static\r\n  address 10.30.1.7/24 # the web address\r\n' });
  });

  it('keeps addresses that only share a prefix with a remapped network, netmasks and loopback', () => {
    const text = 'iface eth9 inet static\n  address 192.168.10.7\n  netmask 255.255.255.0\n  up ip route add 127.0.0.0/8 dev lo\n  dns-nameservers 127.0.0.53\n';
    expect(fixupIfupdown(text, remap, nics)).toEqual({ kind: 'unchanged', text });
  });

  it('refuses an option outside any stanza rather than guess whose it is', () => {
    expect(fixupIfupdown('address 192.168.1.7/24\n', remap, nics)).toMatchObject({ kind: 'unparsable', line: 1 });
  });

  it('treats a comment ending in a backslash as one line, as ifup does', () => {
    const text = 'iface eth1 inet static\n# old address \\\n  address 192.168.1.7/24\n';
    expect(fixupIfupdown(text, remap, nics)).toMatchObject({ kind: 'changed', text: 'iface ens4 inet static\n# old address \\\n  address 10.30.1.7/24\n' });
  });
});
