import { createHash } from 'node:crypto';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { formatOf, matchesPattern, renamedPath, wantedPatterns, type FixupFormat } from './catalog.js';
import { fixupHostname, fixupHosts } from './identity.js';
import { fixupIfcfg, fixupIfcfgRoutes, fixupSysconfigNetwork } from './ifcfg.js';
import { fixupIfupdown, ifupdownSources } from './ifupdown.js';
import { excludedReferences, type FixupInputs } from './inputs.js';
import { fixupNetplan } from './netplan.js';
import { fixupNetworkd } from './networkd.js';
import { fixupNmKeyfile } from './nm-keyfile.js';
import { fixupCrypttab, fixupFstab, fixupGrubDefaults, fixupKernelCmdline, fixupResume, type StorageMap } from './storage.js';
import type { FixupChange, FixupResult } from './types.js';
import { fixupPersistentNetRules } from './udev.js';

/** One file of a tree: its absolute path as the server sees it (/etc/fstab) and its text. */
export interface TreeFile {
  readonly path: string;
  readonly text: string;
}

/**
 * What the fixups make of one file. `changed` may also move the file (`renamedTo`, networkd units and
 * ifcfg files named after an interface); `renamed` moves it without a change of content. `unparsable`
 * is left alone, and so is a file whose new name is taken by another.
 */
export type FileOutcome =
  | { readonly path: string; readonly format: FixupFormat; readonly status: 'unchanged' }
  | {
      readonly path: string;
      readonly format: FixupFormat;
      readonly status: 'changed';
      readonly text: string;
      readonly changes: readonly FixupChange[];
      readonly diff: string;
      readonly renamedTo?: string;
    }
  | { readonly path: string; readonly format: FixupFormat; readonly status: 'renamed'; readonly renamedTo: string; readonly diff: string }
  | { readonly path: string; readonly format: FixupFormat; readonly status: 'unparsable'; readonly problem: string; readonly line?: number };

/**
 * Runs the fixups over the files of a tree. Pure: the caller reads the files (those `wantedPatterns`
 * and `sourcedPatterns` name) and writes the outcomes. Files no fixup reads are left out of the answer;
 * the others come back in path order.
 */
export function runFixups(files: readonly TreeFile[], inputs: FixupInputs): FileOutcome[] {
  const ifupdown = ifupdownPaths(files);
  const byPath = new Map(files.map((f) => [f.path, f]));
  const storage = storageMap(files, inputs);
  const originHostname = inputs.originHostname ?? hostnameOf(byPath.get('/etc/hostname')?.text);
  const outcomes: FileOutcome[] = [];
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const format = ifupdown.has(file.path) ? 'ifupdown' : formatOf(file.path);
    if (format === undefined) continue;
    const result = transform(format, file.text, inputs, storage, originHostname);
    outcomes.push(outcomeOf(file, format, result, inputs, byPath));
  }
  return outcomes;
}

function transform(format: FixupFormat, text: string, inputs: FixupInputs, storage: StorageMap, originHostname: string | undefined): FixupResult {
  const { remap, nics } = inputs;
  switch (format) {
    case 'ifupdown':
      return fixupIfupdown(text, remap, nics);
    case 'netplan':
      return fixupNetplan(text, remap, nics);
    case 'nm-keyfile':
      return fixupNmKeyfile(text, remap, nics);
    case 'ifcfg':
      return fixupIfcfg(text, remap, nics);
    case 'ifcfg-routes':
      return fixupIfcfgRoutes(text, remap, nics);
    case 'sysconfig-network':
      return fixupSysconfigNetwork(text, remap, nics);
    case 'networkd':
      return fixupNetworkd(text, remap, nics);
    case 'fstab':
      return fixupFstab(text, storage);
    case 'crypttab':
      return fixupCrypttab(text, storage);
    case 'resume':
      return fixupResume(text, storage);
    case 'grub-defaults':
      return fixupGrubDefaults(text, storage);
    case 'kernel-cmdline':
      return fixupKernelCmdline(text, storage);
    case 'hostname':
      return fixupHostname(text, remap.hostname);
    case 'hosts':
      if (remap.isEmpty && remap.hostname === undefined) return { kind: 'unchanged', text };
      if (originHostname === undefined) return { kind: 'unparsable', problem: "the origin's hostname is not known (no name in /etc/hostname), so its own lines cannot be told from other hosts'" };
      return fixupHosts(text, remap, originHostname);
    case 'udev-persistent-net':
      return fixupPersistentNetRules(text, nics);
  }
}

function outcomeOf(file: TreeFile, format: FixupFormat, result: FixupResult, inputs: FixupInputs, byPath: ReadonlyMap<string, TreeFile>): FileOutcome {
  const { path } = file;
  if (result.kind === 'unparsable') return { path, format, status: 'unparsable', problem: result.problem, ...(result.line !== undefined ? { line: result.line } : {}) };
  const renamedTo = renamedPath(path, format, inputs.nics);
  if (renamedTo !== undefined && byPath.has(renamedTo))
    return { path, format, status: 'unparsable', problem: `it would be renamed to ${renamedTo}, which exists already; merge the two by hand` };
  const diff = result.kind === 'changed' || renamedTo !== undefined ? unifiedDiff(path, renamedTo ?? path, file.text, result.text) : '';
  if (result.kind === 'changed') return { path, format, status: 'changed', text: result.text, changes: result.changes, diff, ...(renamedTo !== undefined ? { renamedTo } : {}) };
  if (renamedTo !== undefined) return { path, format, status: 'renamed', renamedTo, diff };
  return { path, format, status: 'unchanged' };
}

/** A unified diff with git's a/ and b/ prefixes, so `git apply` and `patch -p1` take it at the tree's root. */
export function unifiedDiff(from: string, to: string, before: string, after: string): string {
  return createTwoFilesPatch(`a${from}`, `b${to}`, before, after, undefined, undefined, { headerOptions: FILE_HEADERS_ONLY });
}

// ---- ifupdown's sourced files ----------------------------------------------------------------------

/** ifup resolves a relative `source` path against /etc/network. */
function absolute(path: string): string {
  return path.startsWith('/') ? path : `/etc/network/${path}`;
}

/** `source-directory` takes the files run-parts would: names of letters, digits, '_' and '-' only. */
const RUN_PARTS_NAME = /^[A-Za-z0-9_-]+$/;

interface Sourced {
  readonly pattern: string;
  readonly directory: boolean;
}

function sourcesOf(text: string): Sourced[] {
  return ifupdownSources(text).map((s) =>
    s.kind === 'source' ? { pattern: absolute(s.path), directory: false } : { pattern: `${absolute(s.path).replace(/\/+$/, '')}/*`, directory: true },
  );
}

function isSourced(path: string, sourced: readonly Sourced[]): boolean {
  return sourced.some((s) => matchesPattern(path, [s.pattern]) && (!s.directory || RUN_PARTS_NAME.test(path.slice(path.lastIndexOf('/') + 1))));
}

/** /etc/network/interfaces and every file it sources, directly or through another sourced file. */
function ifupdownPaths(files: readonly TreeFile[]): Set<string> {
  const found = new Set<string>();
  let frontier = files.filter((f) => f.path === '/etc/network/interfaces');
  while (frontier.length > 0) {
    for (const f of frontier) found.add(f.path);
    const sourced = frontier.flatMap((f) => sourcesOf(f.text));
    frontier = files.filter((f) => !found.has(f.path) && isSourced(f.path, sourced));
  }
  return found;
}

/**
 * The patterns of the files that the ifupdown files among `files` source and that are not read yet:
 * a caller reads them and asks again, until this is empty (a sourced file may source others).
 */
export function sourcedPatterns(files: readonly TreeFile[]): string[] {
  const paths = ifupdownPaths(files);
  const read = new Set(files.map((f) => f.path));
  const patterns = files.filter((f) => paths.has(f.path)).flatMap((f) => sourcesOf(f.text).map((s) => s.pattern));
  return [...new Set(patterns)].filter((p) => !read.has(p));
}

/** Whether a file found by one of `sourcedPatterns`' patterns is one ifup would read (run-parts names in a directory). */
export function isSourcedFile(path: string, files: readonly TreeFile[]): boolean {
  const sourced = files.filter((f) => ifupdownPaths(files).has(f.path)).flatMap((f) => sourcesOf(f.text));
  return isSourced(path, sourced);
}

// ---- storage and identity inputs ---------------------------------------------------------------------

function storageMap(files: readonly TreeFile[], inputs: FixupInputs): StorageMap {
  const storageTexts = files.filter((f) => ['fstab', 'crypttab', 'resume', 'grub-defaults', 'kernel-cmdline'].includes(formatOf(f.path) ?? '')).map((f) => f.text);
  return {
    devices: inputs.devices,
    excluded: excludedReferences(inputs.excluded, storageTexts),
    excludedHandling: inputs.unavailableMounts,
    networkMounts: inputs.networkMounts,
  };
}

/** The name /etc/hostname holds: its first word that is not a comment. */
function hostnameOf(text: string | undefined): string | undefined {
  for (const line of text?.split('\n') ?? []) {
    const word = line.replace(/#.*$/, '').trim();
    if (word !== '') return word.split(/\s+/)[0];
  }
  return undefined;
}

/** The content hash by which a planned fixup names the text it read: apply rewrites only that text. */
export function textDigest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Reads the files the fixups need, wherever they are: the catalog's, then those /etc/network/interfaces
 * sources, round after round until a round finds nothing new (a sourced file may source others).
 * `read` answers what a list of patterns matches; this keeps each path once, and from a sourced round
 * only the files ifup would read.
 */
export async function readConfigTree<R extends { readonly path: string }>(
  read: (patterns: readonly string[]) => Promise<{ files: readonly TreeFile[]; refused: readonly R[] }>,
): Promise<{ files: TreeFile[]; refused: R[] }> {
  const files: TreeFile[] = [];
  const refused: R[] = [];
  const seen = new Set<string>();
  let patterns = wantedPatterns();
  for (let round = 0; patterns.length > 0; round++) {
    const got = await read(patterns);
    const fresh = <T extends { readonly path: string }>(entry: T): boolean => !seen.has(entry.path) && (round === 0 || isSourcedFile(entry.path, files));
    const newFiles = got.files.filter(fresh);
    const newRefused = got.refused.filter(fresh);
    if (newFiles.length === 0 && newRefused.length === 0) break;
    for (const entry of [...newFiles, ...newRefused]) seen.add(entry.path);
    files.push(...newFiles);
    refused.push(...newRefused);
    patterns = sourcedPatterns(files);
  }
  return { files, refused };
}
