import { isDefaultDestination, movedAddress, movedGateway, movedInText, type Moved } from './address-edits.js';
import { dnsServersAt, replaceWords, searchDomainsAt, type Replaced } from './dns-lists.js';
import { commentIniEntry, parseIni, setIniValue, type IniEntry } from './ini-lines.js';
import { binaryProblem, LineEdits } from './line-edits.js';
import { interfaceReason, isMac, macPin, renamedFileName, renameInList, targetInterface } from './nic-rename.js';
import type { AddressRemap } from './remap.js';
import type { FixupResult, NicIdentity } from './types.js';

/**
 * The network fixup of one systemd-networkd file (`.network`, `.link` or `.netdev`): addresses,
 * gateways, routes, DNS servers and search domains, interface names, and `[Match]` MAC pins (rewritten
 * to the target's NIC, or removed when its MAC is not known). `[Link] MACAddress=` and `[NetDev]
 * MACAddress=` set an address rather than pick a NIC, so they stay.
 */
export function fixupNetworkd(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const edits = new LineEdits(text);
  const parsed = parseIni(edits, { isComment: (l) => /^\s*[#;]/.test(l), continuation: true });
  if ('problem' in parsed) return { kind: 'unparsable', problem: parsed.problem, line: parsed.line };
  const { entries } = parsed;
  const firstOf = new Map<string, IniEntry>();
  for (const entry of entries) {
    const name = `${entry.section}.${entry.key}`;
    if (name === 'Match.MACAddress' || name === 'Match.PermanentMACAddress') {
      const pinned = pinEdit(entry, entries, nics);
      if (pinned === 'alone') return { kind: 'unparsable', problem: onlyPinProblem(entry), line: entry.lines[0]! + 1 };
      if (pinned === 'remove') commentIniEntry(edits, entry, removedPins(entry, nics));
      else if (pinned) setIniValue(edits, entry, pinned.to, pinned.reason);
      continue;
    }
    if ((name === 'Network.DNS' || name === 'Network.Domains') && entry.value.trim() !== '') {
      // networkd adds up repeated DNS= lines; the spec's list goes on the first and replaces the others.
      const first = firstOf.get(name);
      const replacing = name === 'Network.DNS' ? remap.dns !== undefined : remap.searchDomains !== undefined;
      if (first && replacing) {
        commentIniEntry(edits, entry, `${entry.key}=${entry.value.trim()} replaced by the spec's list on line ${first.lines[0]! + 1}`);
        continue;
      }
      firstOf.set(name, entry);
      const list = entry.value.trim().split(/\s+/).filter((w) => w !== '\\');
      const replaced: Replaced | undefined = name === 'Network.DNS' ? dnsServersAt(list, remap) : searchDomainsAt(list, remap);
      if (replaced) setIniValue(edits, entry, replaceWords(entry.value, list.length, replaced.values), replaced.reason);
      continue;
    }
    const moved = valueEdit(name, entry, entries, remap, nics);
    if (moved) setIniValue(edits, entry, moved.to, moved.reason);
  }
  return edits.result();
}

/** The file's new name when it carries an origin interface name (`10-eth0.network`); undefined when it keeps its name. */
export function networkdFileName(fileName: string, nics: NicIdentity): string | undefined {
  return renamedFileName(fileName, nics);
}

const INTERFACE_KEYS = new Set([
  'Match.Name', 'Match.OriginalName', 'Link.Name', 'NetDev.Name', 'Peer.Name',
  'Network.Bond', 'Network.Bridge', 'Network.VLAN', 'Network.MACVLAN', 'Network.MACVTAP', 'Network.IPVLAN', 'Network.IPVTAP',
  'Network.VXLAN', 'Network.Tunnel', 'Network.VRF', 'Network.Xfrm', 'Network.BindCarrier',
]);

/** Keys whose value is one address or network, moved by the address rules; the value names it for the operator. */
const ADDRESS_KEYS = new Map([
  ['Network.Address', 'address'],
  ['Address.Address', 'address'],
  ['Address.Peer', 'peer address'],
  ['Address.Broadcast', 'broadcast address'],
  ['Route.Destination', 'route destination'],
  ['Route.Source', 'route source'],
  ['Route.PreferredSource', 'route source address'],
  ['RoutingPolicyRule.From', 'rule source'],
  ['RoutingPolicyRule.To', 'rule destination'],
  ['Neighbor.Address', 'neighbour address'],
  ['DHCPServerStaticLease.Address', 'static lease address'],
]);

function valueEdit(name: string, entry: IniEntry, entries: readonly IniEntry[], remap: AddressRemap, nics: NicIdentity): Moved | undefined {
  const value = entry.value;
  if (INTERFACE_KEYS.has(name)) {
    const renamed = renameInList(value, nics);
    return renamed.reasons.length === 0 ? undefined : { to: renamed.text, reason: renamed.reasons.join('; ') };
  }
  const what = ADDRESS_KEYS.get(name);
  if (what !== undefined) return movedAddress(what, value, remap);
  if (name === 'Network.Gateway') return movedGateway(value, remap);
  // What a DHCP server on this link hands out follows the address rules, never the spec's own lists.
  if (name === 'DHCPServer.DNS' || name === 'DHCPServer.Router' || name === 'DHCPServer.ServerAddress') return movedInText('DHCP server setting', value, remap);
  if (name === 'Route.MultiPathRoute') return multipathEdit(value, remap, nics);
  if (name === 'Route.Gateway') {
    const destination = entries.find((e) => e.sectionIndex === entry.sectionIndex && e.key === 'Destination')?.value.trim();
    // A [Route] without a destination is a default route, so its gateway is the default gateway.
    if (destination === undefined || isDefaultDestination(destination)) return movedGateway(value, remap);
    return movedAddress('route gateway', value, remap);
  }
  return undefined;
}

/**
 * A `[Match]` MAC list with each origin NIC's MAC rewritten to the target's or dropped; 'remove' when
 * none is left, and 'alone' when that would leave a `[Match]` with no other condition, which matches
 * every interface.
 */
function pinEdit(entry: IniEntry, entries: readonly IniEntry[], nics: NicIdentity): Moved | 'remove' | 'alone' | undefined {
  const reasons: string[] = [];
  let kept = 0;
  let dropped = false;
  const words = entry.value.split(/(\s+)/).map((word, i) => {
    if (i % 2 === 1 || word === '' || !isMac(word)) {
      if (i % 2 === 0 && word !== '') kept++;
      return word;
    }
    const pin = macPin(word, nics);
    if (pin.kind === 'keep') {
      kept++;
      return word;
    }
    reasons.push(pin.reason);
    if (pin.kind === 'remove') {
      dropped = true;
      return '';
    }
    kept++;
    return pin.to;
  });
  if (reasons.length === 0) return undefined;
  if (kept > 0) return { to: dropped ? words.join('').trim().replace(/\s{2,}/g, ' ') : words.join(''), reason: reasons.join('; ') };
  const others = entries.filter((e) => e.sectionIndex === entry.sectionIndex && e !== entry && e.value.trim() !== '');
  return others.length === 0 ? 'alone' : 'remove';
}

/** `MultiPathRoute=address[@device] [weight]`: the next hop follows the address rules, the device its NIC. */
function multipathEdit(value: string, remap: AddressRemap, nics: NicIdentity): Moved | undefined {
  const moved = movedInText('route next hop', value, remap);
  const reasons = moved ? [moved.reason] : [];
  const to = (moved?.to ?? value).replace(/@(\S+)/, (all, device: string) => {
    const renamed = targetInterface(device, nics);
    if (renamed === undefined) return all;
    reasons.push(interfaceReason(device, renamed));
    return `@${renamed}`;
  });
  return reasons.length === 0 ? undefined : { to, reason: reasons.join('; ') };
}

function onlyPinProblem(entry: IniEntry): string {
  return `[Match] ${entry.key}=${entry.value.trim()} is the section's only condition and the target's NIC for it is not known by MAC: without it the file would match every interface; map the NIC by MAC in the spec`;
}

function removedPins(entry: IniEntry, nics: NicIdentity): string {
  return entry.value
    .trim()
    .split(/\s+/)
    .map((mac) => macPin(mac, nics))
    .flatMap((pin) => (pin.kind === 'remove' ? [pin.reason] : []))
    .join('; ');
}
