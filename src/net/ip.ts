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

/** Parses a dotted-quad or RFC 4291 IPv6 text; zone ids (fe80::1%eth0) and leading zeros (010.0.0.1) are refused. */
export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const value = parseIpv6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** Why `text` is not an address, in a few words for a message; undefined when it is one. */
export function ipProblem(text: string): string | undefined {
  if (parseIp(text)) return undefined;
  if (text.includes(':')) {
    if (text.includes('%')) return 'zone ids such as %eth0 are not allowed';
    if (text.split('::').length > 2) return "'::' may appear only once";
    return "IPv6 is 8 groups of 1 to 4 hex digits, with one '::' for a run of zero groups";
  }
  const parts = text.split('.');
  if (parts.length !== 4) return `IPv4 has 4 numbers, not ${parts.length}`;
  const tooBig = parts.find((p) => /^\d+$/.test(p) && Number(p) > 255);
  if (tooBig) return `${tooBig} is more than 255`;
  const leadingZero = parts.find((p) => /^0\d/.test(p));
  if (leadingZero) return `${leadingZero} has a leading zero, which some tools read as octal`;
  return 'IPv4 is 4 numbers from 0 to 255';
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    // A leading zero reads as octal to some tools (inet_aton): refuse it rather than guess.
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  const split = splitEmbeddedIpv4(text);
  if (!split) return undefined;
  const { body, trailing } = split;
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const head = hexGroups(halves[0]!);
  const tail = halves.length === 2 ? hexGroups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const written = head.length + tail.length + trailing.length;
  // Without '::' all eight groups are written; with it, '::' stands for at least one group.
  if (halves.length === 1 ? written !== 8 : written > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - written).fill(0), ...tail, ...trailing];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Splits off an embedded IPv4 tail (::ffff:10.0.0.1), which counts as the last two groups. */
function splitEmbeddedIpv4(text: string): { body: string; trailing: number[] } | undefined {
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (!last.includes('.')) return { body: text, trailing: [] };
  const v4 = parseIpv4(last);
  if (v4 === undefined) return undefined;
  let body = text.slice(0, lastColon + 1);
  if (!body.endsWith('::')) body = body.slice(0, -1);
  return { body, trailing: [Number(v4 >> 16n), Number(v4 & 0xffffn)] };
}

function hexGroups(side: string): number[] | undefined {
  if (side === '') return [];
  const out: number[] = [];
  for (const part of side.split(':')) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(part)) return undefined;
    out.push(parseInt(part, 16));
  }
  return out;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as '::', IPv4-mapped as ::ffff:a.b.c.d. */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return formatIpv4(ip.value);
  if (ip.value >> 32n === 0xffffn) return `::ffff:${formatIpv4(ip.value & 0xffffffffn)}`;
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt((7 - i) * 16)) & 0xffffn));
  const run = longestZeroRun(groups);
  const hex = groups.map((g) => g.toString(16));
  if (run.length < 2) return hex.join(':');
  return `${hex.slice(0, run.start).join(':')}::${hex.slice(run.start + run.length).join(':')}`;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

/** The first of the longest runs of zero groups. */
function longestZeroRun(groups: readonly number[]): { start: number; length: number } {
  let best = { start: -1, length: 0 };
  let start = -1;
  for (let i = 0; i <= groups.length; i++) {
    if (i < groups.length && groups[i] === 0) {
      if (start === -1) start = i;
      continue;
    }
    if (start !== -1 && i - start > best.length) best = { start, length: i - start };
    start = -1;
  }
  return best;
}

/**
 * Parses `addr/prefix` and demands that no host bits are set (10.0.0.1/24 is refused), because a remap
 * rule written that way is almost always a typo for a different network. The problem, when there is one,
 * is a clause that completes "… is not a valid network: ".
 */
export function parseCidr(text: string): { cidr?: Cidr; problem?: string } {
  const slash = text.indexOf('/');
  if (slash === -1) return { problem: 'it has no /prefix' };
  const address = text.slice(0, slash);
  const ip = parseIp(address);
  if (!ip) return { problem: `'${address}' is not an IPv4 or IPv6 address (${ipProblem(address)!})` };
  const prefixText = text.slice(slash + 1);
  const bits = bitsOf(ip.family);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return { problem: `the prefix /${prefixText} is out of range for IPv${ip.family} (0 to ${bits})` };
  }
  const prefix = Number(prefixText);
  const network = ip.value & networkMask(ip.family, prefix);
  if (network !== ip.value) {
    return { problem: `host bits are set after the first ${prefix} bits (did you mean ${formatIp({ family: ip.family, value: network })}/${prefix}?)` };
  }
  return { cidr: { family: ip.family, network, prefix } };
}

function networkMask(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  return (ip.value & networkMask(cidr.family, cidr.prefix)) === cidr.network;
}

/** Two networks overlap exactly when one contains the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefix, b.prefix);
  const mask = networkMask(a.family, shorter);
  return (a.network & mask) === (b.network & mask);
}
