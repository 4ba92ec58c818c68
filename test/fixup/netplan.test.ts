import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import type { IpRemap } from '../../src/config/spec.js';
import { fixupNetplan } from '../../src/fixup/netplan.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import type { NicIdentity } from '../../src/fixup/types.js';
import { expectFixture, readFixture } from './fixtures.js';

/** The DR site's networks for every fixture: each file's own networks move, 11.0.0.0/24 and 8.8.8.8 do not. */
const rules: IpRemap = {
  networks: [
    { from: '10.10.10.0/24', to: '10.20.10.0/24' },
    { from: '10.100.1.0/24', to: '10.200.1.0/24' },
    { from: '10.0.0.0/24', to: '10.50.0.0/24' },
    { from: '10.3.0.0/23', to: '10.13.0.0/23' },
    { from: '10.3.98.0/24', to: '10.13.98.0/24' },
    { from: '10.3.99.0/24', to: '10.13.99.0/24' },
    { from: '192.168.0.0/24', to: '10.9.0.0/24' },
    { from: '192.168.1.0/24', to: '10.9.1.0/24' },
    { from: '192.168.3.0/24', to: '10.9.3.0/24' },
    { from: '192.168.5.0/24', to: '10.9.5.0/24' },
    { from: '192.168.14.0/24', to: '10.9.14.0/24' },
    { from: '192.168.93.0/24', to: '10.9.93.0/24' },
    { from: '2001:1::/64', to: '2001:db8:1::/64' },
    { from: '2001:fffe::/64', to: '2001:db8:fe::/64' },
    { from: '2001:cafe:face:beef::/64', to: '2001:db8:beef::/64' },
    { from: '2001:4800:78ff:1b::/64', to: '2001:db8:1b::/64' },
  ],
  addresses: [
    { from: '192.168.1.252', to: '203.0.113.252' },
    { from: '2001:cafe:face::1', to: '2001:db8:beef::1' },
  ],
};

/** The same site when the spec also names its DNS servers, search domains and gateway. */
const site: IpRemap = { ...rules, dns: ['10.20.0.53', '10.20.0.54'], searchDomains: ['dr.example.com'], gateway: '10.20.10.254' };

function nics(names: Record<string, string>, macs: Record<string, string | undefined> = {}): NicIdentity {
  return { names: new Map(Object.entries(names)), macs: new Map(Object.entries(macs)) };
}

const none = nics({});

const cases: { file: string; remap: IpRemap; nics: NicIdentity; what: string }[] = [
  { file: 'static.yaml', remap: site, nics: nics({ enp3s0: 'ens3' }), what: 'address, default route, DNS and search from the spec; interface renamed' },
  { file: 'static_singlenic_multiip_multigateway.yaml', remap: rules, nics: nics({ eno1: 'ens5' }), what: 'two default routes: only the one in a remapped network moves' },
  { file: 'bonding.yaml', remap: rules, nics: nics({ enp3s0: 'ens3', enp4s0: 'ens4' }), what: 'bond members and primary follow renamed ethernets' },
  { file: 'bonding_router.yaml', remap: rules, nics: nics({ enp1s0: 'ens1', enp2s0: 'ens2', enp5s0: 'ens5' }), what: 'flow lists of members; an address rule wins over the network rule' },
  { file: 'bridge_vlan.yaml', remap: rules, nics: nics({ enp0s25: 'ens3' }), what: "a vlan's link follows its renamed parent" },
  { file: 'vlan.yaml', remap: { ...rules, dns: ['10.13.0.53'], searchDomains: ['dr.example.com'] }, nics: nics({ mainif: 'ens3' }, { 'de:ad:be:ef:ca:fe': '52:54:00:12:34:56' }), what: "quoted MAC pin rewritten; every interface's DNS list takes the spec's" },
  { file: 'source_routing.yaml', remap: rules, nics: nics({ ens3: 'enp1s0', ens5: 'enp2s0' }), what: 'non-default routes, tables and routing policy' },
  { file: 'direct_connect_gateway_ipv6.yaml', remap: rules, nics: none, what: 'IPv6 only, quoted, on-link gateway named by an address rule' },
  {
    file: '50-cloud-init-all.yaml',
    remap: { ...rules, dns: site.dns!, searchDomains: site.searchDomains! },
    nics: nics({ eth0: 'ens3', eth1: 'ens4', eth3: 'ens6' }, { 'c0:d6:9f:2c:e8:80': '52:54:00:00:00:10', 'aa:d6:9f:2c:e8:80': undefined }),
    what: 'bonds, bridges, vlans, IPv6 beside IPv4; one pin rewritten, one removed',
  },
  { file: '50-cloud-init-bond.yaml', remap: rules, nics: nics({}, { 'aa:bb:cc:dd:e8:00': '52:54:00:00:e8:00', 'aa:bb:cc:dd:e8:01': '52:54:00:00:e8:01' }), what: 'odd list indentation; MAC pins of bond members rewritten' },
  { file: '50-cloud-init-match.yaml', remap: rules, nics: nics({ eth0: 'enp1s0' }, { '00:16:3e:5b:2f:01': '52:54:00:5b:2f:01' }), what: "cloud-init's pinned NIC moved to the target's MAC and name" },
  { file: '50-cloud-init-match-gone.yaml', remap: rules, nics: nics({ eth0: 'enp1s0' }, { '00:16:3e:5b:2f:01': undefined }), what: "cloud-init's pin removed when the target NIC has no known MAC" },
  {
    file: 'odd-legal.yaml',
    remap: { ...rules, dns: ['10.9.14.53', '2001:db8:fe::53'] },
    nics: nics({ engreen: 'ens3', eth1: 'ens4', eth2: 'ens9' }, { '52:54:00:aa:bb:01': '52:54:00:cc:dd:01', '52:54:00:aa:bb:02': undefined }),
    what: 'mapping-form addresses, gateway4/6, flow mappings, comments on the same line',
  },
];

describe('fixupNetplan on real files', () => {
  for (const c of cases) {
    it(`${c.file}: ${c.what}`, () => {
      const result = expectFixture('netplan', c.file, (text) => fixupNetplan(text, new AddressRemap(c.remap), c.nics));
      if (result.kind !== 'unparsable') expect(parseDocument(result.text).errors).toEqual([]);
    });
  }
});

describe('fixupNetplan', () => {
  const remap = new AddressRemap(rules);

  it('reports a file it cannot parse and rewrites nothing in it', () => {
    const result = fixupNetplan(readFixture('netplan', 'broken.yaml'), remap, none);
    expect(result.kind).toBe('unparsable');
    expect(result.kind === 'unparsable' && result.line).toBeGreaterThan(0);
  });

  it('leaves an empty file, and one without a network key, alone', () => {
    expect(fixupNetplan('', remap, none).kind).toBe('unchanged');
    expect(fixupNetplan('# nothing here\n', remap, none).kind).toBe('unchanged');
    expect(fixupNetplan('version: 2\n', remap, none).kind).toBe('unchanged');
  });

  it('keeps a MAC that sets an address, and addresses that only share a prefix with a remapped one', () => {
    const text = 'network:\n  ethernets:\n    eth0:\n      macaddress: de:ad:be:ef:ca:fe\n      addresses: [110.10.10.5/24, 10.10.10.5/24]\n';
    const result = fixupNetplan(text, remap, nics({}, { 'de:ad:be:ef:ca:fe': '52:54:00:12:34:56' }));
    expect(result.kind === 'changed' && result.text).toBe('network:\n  ethernets:\n    eth0:\n      macaddress: de:ad:be:ef:ca:fe\n      addresses: [110.10.10.5/24, 10.20.10.5/24]\n');
  });

  it('refuses a rename that would give two interfaces one name', () => {
    const text = 'network:\n  ethernets:\n    eth0: {dhcp4: true}\n    ens3: {dhcp4: true}\n';
    const result = fixupNetplan(text, remap, nics({ eth0: 'ens3' }));
    expect(result).toMatchObject({ kind: 'unparsable', line: 3 });
  });

  it('adds DNS servers below a block list and comments out the ones the spec drops', () => {
    const text = 'network:\n  ethernets:\n    eth0:\n      nameservers:\n        addresses:\n          - 10.10.10.1\n';
    const more = fixupNetplan(text, new AddressRemap({ ...rules, dns: ['10.20.0.53', '10.20.0.54'] }), none);
    expect(more.kind === 'changed' && more.text).toBe('network:\n  ethernets:\n    eth0:\n      nameservers:\n        addresses:\n          - 10.20.0.53\n          - 10.20.0.54\n');
    const fewer = fixupNetplan(more.kind === 'changed' ? more.text : '', new AddressRemap({ ...rules, dns: ['10.20.0.53'] }), none);
    expect(fewer.kind === 'changed' && fewer.text).toBe('network:\n  ethernets:\n    eth0:\n      nameservers:\n        addresses:\n          - 10.20.0.53\n          # - 10.20.0.54\n');
  });
});

describe('fixupNetplan over generated files', () => {
  /** A small seeded generator, so a failure names a seed that reproduces it. */
  function random(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }

  it('moves only addresses inside a remapped network, keeps their host bits, and is idempotent', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
      const sources = ['10.0.2', '10.0.3', '192.168.7', '110.0.2', '10.0.20'];
      const remapped = sources.filter(() => next() < 0.5);
      const rules: IpRemap = { networks: remapped.map((net, i) => ({ from: `${net}.0/24`, to: `172.16.${100 + i}.0/24` })), addresses: [] };
      const lines = ['network:', '  version: 2', '  ethernets:'];
      const written: string[] = [];
      for (let n = 0; n < 1 + Math.floor(next() * 4); n++) {
        const addresses = Array.from({ length: 1 + Math.floor(next() * 3) }, () => `${pick(sources)}.${1 + Math.floor(next() * 254)}/24`);
        written.push(...addresses);
        const quote = pick(['', '"', "'"]);
        const items = addresses.map((a) => `${quote}${a}${quote}`);
        lines.push(`    eth${n}:`);
        if (next() < 0.5) lines.push(`      addresses: [${items.join(', ')}]`);
        else lines.push('      addresses:', ...items.map((item) => `        - ${item}${next() < 0.3 ? '  # note' : ''}`));
      }
      const text = `${lines.join('\n')}\n`;
      const remap = new AddressRemap(rules);
      const result = fixupNetplan(text, remap, none);
      expect(result.kind, `seed ${seed}`).not.toBe('unparsable');
      const out = result.kind === 'unparsable' ? '' : result.text;
      const doc = parseDocument(out).toJS() as { network: { ethernets: Record<string, { addresses: string[] }> } };
      const after = Object.values(doc.network.ethernets).flatMap((e) => e.addresses);
      const expected = written.map((address) => {
        const [net, host] = [address.slice(0, address.lastIndexOf('.')), address.slice(address.lastIndexOf('.') + 1)];
        const i = remapped.indexOf(net);
        return i === -1 ? address : `172.16.${100 + i}.${host}`;
      });
      expect(after, `seed ${seed}`).toEqual(expected);
      expect(fixupNetplan(out, remap, none), `seed ${seed}`).toEqual({ kind: 'unchanged', text: out });
    }
  });
});
