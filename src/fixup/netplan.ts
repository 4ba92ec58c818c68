import { isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { dnsServersAt, searchDomainsAt } from './dns-lists.js';
import { applyEdits, commentOut, linesOf, type Line, type TextEdit } from './edits.js';
import { binaryProblem } from './line-edits.js';
import { interfaceReason, macPin, targetInterface } from './nic-rename.js';
import type { AddressRemap } from './remap.js';
import type { FixupResult, NicIdentity } from './types.js';

/** The device sections of a netplan file; each maps an interface id to its settings. */
const SECTIONS = ['ethernets', 'bonds', 'bridges', 'vlans', 'wifis', 'tunnels', 'vrfs', 'modems', 'dummy-devices', 'virtual-ethernets', 'nm-devices'];

/**
 * One netplan YAML file (`/etc/netplan/*.yaml`) for the target: addresses, gateways, routes and DNS
 * remapped, interfaces renamed and MAC pins rewritten or removed. The document is parsed only to find
 * what to change; the edits replace those scalars' own bytes in the original text, so comments,
 * layout, quoting and unknown keys survive. Each file is transformed on its own.
 */
export function fixupNetplan(text: string, remap: AddressRemap, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error) return { kind: 'unparsable', problem: `not valid YAML: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`, ...lineOf(error.linePos?.[0]?.line) };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return { kind: 'unchanged', text };
  if (!isMap(root)) return { kind: 'unparsable', problem: 'a netplan file is a mapping with a network: key', line: 1 };
  const network = root.get('network', true) as Node | undefined;
  if (network === undefined || (isScalar(network) && network.value === null)) return { kind: 'unchanged', text };
  if (!isMap(network)) return { kind: 'unparsable', problem: 'network: is not a mapping', ...lineAt(text, network) };
  try {
    const editor = new Editor(text, remap, nics);
    editor.walk(network);
    return applyEdits(text, editor.edits);
  } catch (err) {
    if (err instanceof NotEditable) return { kind: 'unparsable', problem: err.message, line: err.line };
    throw err;
  }
}

/** Raised when a change is needed in a form the editor will not rewrite safely (the file is then left alone). */
class NotEditable extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

function lineOf(line: number | undefined): { line?: number } {
  return line === undefined ? {} : { line };
}

function lineAt(text: string, node: Node): { line?: number } {
  const start = node.range?.[0];
  return start === undefined ? {} : { line: text.slice(0, start).split('\n').length };
}

class Editor {
  readonly edits: TextEdit[] = [];
  readonly #lines: Line[];
  /** Interface ids renamed in this file, so references to them (bond members, vlan links) follow. */
  readonly #renamed = new Map<string, string>();

  constructor(
    readonly text: string,
    readonly remap: AddressRemap,
    readonly nics: NicIdentity,
  ) {
    this.#lines = linesOf(text);
  }

  walk(network: YAMLMap): void {
    const sections = SECTIONS.flatMap((name) => {
      const section = network.get(name, true) as Node | undefined;
      return isMap(section) ? [{ name, section }] : [];
    });
    for (const { name, section } of sections) this.#renameSection(name, section);
    for (const { section } of sections) {
      for (const pair of section.items) {
        const body = pair.value;
        if (!isMap(body)) continue;
        const id = String((pair.key as Scalar).value);
        this.#addresses(id, body);
        this.#references(id, body);
      }
    }
  }

  // ---- NIC identity -------------------------------------------------------------------------------

  #renameSection(section: string, map: YAMLMap): void {
    const keys = new Map<string, string>();
    for (const pair of map.items) {
      const key = pair.key as Scalar;
      const id = String(key.value);
      const newId = section === 'ethernets' && isMap(pair.value) ? this.#ethernet(id, key, pair.value) : targetInterface(id, this.nics);
      keys.set(id, newId ?? id);
      if (newId !== undefined && newId !== id) {
        this.#renamed.set(id, newId);
        this.#scalar(key, newId, interfaceReason(id, newId));
      }
    }
    const seen = new Set<string>();
    for (const [id, newId] of keys) {
      if (seen.has(newId)) throw new NotEditable(`renaming ${id} to ${newId} in ${section} would clash with another interface of that name`, this.#lineOf(map.range?.[0] ?? 0));
      seen.add(newId);
    }
  }

  /**
   * An ethernet's MAC pin rewritten to the target NIC's MAC, or removed (with its `set-name`) when the
   * target NIC has no known MAC; then the id must be the interface's name. Returns the id it should have.
   */
  #ethernet(id: string, key: Scalar, body: YAMLMap): string | undefined {
    const matchPair = pairOf(body, 'match');
    const match = matchPair && isMap(matchPair.value) ? matchPair.value : undefined;
    const setNamePair = pairOf(body, 'set-name');
    const setName = setNamePair && isScalar(setNamePair.value) ? setNamePair.value : undefined;
    const originName = setName ? String(setName.value) : undefined;
    const macPair = match && pairOf(match, 'macaddress');
    const mac = macPair && isScalar(macPair.value) ? macPair.value : undefined;
    const pin = mac ? macPin(String(mac.value), this.nics) : { kind: 'keep' as const };
    if (pin.kind === 'rewrite') {
      this.#scalar(mac!, pin.to, pin.reason);
    } else if (pin.kind === 'remove') {
      if (match!.items.length > 1) {
        this.#removePairs(match!, [macPair!], pin.reason);
      } else {
        const name = originName ?? id;
        const target = targetInterface(name, this.nics) ?? name;
        const reason = `${pin.reason}; the interface is found by its name ${target}`;
        const removed = setNamePair ? [matchPair!, setNamePair] : [matchPair!];
        this.#removePairs(body, removed, reason);
        // netplan wants a mapping for every interface, even an empty one.
        if (!body.flow && removed.length === body.items.length) {
          const colon = this.text.indexOf(':', key.range![1]) + 1;
          this.#push({ start: colon, end: colon, text: ' {}', reason });
        }
        return target;
      }
    }
    if (!match) return targetInterface(id, this.nics);
    const nameMatch = pairOf(match, 'name')?.value;
    if (isScalar(nameMatch)) this.#rename(nameMatch, 'matched name');
    if (setName) this.#rename(setName, 'set-name');
    return undefined;
  }

  #rename(node: Scalar, what: string): void {
    const name = String(node.value);
    const target = targetInterface(name, this.nics);
    if (target !== undefined) this.#scalar(node, target, `${what}: ${interfaceReason(name, target)}`);
  }

  /** Bond and bridge members, a vlan's link, a bond's primary and a bridge's per-port settings name interface ids. */
  #references(id: string, body: YAMLMap): void {
    const follow = (node: unknown, what: string): void => {
      if (!isScalar(node)) return;
      const target = this.#renamed.get(String(node.value));
      if (target !== undefined) this.#scalar(node, target, `${id}: ${what} ${String(node.value)} -> ${target} (renamed interface)`);
    };
    const members = body.get('interfaces', true);
    if (isSeq(members)) for (const item of members.items) follow(item, 'member');
    follow(body.get('link', true), 'link');
    const parameters = body.get('parameters', true);
    if (!isMap(parameters)) return;
    follow(parameters.get('primary', true), 'primary');
    for (const key of ['path-cost', 'port-priority']) {
      const ports = parameters.get(key, true);
      if (isMap(ports)) for (const pair of ports.items) follow(pair.key, `${key} port`);
    }
  }

  // ---- addresses ---------------------------------------------------------------------------------

  #addresses(id: string, body: YAMLMap): void {
    const addresses = body.get('addresses', true);
    if (isSeq(addresses)) {
      for (const item of addresses.items) {
        // `- 10.0.0.5/24: {lifetime: 0}` carries the address as the key of a one-entry mapping.
        const node = isMap(item) ? (item.items[0]?.key as unknown) : item;
        if (isScalar(node)) this.#moved(node, this.remap.cidr(String(node.value)), `${id}: address`);
      }
    }
    for (const key of ['gateway4', 'gateway6']) {
      const node = body.get(key, true);
      if (isScalar(node)) this.#moved(node, this.remap.gateway(String(node.value)), `${id}: ${key}`);
    }
    const routes = body.get('routes', true);
    if (isSeq(routes)) for (const route of routes.items) if (isMap(route)) this.#route(id, route);
    const policies = body.get('routing-policy', true);
    if (isSeq(policies)) {
      for (const policy of policies.items) {
        if (!isMap(policy)) continue;
        for (const key of ['from', 'to']) {
          const node = policy.get(key, true);
          if (isScalar(node)) this.#moved(node, this.remap.cidr(String(node.value)), `${id}: routing-policy ${key}`);
        }
      }
    }
    for (const key of ['local', 'remote']) {
      const node = body.get(key, true);
      if (isScalar(node)) this.#moved(node, this.remap.address(String(node.value)), `${id}: tunnel ${key}`);
    }
    const nameservers = body.get('nameservers', true);
    if (isMap(nameservers)) this.#nameservers(id, nameservers);
  }

  #route(id: string, route: YAMLMap): void {
    const to = route.get('to', true);
    const destination = isScalar(to) ? String(to.value) : undefined;
    const isDefault = destination === 'default' || destination === '0.0.0.0/0' || destination === '::/0';
    if (isScalar(to) && !isDefault) this.#moved(to, this.remap.cidr(destination!), `${id}: route to`);
    const via = route.get('via', true);
    if (isScalar(via)) {
      const moved = isDefault ? this.remap.gateway(String(via.value)) : this.remap.address(String(via.value));
      this.#moved(via, moved, isDefault ? `${id}: default route via` : `${id}: route to ${destination} via`);
    }
    const from = route.get('from', true);
    if (isScalar(from)) this.#moved(from, this.remap.address(String(from.value)), `${id}: route from`);
  }

  #nameservers(id: string, nameservers: YAMLMap): void {
    for (const [key, replaced] of [
      ['addresses', (values: string[]) => dnsServersAt(values, this.remap)],
      ['search', (values: string[]) => searchDomainsAt(values, this.remap)],
    ] as const) {
      const list = nameservers.get(key, true);
      if (!isSeq(list)) continue;
      const values = scalarsOf(list);
      if (values === undefined) throw new NotEditable(`nameservers ${key} of ${id} holds more than plain values`, this.#lineOf(list.range?.[0] ?? 0));
      const wanted = replaced(values);
      if (wanted !== undefined && wanted.values.length > 0) this.#list(list, wanted.values, `${id}: ${wanted.reason}`);
    }
  }

  // ---- edits -------------------------------------------------------------------------------------

  #moved(node: Scalar, moved: { to: string; rule: string } | undefined, what: string): void {
    if (moved) this.#scalar(node, moved.to, `${what} ${String(node.value)} -> ${moved.to} (${moved.rule})`);
  }

  /** Replaces a scalar's own source bytes, in the quoting it was written with. */
  #scalar(node: Scalar, value: string, reason: string): void {
    const [start, end] = node.range ?? [];
    if (start === undefined || end === undefined) return;
    if (node.type !== 'PLAIN' && node.type !== 'QUOTE_DOUBLE' && node.type !== 'QUOTE_SINGLE') {
      throw new NotEditable(`a ${node.type} scalar needs a change (${reason}); rmm rewrites only plain and quoted scalars`, this.#lineOf(start));
    }
    const quote = quoteOf(node);
    this.#push({ start, end, text: `${quote}${value}${quote}`, reason });
  }

  /** Makes a list of scalars hold `wanted`: items replaced in place; extra items commented out; missing items added below the last. */
  #list(seq: YAMLSeq, wanted: readonly string[], reason: string): void {
    const current = scalarsOf(seq);
    if (current === undefined) throw new NotEditable(`a list that needs a change (${reason}) holds more than plain values`, this.#lineOf(seq.range?.[0] ?? 0));
    if (current.length === wanted.length && current.every((value, i) => value === wanted[i])) return;
    const items = seq.items as Scalar[];
    if (seq.flow && items.length !== wanted.length) {
      const [start, end] = seq.range!;
      const inner = /^\[( ?)/.exec(this.text.slice(start, end))?.[1] ?? '';
      const written = wanted.map((v, i) => {
        const quote = quoteOf(items[Math.min(i, items.length - 1)]);
        return `${quote}${v}${quote}`;
      });
      this.#push({ start, end, text: `[${inner}${written.join(', ')}${inner}]`, reason });
      return;
    }
    items.forEach((item, i) => {
      const value = wanted[i];
      if (value === undefined) this.#push(this.#commentLine(item.range![0], reason));
      else if (String(item.value) !== value) this.#scalar(item, value, reason);
    });
    const last = items[items.length - 1];
    if (last && wanted.length > items.length) {
      const line = this.#lines[this.#lineOf(last.range![0]) - 1]!;
      const quote = quoteOf(last);
      const dash = /^[ \t]*-[ \t]*/.exec(line.text)?.[0] ?? '- ';
      const added = wanted.slice(items.length).map((v) => `\n${dash}${quote}${v}${quote}`).join('');
      this.#push({ start: line.end, end: line.end, text: added, reason });
    }
  }

  /** Takes keys out of a mapping: their lines commented out in block style, their text cut from a flow mapping. */
  #removePairs(map: YAMLMap, pairs: readonly Pair[], reason: string): void {
    const spans = pairs.map((pair) => ({ pair, start: (pair.key as Scalar).range![0], end: (pair.value as Node | null)?.range?.[1] ?? (pair.key as Scalar).range![1] }));
    if (!map.flow) {
      const top = Math.min(...spans.map((span) => span.start));
      for (const { start, end } of spans) {
        const first = this.#lineOf(start);
        const last = this.#lineOf(Math.max(start, end - 1));
        // The note goes once, above the first line taken out.
        for (let n = first; n <= last; n++) this.#push(this.#commentLine(this.#lines[n - 1]!.start, reason, n === first && start === top ? reason : undefined));
      }
      return;
    }
    const kept = map.items.filter((item) => !pairs.includes(item));
    if (kept.length === 0) {
      const [start, end] = map.range!;
      this.#push({ start, end, text: '{}', reason });
      return;
    }
    // A removed entry takes the comma after it, or, when it is last, the comma after the last kept entry.
    const cuts = spans.map(({ pair, start, end }) => {
      const index = map.items.indexOf(pair);
      const next = map.items[index + 1];
      if (next) return { start, end: (next.key as Scalar).range![0] };
      const previous = kept.filter((item) => map.items.indexOf(item) < index).pop()!;
      return { start: ((previous.value as Node | null)?.range?.[1] ?? (previous.key as Scalar).range![1]), end };
    });
    cuts.sort((a, b) => a.start - b.start);
    const merged: { start: number; end: number }[] = [];
    for (const cut of cuts) {
      const last = merged[merged.length - 1];
      if (last && cut.start <= last.end) last.end = Math.max(last.end, cut.end);
      else merged.push({ ...cut });
    }
    for (const cut of merged) this.#push({ ...cut, text: '', reason });
  }

  #commentLine(offset: number, reason: string, note?: string): TextEdit {
    return commentOut(this.#lines[this.#lineOf(offset) - 1]!, reason, note);
  }

  #push(edit: TextEdit): void {
    if (this.#lineOf(edit.start) !== this.#lineOf(edit.end)) throw new NotEditable(`a value spread over several lines needs a change (${edit.reason})`, this.#lineOf(edit.start));
    this.edits.push(edit);
  }

  /** 1-based line of an offset. */
  #lineOf(offset: number): number {
    let low = 0;
    let high = this.#lines.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#lines[mid]!.start <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  }
}

function quoteOf(node: Scalar | undefined): string {
  return node?.type === 'QUOTE_DOUBLE' ? '"' : node?.type === 'QUOTE_SINGLE' ? "'" : '';
}

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((pair) => isScalar(pair.key) && pair.key.value === key);
}

/** The values of a list of scalars, or undefined when an item is something else. */
function scalarsOf(seq: YAMLSeq): string[] | undefined {
  const values: string[] = [];
  for (const item of seq.items) {
    if (!isScalar(item)) return undefined;
    values.push(String(item.value));
  }
  return values;
}
