import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixupNmKeyfile } from '../../src/fixup/nm-keyfile.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { checkFixture, FIXTURES, nicIdentity, type FixtureCase } from './network-fixture.js';

const cloudInitLarge: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.0.0/24', to: '10.20.0.0/24' },
    { from: '192.168.14.0/24', to: '10.20.14.0/24' },
    { from: '2001:1::/64', to: '2001:db8:20::/64' },
    { from: '2001:4800:78ff:1b::/64', to: '2001:db8:78::/64' },
  ],
  addresses: [{ from: '192.168.2.10', to: '10.20.2.10' }],
  gateway: '10.20.0.254',
  dns: ['10.20.0.53'],
  searchDomains: ['dr.example.com'],
};
const cloudInitNics: FixtureCase['nics'] = {
  names: { eth0: 'ens3', eth1: 'ens4', eth2: 'ens5', eth3: 'ens6', eth4: 'ens7' },
  macs: {
    'aa:d6:9f:2c:e8:80': '52:54:00:2c:e8:80',
    'a0:00:02:20:fe:80:00:00:00:00:00:00:ec:0d:9a:03:00:15:e2:c1': 'a0:00:02:20:fe:80:00:00:00:00:00:00:ec:0d:9a:03:00:99:88:77',
    // The bridge's own address is set by [bridge] mac-address=, which is no pin: it stays even when it is an origin NIC's.
    'bb:bb:bb:bb:bb:aa': '52:54:00:bb:bb:aa',
  },
};
const wired: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.0.0/24', to: '10.168.0.0/24' },
    { from: '1.2.0.0/16', to: '10.2.0.0/16' },
    { from: '2.2.2.0/24', to: '10.222.2.0/24' },
    { from: '4.2.2.0/24', to: '10.42.2.0/24' },
    { from: '7.7.7.0/24', to: '10.7.7.0/24' },
    { from: 'abcd:1234:ffff::/48', to: 'fd00:1234:ffff::/48' },
    { from: '3:4:5:6::/64', to: 'fd00:3:4:5::/64' },
    { from: 'f:e:d:c::/64', to: 'fd00:f:e:d::/64' },
    { from: '1::/64', to: 'fd00:1::/64' },
  ],
  addresses: [],
};

const cases: FixtureCase[] = [
  ...['br0', 'eth0.101', 'eth1', 'ib0', 'bond0.200'].map((name) => ({
    file: `cloud-init-${name}.nmconnection`,
    expected: `cloud-init-${name}.nmconnection.expected`,
    remap: cloudInitLarge,
    nics: cloudInitNics,
  })),
  {
    file: 'cloud-init-bond0.nmconnection',
    expected: 'cloud-init-bond0.nmconnection.expected',
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
  },
  {
    file: 'cloud-init-en0.99.nmconnection',
    expected: 'cloud-init-en0.99.nmconnection.expected',
    remap: {
      networks: [
        { from: '192.168.1.0/24', to: '10.1.1.0/24' },
        { from: '192.168.2.0/24', to: '10.1.2.0/24' },
        { from: '2001:1::/64', to: '2001:db8:1::/64' },
      ],
      addresses: [],
      gateway: '10.1.1.254',
    },
    nics: { names: { en0: 'ens3' } },
  },
  {
    file: 'nm-Test_Wired_Connection.nmconnection',
    expected: 'nm-Test_Wired_Connection.nmconnection.expected',
    remap: wired,
    nics: { macs: { '00:11:22:33:44:55': '52:54:00:33:44:55' } },
  },
  {
    file: 'nm-Test_Wired_Connection.nmconnection',
    expected: 'nm-Test_Wired_Connection.nmconnection.site-services.expected',
    // The spec names IPv4 resolvers only: the [ipv6] servers stay under the address rules.
    remap: { ...wired, gateway: '10.168.0.254', dns: ['10.168.0.53', '10.168.0.54'], searchDomains: ['dr.example.com'] },
  },
  { file: 'nm-Test_Wired_Connection_IP6.nmconnection', expected: 'nm-Test_Wired_Connection_IP6.nmconnection.expected', remap: { ...wired, dns: ['10.168.0.53'] } },
  {
    file: 'nm-Test_Write_Wired_IP6.nmconnection',
    expected: 'nm-Test_Write_Wired_IP6.nmconnection.expected',
    remap: { networks: [{ from: 'abcd::/64', to: 'fd00:abcd::/64' }], addresses: [], gateway: 'fd00:abcd::1', dns: ['fd00:abcd::53'], searchDomains: ['dr.example.com'] },
  },
  {
    file: 'nm-Test_Duplicate_Gateways.nmconnection',
    expected: 'nm-Test_Duplicate_Gateways.nmconnection.expected',
    remap: {
      networks: [
        { from: '192.168.0.0/24', to: '10.168.0.0/24' },
        { from: 'fd01::/64', to: 'fd02::/64' },
      ],
      addresses: [{ from: '192.0.2.1', to: '198.18.2.1' }],
      gateway: '10.168.0.254',
    },
  },
  {
    file: 'nm-Test_MAC_Old_Format.nmconnection',
    expected: 'nm-Test_MAC_Old_Format.nmconnection.expected',
    remap: { networks: [], addresses: [] },
    nics: { macs: { '00:11:aa:bb:cc:55': '52:54:00:bb:cc:55', '00:16:aa:bb:cc:fe': '52:54:00:bb:cc:fe' } },
  },
];

describe('NetworkManager keyfile fixup on real files', () => {
  for (const c of cases) it(`${c.file} -> ${c.expected}`, () => checkFixture('nm-keyfile', fixupNmKeyfile, c));

  it('refuses to drop the MAC pin of a profile that names no interface: it would apply to any device', () => {
    const text = readFileSync(join(FIXTURES, 'nm-keyfile', 'cloud-init-eth1.nmconnection'), 'utf8');
    const result = fixupNmKeyfile(text, new AddressRemap({ networks: [], addresses: [] }), nicIdentity({ macs: { 'aa:d6:9f:2c:e8:80': undefined } }));
    expect(result).toMatchObject({ kind: 'unparsable', line: 15 });
  });
});

describe('NetworkManager keyfile fixup', () => {
  const remap = new AddressRemap({ networks: [{ from: '10.0.2.0/24', to: '10.9.2.0/24' }], addresses: [] });

  it('removes a pin when the profile names its interface, and keeps cloned-mac-address, which sets the address', () => {
    const text = '[connection]\ninterface-name=eth0\n\n[ethernet]\nmac-address=52:54:00:12:34:56\ncloned-mac-address=52:54:00:12:34:56\n';
    const result = fixupNmKeyfile(text, remap, nicIdentity({ names: { eth0: 'ens3' }, macs: { '52:54:00:12:34:56': undefined } }));
    expect(result).toMatchObject({
      kind: 'changed',
      text: '[connection]\ninterface-name=ens3\n\n[ethernet]\n# mac-address=52:54:00:12:34:56\ncloned-mac-address=52:54:00:12:34:56\n',
    });
  });

  it('renames a [match] interface list and leaves its globs', () => {
    const text = '[connection]\nid=x\n\n[match]\ninterface-name=eth0;!eth1;en*;\n';
    const result = fixupNmKeyfile(text, remap, nicIdentity({ names: { eth0: 'ens3', eth1: 'ens4' } }));
    expect(result).toMatchObject({ kind: 'changed', text: '[connection]\nid=x\n\n[match]\ninterface-name=ens3;!ens4;en*;\n' });
  });

  it("gives the default gateway the spec's and leaves an unspecified (on-link) one", () => {
    const text = '[ipv6]\naddress1=fd01::1/64,::\naddress2=fd01::2/64,fd01::ffff\n';
    const result = fixupNmKeyfile(text, new AddressRemap({ networks: [], addresses: [], gateway: 'fd09::1' }), nicIdentity({}));
    expect(result).toMatchObject({ kind: 'changed', text: '[ipv6]\naddress1=fd01::1/64,::\naddress2=fd01::2/64,fd09::1\n' });
  });

  it('refuses a key before any section', () => {
    expect(fixupNmKeyfile('id=x\n[connection]\n', remap, nicIdentity({}))).toMatchObject({ kind: 'unparsable', line: 1 });
  });
});
