import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixupNetworkd, networkdFileName } from '../../src/fixup/networkd.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { checkFixture, FIXTURES, nicIdentity, type FixtureCase } from './network-fixture.js';

const staticExample: FixtureCase['remap'] = {
  networks: [
    { from: '192.168.0.0/24', to: '10.50.0.0/24' },
    { from: 'fd00:0:0:15::/64', to: 'fd00:50:0:15::/64' },
  ],
  addresses: [],
};

const cases: FixtureCase[] = [
  {
    file: 'systemd-25-address-static.network',
    expected: 'systemd-25-address-static.network.expected',
    remap: {
      networks: [
        { from: '10.1.0.0/16', to: '10.101.0.0/16' },
        { from: '10.4.0.0/16', to: '10.104.0.0/16' },
        { from: '2001:db8:0:f101::/64', to: '2001:db8:1:f101::/64' },
        { from: '2001:db8:0:f103::/64', to: '2001:db8:1:f103::/64' },
      ],
      addresses: [{ from: '10.10.0.1', to: '10.110.0.1' }],
    },
    nics: { names: { dummy98: 'ens3' } },
  },
  {
    file: 'systemd-25-route-static.network',
    expected: 'systemd-25-route-static.network.expected',
    remap: {
      networks: [
        { from: '149.10.124.0/24', to: '198.18.124.0/24' },
        { from: '2001:1234:5::/48', to: '2001:db8:5::/48' },
        { from: '1.1.8.104/31', to: '10.1.8.104/31' },
      ],
      addresses: [],
      gateway: '198.18.124.1',
    },
    nics: { names: { dummy98: 'ens3', test1: 'ens4' } },
  },
  {
    file: 'systemd-12-dummy-match-mac-01.network',
    expected: 'systemd-12-dummy-match-mac-01.network.expected',
    remap: { networks: [{ from: '10.0.0.0/16', to: '10.200.0.0/16' }], addresses: [] },
    nics: { names: { dummy98: 'ens3' }, macs: { '12:34:56:78:9a:01': '52:54:00:78:9a:01' } },
  },
  {
    file: 'systemd-12-dummy-match-mac-01.network',
    expected: 'systemd-12-dummy-match-mac-01.network.pin-removed.expected',
    remap: { networks: [], addresses: [] },
    nics: { names: { dummy98: 'ens3' }, macs: { '12:34:56:78:9a:01': undefined } },
  },
  {
    file: 'systemd-24-search-domain.network',
    expected: 'systemd-24-search-domain.network.expected',
    remap: { networks: [], addresses: [], dns: ['10.9.0.53'], searchDomains: ['dr.example.com'] },
  },
  {
    file: 'systemd-link-10-dmz.link',
    expected: 'systemd-link-10-dmz.link.expected',
    remap: { networks: [], addresses: [] },
    nics: { macs: { '00:a0:de:63:7a:e6': '52:54:00:63:7a:e6' } },
  },
  {
    file: 'systemd-link-25-wireless.link',
    expected: 'systemd-link-25-wireless.link.expected',
    remap: { networks: [], addresses: [] },
    // [Link] MACAddress= sets the address the NIC takes: even an origin NIC's MAC stays there.
    nics: { macs: { '12:34:56:78:9a:bc': undefined, 'cb:a9:87:65:43:21': '52:54:00:65:43:21' } },
  },
  {
    file: 'cloud-init-v1-dns.network',
    expected: 'cloud-init-v1-dns.network.expected',
    remap: { networks: [{ from: '192.168.0.0/16', to: '10.168.0.0/16' }], addresses: [], gateway: '10.168.0.254' },
    nics: { names: { interface0: 'ens3' }, macs: { '11:22:33:44:55:66': '52:54:00:44:55:66' } },
  },
  {
    file: 'cloud-init-v2-dns.network',
    expected: 'cloud-init-v2-dns.network.expected',
    remap: { networks: [], addresses: [], dns: ['10.9.0.53', 'fd00:9::53'], searchDomains: ['dr.example.com'] },
    nics: { names: { eth0: 'ens3' } },
  },
  {
    file: 'cloud-init-v4-and-v6.network',
    expected: 'cloud-init-v4-and-v6.network.expected',
    remap: {
      networks: [
        { from: '192.168.0.0/16', to: '10.168.0.0/16' },
        { from: '2001:bc8:1210:232::/64', to: '2001:db8:1210:232::/64' },
      ],
      addresses: [],
    },
    nics: { names: { iface0: 'ens3' } },
  },
  {
    file: 'systemd-25-veth.netdev',
    expected: 'systemd-25-veth.netdev.expected',
    remap: { networks: [], addresses: [] },
    // A .netdev's MACAddress= gives the device it creates its address: no pin, so it stays.
    nics: { names: { veth99: 'veth1', 'veth-peer': 'veth1-peer' }, macs: { '12:34:56:78:9a:bc': undefined, '12:34:56:78:9a:bd': '52:54:00:78:9a:bd' } },
  },
  { file: 'systemd-network-50-static.network', expected: 'systemd-network-50-static.network.expected', remap: staticExample, nics: { names: { enp2s0: 'ens3' } } },
  {
    file: 'systemd-network-50-static.network',
    expected: 'systemd-network-50-static.network.site-services.expected',
    remap: { ...staticExample, gateway: '10.50.0.254', dns: ['10.50.0.53'], searchDomains: ['dr.example.com'] },
    nics: { names: { enp2s0: 'ens3' } },
  },
];

describe('systemd-networkd fixup on real files', () => {
  for (const c of cases) it(`${c.file} -> ${c.expected}`, () => checkFixture('networkd', fixupNetworkd, c));

  it('refuses to drop a MAC pin that is the only [Match] condition: the file would match every interface', () => {
    const text = readFileSync(join(FIXTURES, 'networkd', 'systemd-link-10-dmz.link'), 'utf8');
    const result = fixupNetworkd(text, new AddressRemap({ networks: [], addresses: [] }), nicIdentity({ macs: { '00:a0:de:63:7a:e6': undefined } }));
    expect(result).toMatchObject({ kind: 'unparsable', line: 2 });
  });
});

describe('systemd-networkd fixup', () => {
  const remap = new AddressRemap(staticExample);
  const nics = nicIdentity({ names: { enp2s0: 'ens3', eth1: 'ens4' } });

  it('names the file the target needs when its name carries an interface', () => {
    expect(networkdFileName('10-enp2s0.network', nics)).toBe('10-ens3.network');
    expect(networkdFileName('10-enp2s0.100.network', nics)).toBe('10-ens3.100.network');
    expect(networkdFileName('50-static.network', nics)).toBeUndefined();
    expect(networkdFileName('10-eth10.network', nics)).toBeUndefined();
  });

  it('swaps two names in one pass', () => {
    const swap = nicIdentity({ names: { eth0: 'eth1', eth1: 'eth0' } });
    expect(networkdFileName('10-eth0-eth1.network', swap)).toBe('10-eth1-eth0.network');
  });

  it('refuses a key outside any section and a line that is not a key', () => {
    expect(fixupNetworkd('Address=192.168.0.7/24\n', remap, nics)).toMatchObject({ kind: 'unparsable', line: 1 });
    expect(fixupNetworkd('[Network]\nthis is not a key\n', remap, nics)).toMatchObject({ kind: 'unparsable', line: 2 });
  });

  it('leaves DHCP leases, gateways given by name and addresses that merely share a prefix', () => {
    const text = '[Network]\nGateway=_dhcp4\nAddress=192.168.00.7/24\nAddress=192.168.1.7/24\n[DHCPServerStaticLease]\nMACAddress=52:54:00:12:34:56\n';
    expect(fixupNetworkd(text, remap, nicIdentity({ macs: { '52:54:00:12:34:56': undefined } }))).toEqual({ kind: 'unchanged', text });
  });
});
