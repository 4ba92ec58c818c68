import { movedAddress, movedGateway } from './address-edits.js';
import { dnsServersAt, replaceWords, searchDomainsAt, type Replaced } from './dns-lists.js';
import { binaryProblem, commentedOut, editWords, LineEdits } from './line-edits.js';
import { interfaceReason, macPin, renameInList, targetInterface } from './nic-rename.js';
import type { AddressRemap } from './remap.js';
import { rewriteRouteWords } from './route-words.js';
import type { FixupResult, NicIdentity } from './types.js';

/**
 * The network fixup of one ifupdown file (/etc/network/interfaces or a file it sources): addresses,
 * default gateways, DNS servers and search domains, routes and addresses in `up ip ...` commands,
 * interface names and MAC pins. Options no rule names, comments and layout stay as written; a line
 * continued with a trailing backslash is read as one, and each of its physical lines keeps its bytes.
 */
export function fixupIfupdown(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const edits = new LineEdits(text);
  let inStanza = false;
  for (const logical of logicalLines(edits)) {
    const joined = logical.map((i) => edits.lines[i]!.text).join('\n');
    const m = /^(\s*)(\S+)(.*)$/s.exec(joined);
    if (!m || m[2]!.startsWith('#')) continue;
    const [, indent, keyword, args] = m as unknown as [string, string, string, string];
    const line = logical[0]! + 1;
    let edit: Edit | Removal | undefined;
    if (STANZAS.has(keyword) || keyword.startsWith('allow-')) {
      if ((keyword === 'iface' || keyword === 'template') && args.trim() === '') return { kind: 'unparsable', problem: `'${keyword}' names no interface`, line };
      if (keyword === 'iface' || keyword === 'template' || keyword === 'mapping') inStanza = true;
      edit = stanzaEdit(keyword, args, nics);
    } else {
      if (!inStanza) return { kind: 'unparsable', problem: `the option '${keyword}' is outside any iface or mapping stanza`, line };
      edit = optionEdit(keyword, args, remap, nics);
    }
    if (edit === undefined) continue;
    if ('removed' in edit) {
      // A commented-out line keeps the file's line count and shows the operator what was there.
      for (const i of logical) edits.set(i, commentedOut(edits.lines[i]!.text), edit.removed);
      continue;
    }
    const pieces = `${indent}${keyword}${edit.args}`.split('\n');
    logical.forEach((i, k) => edits.set(i, pieces[k]!, edit.reasons));
  }
  return edits.result();
}

/**
 * The files an ifupdown file pulls in (`source PATH`, `source-directory DIR`), as written: globs and
 * relative paths are the caller's to resolve (relative to /etc/network, as ifup does).
 */
export function ifupdownSources(text: string): { readonly kind: 'source' | 'source-directory'; readonly path: string; readonly line: number }[] {
  const found: { kind: 'source' | 'source-directory'; path: string; line: number }[] = [];
  new LineEdits(text).lines.forEach((l, i) => {
    const m = /^\s*(source|source-directory|source-dir)\s+(\S.*?)\s*$/.exec(l.text);
    if (m) found.push({ kind: m[1] === 'source' ? 'source' : 'source-directory', path: m[2]!, line: i + 1 });
  });
  return found;
}

interface Edit {
  readonly args: string;
  readonly reasons: string[];
}

interface Removal {
  readonly removed: string;
}

const STANZAS = new Set(['iface', 'template', 'mapping', 'auto', 'rename', 'source', 'source-directory', 'source-dir', 'no-auto-down', 'no-scripts']);

/** Options whose value is one or more addresses (`address` may carry a /prefix; ifupdown-ng allows several). */
const ADDRESS_OPTIONS = new Set(['address', 'broadcast', 'network', 'pointopoint', 'local', 'endpoint', 'remote', 'dstaddr', 'tunnel-local', 'tunnel-remote']);

/** Options whose value lists interface names. */
const INTERFACE_OPTIONS = new Set([
  'bond-slaves', 'slaves', 'bond-master', 'bond-primary', 'bond-active-slave', 'bond-members', 'bond_slaves', 'bond_master', 'bond_primary',
  'bridge_ports', 'bridge-ports', 'bridge-pathcost', 'bridge_pathcost', 'bridge-portprio', 'bridge_portprio', 'bridge-waitport', 'bridge_waitport',
  'vlan-raw-device', 'vlan_raw_device', 'requires', 'tunnel-dev',
]);

const COMMAND_OPTIONS = new Set(['up', 'down', 'pre-up', 'post-up', 'pre-down', 'post-down']);

function stanzaEdit(keyword: string, args: string, nics: NicIdentity): Edit | undefined {
  if (keyword === 'source' || keyword === 'source-directory' || keyword === 'source-dir') return undefined;
  const reasons: string[] = [];
  const renamed = (word: string): string | undefined => {
    const to = targetInterface(word, nics);
    if (to !== undefined) reasons.push(interfaceReason(word, to));
    return to;
  };
  const out = editWords(args, (word, index, words) => {
    if (keyword === 'rename') {
      const eq = word.indexOf('=');
      const to = eq > 0 ? renamed(word.slice(0, eq)) : undefined;
      return to === undefined ? undefined : to + word.slice(eq);
    }
    // iface NAME inet static [inherits NAME]: only the stanza's name and the one it inherits from.
    if (keyword === 'iface' || keyword === 'template') return firstWord(words, index) || words[index - 1] === 'inherits' ? renamed(word) : undefined;
    return renamed(word);
  });
  return { args: out, reasons };
}

function optionEdit(keyword: string, args: string, remap: AddressRemap, nics: NicIdentity): Edit | Removal | undefined {
  const reasons: string[] = [];
  const collect = (moved: { to: string; reason: string } | undefined): string | undefined => {
    if (moved) reasons.push(moved.reason);
    return moved?.to;
  };
  let out: string;
  if (ADDRESS_OPTIONS.has(keyword)) out = editWords(args, (word) => collect(movedAddress(keyword, word, remap)));
  else if (keyword === 'gateway') out = editWords(args, (word, index, words) => (firstWord(words, index) ? collect(movedGateway(word, remap)) : undefined));
  else if (keyword === 'dns-nameservers' || keyword === 'dns-nameserver') out = listEdit(args, (items) => dnsServersAt(items, remap), reasons);
  else if (keyword === 'dns-search') out = listEdit(args, (items) => searchDomainsAt(items, remap), reasons);
  else if (INTERFACE_OPTIONS.has(keyword)) {
    const renamed = renameInList(args, nics);
    reasons.push(...renamed.reasons);
    out = renamed.text;
  } else if (keyword === 'hwaddress') {
    const mac = args.trim().split(/\s+/).find((w) => w !== 'ether');
    const pin = mac === undefined ? { kind: 'keep' as const } : macPin(mac, nics);
    if (pin.kind === 'remove') return { removed: pin.reason };
    if (pin.kind === 'keep') return undefined;
    reasons.push(pin.reason);
    out = editWords(args, (word) => (word === mac ? pin.to : undefined));
  } else if (keyword === 'route' || (COMMAND_OPTIONS.has(keyword) && IP_COMMAND.test(args))) {
    const rewritten = rewriteRouteWords(args, keyword === 'route' || /\broute\b/.test(args) ? 'route' : 'address', remap, nics);
    reasons.push(...rewritten.reasons);
    out = rewritten.text;
  } else return undefined;
  return reasons.length === 0 ? undefined : { args: out, reasons };
}

/** A command that is `ip ...` or `route ...`, maybe by full path; other commands (iptables, scripts) are the operator's. */
const IP_COMMAND = /^\s*(?:\/(?:usr\/)?s?bin\/)?(?:ip|route)\s/;

/** Replaces the items of a list option; a same-line `#...` is not an item. */
function listEdit(args: string, decide: (items: string[]) => Replaced | undefined, reasons: string[]): string {
  const words = args.trim() === '' ? [] : args.trim().split(/\s+/).filter((w) => w !== '\\');
  const hash = words.findIndex((w) => w.startsWith('#'));
  const items = hash === -1 ? words : words.slice(0, hash);
  const replaced = decide(items);
  if (!replaced) return args;
  reasons.push(replaced.reason);
  if (items.length === 0) return ` ${replaced.values.join(' ')}${args.trimEnd() === '' ? '' : ` ${args.trim()}`}`;
  return replaceWords(args, items.length, replaced.values);
}

function firstWord(words: readonly string[], index: number): boolean {
  return words.slice(0, index).every((w) => w === '');
}

/** Physical line numbers grouped into logical lines: a line whose last character is a backslash continues. */
function logicalLines(edits: LineEdits): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  edits.lines.forEach((line, i) => {
    current.push(i);
    // As ifup reads it: a comment (after leading blanks) is one line even when it ends in a backslash.
    const comment = current.length === 1 && /^\s*#/.test(line.text);
    if (comment || !line.text.endsWith('\\') || i === edits.lines.length - 1) {
      groups.push(current);
      current = [];
    }
  });
  return groups;
}
