import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IpRemap } from '../../src/config/spec.js';
import { fixupIfcfg, fixupIfcfgRoutes } from '../../src/fixup/ifcfg.js';
import { fixupIfupdown } from '../../src/fixup/ifupdown.js';
import { fixupNetworkd } from '../../src/fixup/networkd.js';
import { fixupNmKeyfile } from '../../src/fixup/nm-keyfile.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { formatIp, type IpAddress } from '../../src/net/ip.js';
import { expectOnlyChangedLines, nicIdentity, type Transform } from './network-fixture.js';

/**
 * Property: for random remaps over generated configurations, an address changes exactly when an address
 * rule names it or a network rule's network holds it, a moved address keeps its host bits, nothing
 * else in the file changes (comments and unknown keys holding the same addresses included), and a
 * second run changes nothing. The expected text is rendered from the same template with an oracle
 * written here, independently of AddressRemap.
 */

interface Net {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}
interface Rules {
  readonly networks: readonly { from: Net; to: Net }[];
  readonly addresses: readonly { from: IpAddress; to: IpAddress }[];
}

const bits = (family: 4 | 6): number => (family === 4 ? 32 : 128);
const mask = (family: 4 | 6, prefix: number): bigint => ((1n << BigInt(bits(family))) - 1n) ^ ((1n << BigInt(bits(family) - prefix)) - 1n);
const contains = (net: Net, ip: IpAddress): boolean => net.family === ip.family && (ip.value & mask(net.family, net.prefix)) === net.network;
const overlaps = (a: Net, b: Net): boolean => a.family === b.family && (a.network & mask(a.family, Math.min(a.prefix, b.prefix))) === (b.network & mask(a.family, Math.min(a.prefix, b.prefix)));
const netText = (n: Net): string => `${formatIp({ family: n.family, value: n.network })}/${n.prefix}`;

/** Loopback and the unspecified address never move, whatever a rule says. */
function fixed(ip: IpAddress): boolean {
  return ip.family === 4 ? ip.value >> 24n === 127n || ip.value === 0n : ip.value <= 1n;
}

function oracle(ip: IpAddress, rules: Rules): IpAddress {
  if (fixed(ip)) return ip;
  const byAddress = rules.addresses.find((r) => r.from.family === ip.family && r.from.value === ip.value);
  if (byAddress) return byAddress.to;
  const net = rules.networks.find((r) => contains(r.from, ip));
  if (!net) return ip;
  const host = ip.value & ~mask(ip.family, net.from.prefix) & ((1n << BigInt(bits(ip.family))) - 1n);
  return { family: ip.family, value: net.to.network | host };
}

const u32 = fc.integer({ min: 0, max: 0xffffffff }).map(BigInt);
const u128 = fc.tuple(u32, u32, u32, u32).map(([a, b, c, d]) => (a << 96n) | (b << 64n) | (c << 32n) | d);
const ipOf = (family: 4 | 6) => (family === 4 ? u32 : u128).map((value): IpAddress => ({ family, value }));
const netOf = (family: 4 | 6) =>
  fc.tuple(family === 4 ? u32 : u128, family === 4 ? fc.integer({ min: 8, max: 30 }) : fc.integer({ min: 32, max: 112 })).map(
    ([value, prefix]): Net => ({ family, network: value & mask(family, prefix), prefix }),
  );

/**
 * Rules the loader would take and that a second run cannot chain: no two source networks overlap, and
 * no target (network or address) lands in a source, so "twice == once" is a fair demand.
 */
const rulesArb: fc.Arbitrary<Rules> = fc
  .tuple(
    fc.array(fc.oneof(netOf(4), netOf(6)).chain((from) => netOf(from.family).map((to) => ({ from, to: { ...to, network: to.network & mask(to.family, from.prefix), prefix: from.prefix } }))), { maxLength: 4 }),
    fc.array(fc.oneof(ipOf(4), ipOf(6)).chain((from) => ipOf(from.family).map((to) => ({ from, to }))), { maxLength: 3 }),
  )
  .map(([networks, addresses]) => {
    const keptNets: { from: Net; to: Net }[] = [];
    for (const r of networks) {
      const sources = [...keptNets.map((k) => k.from), r.from];
      const targets = [...keptNets.map((k) => k.to), r.to];
      if (keptNets.some((k) => overlaps(k.from, r.from))) continue;
      if (targets.some((t) => sources.some((s) => overlaps(s, t)))) continue;
      keptNets.push(r);
    }
    const inSource = (ip: IpAddress) => keptNets.some((k) => contains(k.from, ip));
    const keptAddresses: { from: IpAddress; to: IpAddress }[] = [];
    for (const r of addresses) {
      // A network's target that holds this address would move it again on the second run (the loader refuses that chain).
      const inTarget = keptNets.some((k) => contains(k.to, r.from));
      if (inSource(r.to) || inTarget || fixed(r.from) || fixed(r.to)) continue;
      const all = [...keptAddresses, r];
      if (all.some((a) => all.some((b) => b.from.family === a.to.family && b.from.value === a.to.value))) continue;
      if (keptAddresses.some((a) => a.from.family === r.from.family && a.from.value === r.from.value)) continue;
      keptAddresses.push(r);
    }
    return { networks: keptNets, addresses: keptAddresses };
  });

/** Addresses worth trying: inside each source network, just outside it, the rules' own addresses, loopback, unspecified, and any at all. */
function candidates(rules: Rules, family: 4 | 6): fc.Arbitrary<IpAddress> {
  const near: IpAddress[] = [];
  for (const { from } of rules.networks.filter((r) => r.from.family === family)) {
    const size = 1n << BigInt(bits(family) - from.prefix);
    const top = (1n << BigInt(bits(family))) - 1n;
    if (from.network > 0n) near.push({ family, value: from.network - 1n });
    if (from.network + size <= top) near.push({ family, value: from.network + size });
  }
  for (const r of rules.addresses.filter((a) => a.from.family === family)) near.push(r.from);
  const inside = rules.networks
    .filter((r) => r.from.family === family)
    .map((r) => ipOf(family).map((ip): IpAddress => ({ family, value: r.from.network | (ip.value & ~mask(family, r.from.prefix) & ((1n << BigInt(bits(family))) - 1n)) })));
  const pool: fc.Arbitrary<IpAddress>[] = [ipOf(family), fc.constantFrom<IpAddress>({ family, value: family === 4 ? 0x7f000001n : 1n }, { family, value: 0n }), ...inside];
  if (near.length > 0) pool.push(fc.constantFrom(...near));
  return fc.oneof(...pool);
}

/**
 * A template renders a file from addresses: `m` is what the fixup should make of an address it owns,
 * `g` of a default gateway; addresses in comments and unknown keys are written `raw`.
 */
type Template = (v4: readonly IpAddress[], v6: readonly IpAddress[], m: (ip: IpAddress) => string, p: number, g: (ip: IpAddress) => string) => string;
const raw = (ip: IpAddress): string => formatIp(ip);

const templates: Record<string, { transform: Transform; render: Template }> = {
  ifupdown: {
    transform: fixupIfupdown,
    render: (a, v, m, p, g) =>
      [
        'auto eth0',
        'iface eth0 inet static',
        `\taddress ${m(a[0]!)}/${p}`,
        '\tnetmask 255.255.255.0',
        `\tgateway ${g(a[1]!)}`,
        `\tdns-nameservers ${m(a[2]!)}\t${m(a[3]!)}`,
        `\tup ip route add ${m(a[4]!)}/${p} via ${m(a[5]!)} dev eth0 || true`,
        `\tdescription host ${raw(a[6]!)}`,
        `# was ${raw(a[0]!)}`,
        'iface eth0 inet6 static',
        `    address ${m(v[0]!)}/64`,
        `    gateway ${g(v[1]!)}`,
        '',
      ].join('\n'),
  },
  networkd: {
    transform: fixupNetworkd,
    render: (a, v, m, p, g) =>
      [
        '[Match]',
        'Name=eth0',
        '',
        '[Network]',
        `Description=host ${raw(a[6]!)}`,
        `Address=${m(a[0]!)}/${p}`,
        `Address=${m(v[0]!)}/64`,
        `Gateway=${g(a[1]!)}`,
        `DNS=${m(a[2]!)} ${m(v[1]!)}`,
        `# was ${raw(a[0]!)}`,
        '',
        '[Route]',
        `Destination=${m(a[4]!)}/${p}`,
        `Gateway=${m(a[5]!)}`,
        '',
      ].join('\n'),
  },
  'nm-keyfile': {
    transform: fixupNmKeyfile,
    render: (a, v, m, p, g) =>
      [
        '[connection]',
        `id=host ${raw(a[6]!)}`,
        '',
        '[ipv4]',
        'method=manual',
        `address1=${m(a[0]!)}/${p},${g(a[1]!)}`,
        `dns=${m(a[2]!)};${m(a[3]!)};`,
        `route1=${m(a[4]!)}/${p},${m(a[5]!)},100`,
        `# was ${raw(a[0]!)}`,
        '',
        '[ipv6]',
        `address1=${m(v[0]!)}/64`,
        `gateway=${g(v[1]!)}`,
        '',
      ].join('\n'),
  },
  ifcfg: {
    transform: fixupIfcfg,
    render: (a, v, m, _p, g) =>
      [
        'DEVICE=eth0',
        `IPADDR=${m(a[0]!)}`,
        'NETMASK=255.255.255.0',
        `GATEWAY="${g(a[1]!)}"`,
        `DNS1=${m(a[2]!)}`,
        `DNS2='${m(a[3]!)}' # second`,
        `COMMENT="host ${raw(a[6]!)}"`,
        `# was ${raw(a[0]!)}`,
        `IPV6ADDR=${m(v[0]!)}/64`,
        `IPV6_DEFAULTGW=${g(v[1]!)}%eth0`,
        '',
      ].join('\n'),
  },
  'ifcfg route file': {
    transform: fixupIfcfgRoutes,
    render: (a, _v, m, p) =>
      [`${m(a[4]!)}/${p} via ${m(a[5]!)} dev eth0`, `ADDRESS0=${m(a[0]!)}`, 'NETMASK0=255.255.255.0', `GATEWAY0=${m(a[1]!)}`, `# was ${raw(a[0]!)}`, ''].join('\n'),
  },
};

const specOf = (rules: Rules, gateway: IpAddress | null): IpRemap => ({
  ...(gateway === null ? {} : { gateway: formatIp(gateway) }),
  networks: rules.networks.map((r) => ({ from: netText(r.from), to: netText(r.to) })),
  addresses: rules.addresses.map((r) => ({ from: formatIp(r.from), to: formatIp(r.to) })),
});

const caseArb = rulesArb.chain((rules) =>
  fc.record({
    rules: fc.constant(rules),
    v4: fc.array(candidates(rules, 4), { minLength: 7, maxLength: 7 }),
    v6: fc.array(candidates(rules, 6), { minLength: 2, maxLength: 2 }),
    prefix: fc.integer({ min: 8, max: 32 }),
    gateway: fc.option(fc.oneof(ipOf(4), ipOf(6))),
  }),
);

describe('network fixups over generated configurations', () => {
  for (const [format, { transform, render }] of Object.entries(templates)) {
    it(`${format}: only addresses the rules name move, with their host bits; only default gateways take the spec's; a second run changes nothing`, () => {
      fc.assert(
        fc.property(caseArb, ({ rules, v4, v6, prefix, gateway }) => {
          const moved = (ip: IpAddress): string => formatIp(oracle(ip, rules));
          // The spec's gateway replaces a default gateway of its family; an on-link (unspecified) one stays.
          const defaultGateway = (ip: IpAddress): string => (gateway !== null && gateway.family === ip.family && ip.value !== 0n ? formatIp(gateway) : moved(ip));
          const input = render(v4, v6, raw, prefix, raw);
          const expected = render(v4, v6, moved, prefix, defaultGateway);
          const remap = new AddressRemap(specOf(rules, gateway));
          const nics = nicIdentity({});
          const result = transform(input, remap, nics);
          expect(result.kind).not.toBe('unparsable');
          if (result.kind === 'unparsable') return;
          expect(result.text).toBe(expected);
          expectOnlyChangedLines(input, result);
          expect(transform(result.text, remap, nics).kind).toBe('unchanged');
        }),
        { numRuns: 200 },
      );
    });
  }
});
