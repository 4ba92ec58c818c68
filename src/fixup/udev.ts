import { applyEdits, commentOut, linesOf, type Line, type TextEdit } from './edits.js';
import { binaryProblem } from './line-edits.js';
import { interfaceReason, macPin, targetInterface } from './nic-rename.js';
import type { FixupResult, NicIdentity } from './types.js';

/**
 * A persistent-net udev rules file (`/etc/udev/rules.d/70-persistent-net.rules`, cloud-init's
 * `85-persistent-net-cloud-init.rules`, …) for the target. A rule that names a NIC by the origin's MAC
 * (`ATTR{address}=="…", NAME="eth0"`) is rewritten to the target NIC's MAC and name, or, when the
 * target NIC has no known MAC, commented out with a note: left alone it would never match, and the NIC
 * would keep a name no other file expects. Rules on other MACs, and every other rule, stay as written.
 */
export function fixupPersistentNetRules(text: string, nics: NicIdentity): FixupResult {
  const binary = binaryProblem(text);
  if (binary) return binary;
  const edits: TextEdit[] = [];
  for (const rule of rulesOf(linesOf(text))) {
    const problem = syntaxProblem(rule.text);
    if (problem) return { kind: 'unparsable', problem, line: rule.lines[0]!.number };
    edits.push(...ruleEdits(rule, nics));
  }
  return applyEdits(text, edits);
}

/** A rule with its continuation lines (a line ending in a backslash goes on). */
interface Rule {
  readonly lines: Line[];
  readonly text: string;
}

function rulesOf(lines: readonly Line[]): Rule[] {
  const rules: Rule[] = [];
  let current: Line[] = [];
  for (const line of lines) {
    if (current.length === 0 && /^\s*(#|$)/.test(line.text)) continue;
    current.push(line);
    if (line.text.endsWith('\\')) continue;
    rules.push({ lines: current, text: current.map((l) => l.text.replace(/\\$/, '')).join(' ') });
    current = [];
  }
  if (current.length > 0) rules.push({ lines: current, text: current.map((l) => l.text.replace(/\\$/, '')).join(' ') });
  return rules;
}

/** udev's grammar: `KEY[{attr}]` operator `"value"`, separated by commas (or, as udev tolerates, blanks). */
const ASSIGNMENT = /\s*[A-Za-z_][A-Za-z0-9_]*(?:\{[^}]*\})?\s*(?:==|!=|\+=|-=|:=|=)\s*"(?:[^"\\]|\\.)*"\s*,?/y;

function syntaxProblem(text: string): string | undefined {
  ASSIGNMENT.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    ASSIGNMENT.lastIndex = at;
    if (!ASSIGNMENT.exec(text)) break;
    at = ASSIGNMENT.lastIndex;
  }
  const rest = text.slice(at).trim();
  return rest === '' ? undefined : `not a udev key, operator and quoted value: ${rest}`;
}

const MAC_MATCH = /ATTR\{address\}\s*==\s*"([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})"/;
const NAME_ASSIGN = /(?<![A-Za-z_{])NAME\s*:?=\s*"([^"]*)"/;

function ruleEdits(rule: Rule, nics: NicIdentity): TextEdit[] {
  const macAt = find(rule, MAC_MATCH);
  if (!macAt) return [];
  const pin = macPin(macAt.value, nics);
  if (pin.kind === 'keep') return [];
  const nameAt = find(rule, NAME_ASSIGN);
  if (pin.kind === 'remove') {
    const reason = `rule naming ${nameAt ? nameAt.value : 'a NIC'} commented out: ${pin.reason}`;
    return rule.lines.map((line, i) => commentOut(line, reason, i === 0 ? reason : undefined));
  }
  const edits: TextEdit[] = [{ start: macAt.start, end: macAt.end, text: pin.to, reason: pin.reason }];
  const newName = nameAt && targetInterface(nameAt.value, nics);
  if (nameAt && newName !== undefined) edits.push({ start: nameAt.start, end: nameAt.end, text: newName, reason: interfaceReason(nameAt.value, newName) });
  return edits;
}

/** The first capture of `pattern` in one of the rule's lines, with its offsets in the file. */
function find(rule: Rule, pattern: RegExp): { value: string; start: number; end: number } | undefined {
  for (const line of rule.lines) {
    const match = pattern.exec(line.text);
    if (!match) continue;
    const value = match[1]!;
    const start = line.start + match.index + match[0].lastIndexOf(`"${value}"`) + 1;
    return { value, start, end: start + value.length };
  }
  return undefined;
}
