import type { IpRemap } from '../config/spec.js';
import { bitsOf, cidrContains, formatCidr, formatIp, parseCidr, parseIp, type Cidr, type IpAddress } from '../net/ip.js';

/** Where an address goes at the target site, and the rule that sends it there. */
export interface Remapped {
  readonly to: string;
  /** "network 10.0.1.0/24 -> 10.9.1.0/24" or "address 10.0.1.5 -> 10.9.9.9". */
  readonly rule: string;
}

interface NetworkRule {
  readonly from: Cidr;
  readonly to: Cidr;
  readonly text: string;
}

/**
 * The spec's ipRemap as a function over address texts. Address rules win over network rules; a network
 * rule keeps the host bits (10.0.1.7 in 10.0.1.0/24 -> 10.9.1.7 in 10.9.1.0/24). Loopback and the
 * unspecified address never move. Only a text that parses as a whole address is considered, so
 * `110.0.2.5` is never taken for `10.0.2.5` and netmasks such as 255.255.255.0 stay as written unless a
 * rule names them.
 */
export class AddressRemap {
  readonly #addresses = new Map<string, { to: IpAddress; text: string }>();
  readonly #networks: NetworkRule[] = [];
  readonly #spec: IpRemap;

  constructor(spec: IpRemap) {
    this.#spec = spec;
    for (const rule of spec.addresses) {
      const from = parseIp(rule.from);
      const to = parseIp(rule.to);
      if (!from || !to || from.family !== to.family) continue; // the loader refused these already
      const key = keyOf(from);
      // The first rule for an address wins: the replica's own rules come before the environment's.
      if (!this.#addresses.has(key)) this.#addresses.set(key, { to, text: `address ${rule.from} -> ${rule.to}` });
    }
    for (const rule of spec.networks) {
      const from = parseCidr(rule.from).cidr;
      const to = parseCidr(rule.to).cidr;
      if (!from || !to || from.family !== to.family || from.prefix !== to.prefix) continue;
      this.#networks.push({ from, to, text: `network ${formatCidr(from)} -> ${formatCidr(to)}` });
    }
  }

  /** True when the spec asks for any change to the network settings. */
  get isEmpty(): boolean {
    const s = this.#spec;
    return this.#addresses.size === 0 && this.#networks.length === 0 && s.gateway === undefined && s.dns === undefined && s.searchDomains === undefined;
  }

  /** The new text for one address as written (`10.0.1.7`, `fe80::1`), or undefined when no rule names it. */
  address(text: string): Remapped | undefined {
    const ip = parseIp(text);
    if (!ip || isFixed(ip)) return undefined;
    const byAddress = this.#addresses.get(keyOf(ip));
    if (byAddress) return same(text, ip, byAddress.to) ? undefined : { to: formatIp(byAddress.to), rule: byAddress.text };
    const net = this.#networks.find((n) => cidrContains(n.from, ip));
    if (!net) return undefined;
    const hostMask = (1n << BigInt(bitsOf(ip.family) - net.from.prefix)) - 1n;
    const moved: IpAddress = { family: ip.family, value: net.to.network | (ip.value & hostMask) };
    return same(text, ip, moved) ? undefined : { to: formatIp(moved), rule: net.text };
  }

  /** `addr/prefix` with the address remapped and the prefix kept; undefined when the address does not move. */
  cidr(text: string): Remapped | undefined {
    const slash = text.indexOf('/');
    if (slash === -1) return this.address(text);
    const moved = this.address(text.slice(0, slash));
    return moved && { to: `${moved.to}${text.slice(slash)}`, rule: moved.rule };
  }

  /**
   * The default gateway's new text: the spec's `gateway` when it is set and of the same family as the
   * old one, else whatever the address rules make of it. An unspecified gateway (0.0.0.0, ::) means an
   * on-link route, not a router, so it stays.
   */
  gateway(text: string): Remapped | undefined {
    const ip = parseIp(text);
    const want = this.#spec.gateway;
    if (ip && want !== undefined && ip.value !== 0n) {
      const to = parseIp(want);
      if (to && to.family === ip.family) return same(text, ip, to) ? undefined : { to: formatIp(to), rule: `gateway ${want}` };
    }
    return this.address(text);
  }

  /** The DNS servers of one family at the target site, when the spec names them; undefined leaves them to the address rules. */
  dnsServers(family: 4 | 6): readonly string[] | undefined {
    const dns = this.#spec.dns;
    if (dns === undefined) return undefined;
    return dns.filter((d) => parseIp(d)?.family === family);
  }

  /** Every DNS server the spec names, in its order; undefined when it names none. */
  get dns(): readonly string[] | undefined {
    return this.#spec.dns;
  }

  get searchDomains(): readonly string[] | undefined {
    return this.#spec.searchDomains;
  }

  get hostname(): string | undefined {
    return this.#spec.hostname;
  }

  /**
   * Rewrites every whole address (or `addr/prefix`) inside a free-form value such as
   * `10.0.1.7/24,10.0.1.1` or `dns=10.0.1.2;10.0.1.3;`: a token is a maximal run of address
   * characters, so a longer number or name that merely contains an address is never touched.
   * Returns the new value and the rules used (empty when nothing moved).
   */
  inText(value: string): { text: string; rules: string[] } {
    const rules: string[] = [];
    const text = value.replace(ADDRESS_TOKEN, (token: string) => {
      const moved = this.cidr(token);
      if (!moved) return token;
      rules.push(`${token} -> ${moved.to} (${moved.rule})`);
      return moved.to;
    });
    return { text, rules };
  }
}

/**
 * A candidate address: a run of hex digits, dots and colons (with an optional /prefix) that is not part
 * of a longer word. Candidates that do not parse as an address are left as written.
 */
const ADDRESS_TOKEN = /(?<![0-9A-Za-z_.:-])[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*(?:\/\d{1,3})?(?![0-9A-Za-z_.:-])/g;

function keyOf(ip: IpAddress): string {
  return `${ip.family}:${ip.value}`;
}

/** Loopback (127/8, ::1) and the unspecified address (0.0.0.0, ::) are never remapped. */
function isFixed(ip: IpAddress): boolean {
  if (ip.family === 4) return ip.value >> 24n === 127n || ip.value === 0n;
  return ip.value === 1n || ip.value === 0n;
}

/** A rule that maps an address onto itself changes nothing, even in how it is written. */
function same(_text: string, from: IpAddress, to: IpAddress): boolean {
  return from.family === to.family && from.value === to.value;
}
