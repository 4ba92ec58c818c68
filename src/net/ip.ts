import { isIP } from 'node:net';

export interface IpAddress {
  readonly family: 4 | 6;
  /** The address as an unsigned integer (32 or 128 bits). */
  readonly value: bigint;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

export function bitsOf(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

export function parseIp(text: string): IpAddress | undefined {
  const family = isIP(text);
  if (family === 4) {
    return { family, value: text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n) };
  }
  if (family === 6) {
    if (text.includes('%')) return undefined; // zone ids have no place in a remap
    let groups = expandIpv6(text);
    return { family, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n) };
  }
  return undefined;
}

function expandIpv6(text: string): number[] {
  let head = text;
  let tail: number[] = [];
  // An embedded IPv4 tail (::ffff:10.0.0.1) counts as two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const v = parseIp(v4[1]!)!.value;
    tail = [Number(v >> 16n), Number(v & 0xffffn)];
    head = text.slice(0, -v4[1]!.length).replace(/:$/, text.endsWith('::' + v4[1]) ? ':' : '');
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const parse = (s: string | undefined): number[] => (s ? s.split(':').filter(Boolean).map((g) => parseInt(g, 16)) : []);
  const l = parse(left);
  const r = [...parse(right), ...tail];
  const fill = right === undefined && !head.includes('::') ? [] : new Array<number>(8 - l.length - r.length).fill(0);
  return [...l, ...fill, ...r];
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt((7 - i) * 16)) & 0xffffn));
  // The longest run of two or more zero groups becomes '::' (RFC 5952).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Parses `addr/prefix`. `strict` also demands that no host bits are set (10.0.0.1/24 is refused). */
export function parseCidr(text: string): { cidr?: Cidr; problem?: string } {
  const slash = text.indexOf('/');
  if (slash === -1) return { problem: 'has no /prefix' };
  const ip = parseIp(text.slice(0, slash));
  if (!ip) return { problem: `'${text.slice(0, slash)}' is not an IP address` };
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > bitsOf(ip.family)) {
    return { problem: `the prefix /${prefixText} is out of range for IPv${ip.family} (0 to ${bitsOf(ip.family)})` };
  }
  const hostMask = (1n << BigInt(bitsOf(ip.family) - prefix)) - 1n;
  if ((ip.value & hostMask) !== 0n) {
    const network = formatIp({ family: ip.family, value: ip.value & ~hostMask });
    return { problem: `has host bits set (the network is ${network}/${prefix})` };
  }
  return { cidr: { family: ip.family, network: ip.value, prefix } };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const shift = BigInt(bitsOf(cidr.family) - cidr.prefix);
  return ip.value >> shift === cidr.network >> shift;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shift = BigInt(bitsOf(a.family) - Math.min(a.prefix, b.prefix));
  return a.network >> shift === b.network >> shift;
}
