import type { AddressRemap } from './remap.js';

/** A list of values the spec replaces, with the reason for the operator. */
export interface Replaced {
  readonly values: readonly string[];
  readonly reason: string;
}

/**
 * The DNS servers a file should list at the target site. When the spec names servers they replace the
 * file's; a list that belongs to one address family (NetworkManager's [ipv4] dns=) takes the spec's
 * servers of that family, and keeps its own under the address rules when the spec names none of that
 * family, so IPv4-only resolvers in the spec do not wipe out the IPv6 ones. Without spec servers, each
 * server follows the address rules. Undefined when nothing changes.
 */
export function dnsServersAt(servers: readonly string[], remap: AddressRemap, family?: 4 | 6): Replaced | undefined {
  const wanted = family === undefined ? remap.dns : remap.dnsServers(family);
  if (wanted !== undefined && (family === undefined || wanted.length > 0)) {
    if (sameList(servers, wanted)) return undefined;
    return { values: wanted, reason: `DNS servers ${shown(servers)} -> ${shown(wanted)} (the spec's dns)` };
  }
  const rules: string[] = [];
  const values = servers.map((s) => {
    const moved = remap.inText(s);
    rules.push(...moved.rules);
    return moved.text;
  });
  if (rules.length === 0) return undefined;
  return { values, reason: rules.map((r) => `DNS server ${r}`).join('; ') };
}

/** The search domains a file should list at the target site: the spec's when it sets them. */
export function searchDomainsAt(domains: readonly string[], remap: AddressRemap): Replaced | undefined {
  const wanted = remap.searchDomains;
  if (wanted === undefined || sameList(domains, wanted)) return undefined;
  return { values: wanted, reason: `search domains ${shown(domains)} -> ${shown(wanted)} (the spec's searchDomains)` };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v.toLowerCase() === b[i]!.toLowerCase());
}

function shown(list: readonly string[]): string {
  return list.length === 0 ? '(none)' : list.join(' ');
}

/**
 * Writes `values` in place of the first `count` whitespace-separated items of `text` (the part of a
 * line that holds the list, maybe followed by other words such as a comment). A lone backslash that
 * continues the line is not an item. Item for item when the counts agree, so tabs and runs of spaces
 * stay; else the new items go where the first old one was and the other old ones go with the blank
 * before them, keeping line breaks so a continued line keeps its physical lines.
 */
export function replaceWords(text: string, count: number, values: readonly string[]): string {
  const parts = text.split(/(\s+)/);
  const itemParts: number[] = [];
  parts.forEach((part, i) => {
    if (i % 2 === 0 && part !== '' && part !== '\\' && itemParts.length < count) itemParts.push(i);
  });
  if (itemParts.length === values.length) {
    itemParts.forEach((p, k) => (parts[p] = values[k]!));
    return parts.join('');
  }
  if (itemParts.length === 0) return `${text.replace(/\s+$/, '')}${text.trim() === '' ? '' : ' '}${values.join(' ')}`;
  itemParts.forEach((p, k) => {
    if (k === 0) {
      parts[p] = values.join(' ');
      return;
    }
    parts[p] = '';
    if (!parts[p - 1]!.includes('\n')) parts[p - 1] = '';
  });
  return parts.join('');
}
