import { movedAddress, movedGateway, movedInText, type Moved } from './address-edits.js';
import { dnsServersAt, searchDomainsAt } from './dns-lists.js';
import { binaryProblem, commentedOut, editWords, LineEdits } from './line-edits.js';
import { interfaceReason, macPin, renameInList, targetInterface } from './nic-rename.js';
import type { AddressRemap } from './remap.js';
import { rewriteRouteWords } from './route-words.js';
import { parseShellLine, withValue, type ShellVar } from './shell-vars.js';
import type { FixupResult, NicIdentity } from './types.js';

/**
 * The network fixup of a RHEL/SUSE interface file (`ifcfg-*`): addresses (`IPADDR`, `IPADDRn`,
 * `IPADDR_x`, `IPV6ADDR`, `IPV6ADDR_SECONDARIES`), the default gateway (`GATEWAY`, `IPV6_DEFAULTGW`),
 * `DNSn`, `DOMAIN`, interface names and the `HWADDR` pin. `PREFIX`/`NETMASK` stay; `MACADDR` and SUSE's
 * `LLADDR` set an address rather than pick a NIC, so they stay too. Each value keeps its quotes.
 */
export function fixupIfcfg(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const edits = new LineEdits(text);
  const vars: { index: number; v: ShellVar }[] = [];
  for (const [index, line] of edits.lines.entries()) {
    const parsed = parseShellLine(line.text);
    if (parsed.kind === 'other') return { kind: 'unparsable', problem: parsed.problem, line: index + 1 };
    if (parsed.kind === 'var') vars.push({ index, v: parsed.v });
  }
  for (const { index, v } of vars) {
    if (v.key === 'HWADDR') {
      const pin = macPin(v.value, nics);
      if (pin.kind === 'rewrite') edits.set(index, withValue(v, pin.to), pin.reason);
      if (pin.kind !== 'remove') continue;
      if (!vars.some(({ v: o }) => o.key === 'DEVICE' && o.value !== ''))
        return { kind: 'unparsable', problem: `HWADDR=${v.value} is what ties this file to a NIC (it has no DEVICE=), and the target's NIC for it is not known by MAC; map the NIC by MAC in the spec`, line: index + 1 };
      edits.set(index, commentedOut(edits.lines[index]!.text), pin.reason);
      continue;
    }
    const moved = varEdit(v, remap, nics);
    if (moved) edits.set(index, withValue(v, moved.to), moved.reason);
  }
  dnsEdit(edits, vars, remap);
  return edits.result();
}

/** /etc/sysconfig/network: the same keys (`GATEWAY`, `IPV6_DEFAULTGW`, `GATEWAYDEV`) with the same rules. */
export function fixupSysconfigNetwork(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  return fixupIfcfg(text, remap, nics);
}

/**
 * A `route-*` or `route6-*` file, in either of its forms: `ADDRESSn=`/`NETMASKn=`/`GATEWAYn=` keys, or
 * lines as `ip route add` takes them (`10.1.3.0/24 via 192.168.0.3 dev eth0`). The next hop of a default
 * route is the default gateway; other addresses follow the address rules; netmasks stay.
 */
export function fixupIfcfgRoutes(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const edits = new LineEdits(text);
  const keyed = new Map<string, { index: number; v: ShellVar }>();
  const plain: number[] = [];
  for (const [index, line] of edits.lines.entries()) {
    if (line.text.trim() === '' || /^\s*#/.test(line.text)) continue;
    if (!/^\s*[A-Za-z_][A-Za-z0-9_]*=/.test(line.text)) {
      plain.push(index);
      continue;
    }
    const parsed = parseShellLine(line.text);
    if (parsed.kind === 'other') return { kind: 'unparsable', problem: parsed.problem, line: index + 1 };
    if (parsed.kind === 'var') keyed.set(parsed.v.key, { index, v: parsed.v });
  }
  for (const [key, { index, v }] of keyed) {
    const m = /^(ADDRESS|GATEWAY|OPTIONS)(\d+)$/.exec(key);
    if (!m) continue;
    const n = m[2]!;
    let moved: Moved | undefined;
    if (m[1] === 'ADDRESS') moved = movedAddress('route destination', v.value, remap);
    else if (m[1] === 'OPTIONS') moved = movedInText('route option', v.value, remap);
    else {
      const isDefault = keyed.get(`ADDRESS${n}`)?.v.value === '0.0.0.0' && keyed.get(`NETMASK${n}`)?.v.value === '0.0.0.0';
      moved = isDefault ? movedGateway(v.value, remap) : movedAddress('route next hop', v.value, remap);
    }
    if (moved) edits.set(index, withValue(v, moved.to), moved.reason);
  }
  for (const index of plain) {
    const rewritten = rewriteRouteWords(edits.lines[index]!.text, 'route', remap, nics);
    if (rewritten.reasons.length > 0) edits.set(index, rewritten.text, rewritten.reasons);
  }
  return edits.result();
}

/** The file's new name when its suffix is an origin interface (`ifcfg-eth0` -> `ifcfg-ens3`, `route6-eth0.101`); undefined otherwise. */
export function ifcfgFileName(fileName: string, nics: NicIdentity): string | undefined {
  const m = /^(ifcfg-|route-|route6-|rule-|rule6-)(.+)$/.exec(fileName);
  const to = m ? targetInterface(m[2]!, nics) : undefined;
  return to === undefined ? undefined : m![1]! + to;
}

/** Keys naming one or more interfaces. */
const INTERFACE_KEY = /^(DEVICE|MASTER|BRIDGE|PHYSDEV|ETHERDEVICE|TEAM_MASTER|GATEWAYDEV|IPV6_DEFAULTDEV|BRIDGE_PORTS|BONDING_SLAVE_?\d+|NAME)$/;

/** Keys holding one address (maybe with a /prefix): IPADDR, IPADDR2, SUSE's IPADDR_1 and IPADDR6. */
const ADDRESS_KEY = /^(IPADDR6?(_?[A-Za-z0-9]+)?|IPV6ADDR|BROADCAST|NETWORK|REMOTE_IPADDR|SRCADDR)$/;

function varEdit(v: ShellVar, remap: AddressRemap, nics: NicIdentity): Moved | undefined {
  const { key, value } = v;
  if (ADDRESS_KEY.test(key)) return movedAddress('address', value, remap);
  if (key === 'GATEWAY' || /^GATEWAY\d+$/.test(key)) return movedGateway(value, remap);
  if (key === 'IPV6_DEFAULTGW') return ipv6GatewayEdit(value, remap, nics);
  if (key === 'IPV6ADDR_SECONDARIES') {
    const reasons: string[] = [];
    const to = editWords(value, (word) => {
      const moved = movedAddress('address', word, remap);
      if (moved) reasons.push(moved.reason);
      return moved?.to;
    });
    return reasons.length === 0 ? undefined : { to, reason: reasons.join('; ') };
  }
  if (key === 'DOMAIN') {
    const replaced = searchDomainsAt(value.trim() === '' ? [] : value.trim().split(/\s+/), remap);
    return replaced && { to: replaced.values.join(' '), reason: replaced.reason };
  }
  if (INTERFACE_KEY.test(key)) {
    const renamed = renameInList(value, nics);
    return renamed.reasons.length === 0 ? undefined : { to: renamed.text, reason: renamed.reasons.join('; ') };
  }
  return undefined;
}

/** IPV6_DEFAULTGW=addr or addr%dev: the address is the default gateway, the device follows the NIC. */
function ipv6GatewayEdit(value: string, remap: AddressRemap, nics: NicIdentity): Moved | undefined {
  const [address, device] = value.split('%') as [string, string | undefined];
  const moved = movedGateway(address, remap);
  const renamed = device === undefined ? undefined : targetInterface(device, nics);
  if (!moved && renamed === undefined) return undefined;
  const to = (moved?.to ?? address) + (device === undefined ? '' : `%${renamed ?? device}`);
  const reasons = [moved?.reason, renamed === undefined ? undefined : interfaceReason(device!, renamed)].filter((r): r is string => r !== undefined);
  return { to, reason: reasons.join('; ') };
}

/**
 * DNS1..DNSn as one list, in the order of their numbers. The spec's servers go into the existing keys;
 * more servers than keys add DNSn lines after the last one, fewer leave the extra keys commented out.
 */
function dnsEdit(edits: LineEdits, vars: readonly { index: number; v: ShellVar }[], remap: AddressRemap): void {
  const dns = vars
    .map((x) => ({ ...x, n: Number(/^DNS(\d+)$/.exec(x.v.key)?.[1] ?? NaN) }))
    .filter((x) => !Number.isNaN(x.n))
    .sort((a, b) => a.n - b.n);
  if (dns.length === 0) return;
  const replaced = dnsServersAt(
    dns.map((d) => d.v.value),
    remap,
  );
  if (!replaced) return;
  const values = replaced.values;
  dns.forEach((d, i) => {
    if (i < values.length) edits.set(d.index, withValue(d.v, values[i]!), replaced.reason);
    else edits.set(d.index, commentedOut(edits.lines[d.index]!.text), replaced.reason);
  });
  const last = dns[dns.length - 1];
  if (!last || values.length <= dns.length) return;
  const lastIndex = Math.max(...dns.map((d) => d.index));
  const quote = last.v.quote;
  const added = values.slice(dns.length).map((s, k) => `${last.v.lead}DNS${last.n + 1 + k}=${quote}${s}${quote}`);
  edits.insertAfter(lastIndex, added, replaced.reason);
}
