import { applyEdits, linesOf, type TextEdit } from './edits.js';
import { binaryProblem } from './line-edits.js';
import type { AddressRemap } from './remap.js';
import type { FixupResult } from './types.js';

/**
 * `/etc/hostname` for the target: the name becomes the spec's `hostname` (written as the spec writes
 * it, short or fully qualified). Comments stay; a file without a name (the name comes from DHCP) is left
 * alone.
 */
export function fixupHostname(text: string, hostname: string | undefined): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  if (hostname === undefined) return { kind: 'unchanged', text };
  const line = linesOf(text).find((l) => !/^\s*(#|$)/.test(l.text));
  if (!line) return { kind: 'unchanged', text };
  const match = /^(\s*)(\S+)(\s*)$/.exec(line.text);
  if (!match) return { kind: 'unparsable', problem: 'a hostname is one word; this line has several', line: line.number };
  const old = match[2]!;
  if (old === hostname) return { kind: 'unchanged', text };
  const start = line.start + match[1]!.length;
  return applyEdits(text, [{ start, end: start + old.length, text: hostname, reason: `hostname ${old} -> ${hostname} (the spec's hostname)` }]);
}

/**
 * `/etc/hosts` for the target: only the host's own lines, those naming its hostname, its short name or
 * a name under it (`web01.example.com`), change: those names follow the spec's `hostname` and the
 * address moves by the spec's ipRemap (a loopback address such as Debian's `127.0.1.1` stays). Lines of
 * other hosts, comments and `localhost` stay as written.
 *
 * `originHostname` is the origin's name as `/etc/hostname` or `hostname -f` gives it.
 */
export function fixupHosts(text: string, remap: AddressRemap, originHostname: string): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const names = new HostNames(originHostname, remap.hostname);
  const edits: TextEdit[] = [];
  for (const line of linesOf(text)) {
    const body = line.text.replace(/#.*$/, '');
    if (/^\s*$/.test(body)) continue;
    const fields = [...body.matchAll(/\S+/g)];
    if (fields.length < 2) return { kind: 'unparsable', problem: 'a hosts entry is an address followed by at least one name', line: line.number };
    const hostFields = fields.slice(1).filter((f) => names.isOwn(f[0]));
    if (hostFields.length === 0) continue;
    const address = fields[0]!;
    const moved = remap.address(address[0]);
    if (moved) edits.push({ start: line.start + address.index, end: line.start + address.index + address[0].length, text: moved.to, reason: `this host's address ${address[0]} -> ${moved.to} (${moved.rule})` });
    for (const field of hostFields) {
      const renamed = names.renamed(field[0]);
      if (renamed !== undefined) edits.push({ start: line.start + field.index, end: line.start + field.index + field[0].length, text: renamed, reason: `this host's name ${field[0]} -> ${renamed} (the spec's hostname)` });
    }
  }
  return applyEdits(text, edits);
}

/** The origin's names and what each becomes under the spec's hostname. */
class HostNames {
  readonly #full: string;
  readonly #short: string;
  readonly #target?: string;

  constructor(origin: string, target: string | undefined) {
    this.#full = origin.toLowerCase();
    this.#short = shortOf(this.#full);
    if (target !== undefined) this.#target = target;
  }

  isOwn(name: string): boolean {
    const lower = name.toLowerCase();
    return lower === this.#full || lower === this.#short || lower.startsWith(`${this.#short}.`);
  }

  /**
   * The origin's full name becomes the target's (keeping the origin's domain when the spec gives a short
   * name); the short name becomes the short name; `short.other.domain` keeps its domain.
   */
  renamed(name: string): string | undefined {
    const target = this.#target;
    if (target === undefined) return undefined;
    const lower = name.toLowerCase();
    const targetShort = shortOf(target);
    let result: string;
    if (lower === this.#full && target.includes('.')) result = target;
    else if (lower === this.#short) result = targetShort;
    else result = `${targetShort}${name.slice(this.#short.length)}`;
    return result === name ? undefined : result;
  }
}

function shortOf(name: string): string {
  const dot = name.indexOf('.');
  return dot === -1 ? name : name.slice(0, dot);
}
