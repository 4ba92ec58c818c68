import { isDefaultDestination, movedAddress, movedGateway, movedInText, type Moved } from './address-edits.js';
import { dnsServersAt, searchDomainsAt, type Replaced } from './dns-lists.js';
import { commentIniEntry, parseIni, setIniValue, type IniEntry } from './ini-lines.js';
import { binaryProblem, LineEdits } from './line-edits.js';
import { interfaceReason, isMac, macPin, renameInList, targetInterface } from './nic-rename.js';
import type { AddressRemap } from './remap.js';
import type { FixupResult, NicIdentity } from './types.js';

/**
 * The network fixup of one NetworkManager keyfile (`*.nmconnection`): `addressN=ip/len,gw` (and the
 * older `addressesN=ip;len;gw;`), `gateway=`, `routeN=dest/len,next-hop,metric`, `dns=`, `dns-search=`,
 * interface names, and the device's `mac-address=` pin. `cloned-mac-address=` and `[bridge]
 * mac-address=` set an address rather than pick a device, so they stay.
 */
export function fixupNmKeyfile(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const edits = new LineEdits(text);
  const parsed = parseIni(edits, { isComment: (l) => /^\s*#/.test(l), continuation: false });
  if ('problem' in parsed) return { kind: 'unparsable', problem: parsed.problem, line: parsed.line };
  for (const entry of parsed.entries) {
    if (entry.key === 'mac-address' && PINNING_SECTIONS.has(entry.section) && isMac(entry.value.trim())) {
      const pin = macPin(entry.value.trim(), nics);
      if (pin.kind === 'rewrite') setIniValue(edits, entry, entry.value.replace(entry.value.trim(), pin.to), pin.reason);
      if (pin.kind !== 'remove') continue;
      if (!parsed.entries.some((e) => (e.section === 'connection' || e.section === 'match') && e.key === 'interface-name' && e.value.trim() !== ''))
        return { kind: 'unparsable', problem: onlyPinProblem(entry), line: entry.lines[0]! + 1 };
      commentIniEntry(edits, entry, pin.reason);
      continue;
    }
    const moved = valueEdit(entry, remap, nics);
    if (moved) setIniValue(edits, entry, moved.to, moved.reason);
  }
  return edits.result();
}

/** Keys holding one interface name; a controller or parent may be a UUID instead, which no NIC map names. */
const INTERFACE_KEYS = new Set([
  'connection.interface-name', 'connection.master', 'connection.controller',
  'bridge.interface-name', 'bond.interface-name', 'team.interface-name', 'vlan.interface-name',
]);

/** The sections whose `mac-address` picks the device the profile applies to. */
const PINNING_SECTIONS = new Set(['ethernet', '802-3-ethernet', 'infiniband', 'wifi', '802-11-wireless', 'wimax']);

function valueEdit(entry: IniEntry, remap: AddressRemap, nics: NicIdentity): Moved | undefined {
  const { section, key, value } = entry;
  if (section === 'ipv4' || section === 'ipv6') return ipEdit(section === 'ipv4' ? 4 : 6, key, value, remap);
  if (INTERFACE_KEYS.has(`${section}.${key}`) || key === 'parent') {
    const to = targetInterface(value, nics);
    return to === undefined ? undefined : { to, reason: interfaceReason(value, to) };
  }
  if (section === 'match' && key === 'interface-name') {
    const renamed = renameInList(value, nics, /([;,\s]+)/);
    return renamed.reasons.length === 0 ? undefined : { to: renamed.text, reason: renamed.reasons.join('; ') };
  }
  return undefined;
}

function ipEdit(family: 4 | 6, key: string, value: string, remap: AddressRemap): Moved | undefined {
  if (/^address(es)?\d*$/.test(key)) return fieldsEdit(value, (field, i) => (i === 0 ? movedAddress('address', field, remap) : movedGateway(field, remap)));
  if (key === 'gateway') return movedGateway(value, remap);
  if (/^routes?\d*$/.test(key)) {
    const destination = value.split(/[,;]/)[0]!.trim();
    const isDefault = isDefaultDestination(destination);
    return fieldsEdit(value, (field, i) => {
      if (i === 0) return movedAddress('route destination', field, remap);
      return isDefault ? movedGateway(field, remap) : movedAddress('route next hop', field, remap);
    });
  }
  if (/^routes?\d*_options$/.test(key)) return movedInText('route option', value, remap);
  if (/^routing-rule\d*$/.test(key)) return movedInText('routing rule', value, remap);
  if (key === 'dns') return listEdit(value, (items) => dnsServersAt(items, remap, family));
  if (key === 'dns-search') return listEdit(value, (items) => searchDomainsAt(items, remap));
  return undefined;
}

/**
 * Edits the ','- or ';'-separated fields of a value; fields that are not addresses (a prefix length,
 * a metric, an empty next hop) are never offered to `edit`, and every separator stays as written.
 */
function fieldsEdit(value: string, edit: (field: string, index: number) => Moved | undefined): Moved | undefined {
  const reasons: string[] = [];
  const parts = value.split(/([,;])/).map((part, i) => {
    if (i % 2 === 1) return part;
    const field = part.trim();
    const index = i / 2;
    if (field === '' || (index > 0 && !/[.:]/.test(field))) return part;
    const moved = edit(field, index);
    if (!moved) return part;
    reasons.push(moved.reason);
    return part.replace(field, moved.to);
  });
  return reasons.length === 0 ? undefined : { to: parts.join(''), reason: reasons.join('; ') };
}

/** A keyfile list (`dns=a;b;`): the new items keep the file's separator and its trailing ';'. */
function listEdit(value: string, decide: (items: string[]) => Replaced | undefined): Moved | undefined {
  const items = value.split(/[;,]/).map((s) => s.trim()).filter((s) => s !== '');
  const replaced = decide(items);
  if (!replaced) return undefined;
  const separator = value.includes(',') && !value.includes(';') ? ',' : ';';
  const trailing = /[;,]\s*$/.test(value) || value.trim() === '' ? separator : '';
  return { to: replaced.values.length === 0 ? '' : replaced.values.join(separator) + trailing, reason: replaced.reason };
}

function onlyPinProblem(entry: IniEntry): string {
  return `[${entry.section}] mac-address=${entry.value.trim()} is what ties this profile to a device, and the target's NIC for it is not known by MAC: without it the profile would apply to any device; map the NIC by MAC in the spec`;
}
