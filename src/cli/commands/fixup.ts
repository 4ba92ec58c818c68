import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadSpec } from '../../config/load.js';
import { didYouMean } from '../../config/suggest.js';
import { MAX_CONFIG_FILE_BYTES } from '../../fixup/catalog.js';
import { fixupInputsOf } from '../../fixup/inputs.js';
import { readConfigTree, runFixups, type FileOutcome, type TreeFile } from '../../fixup/run.js';
import { EXIT, FILE_HELP, FILE_OPTION, fileArgs, OUTPUT_HELP, writeJson, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { LocalTree, type RefusedFile } from '../local-tree.js';

/** A file the command reports: what the fixups made of it, or why it was not read. */
type Reported = FileOutcome | (RefusedFile & { readonly status: 'unreadable' });

export const fixupCommand: Command = {
  name: 'fixup',
  summary: "show (and with --write, make) the changes a replica's fixups make to a local tree",
  usage: 'rmm fixup REPLICA -f FILE --root DIR [--write] [-o json]',
  details: [
    FILE_HELP,
    '  --root DIR              a folder that stands for the server\'s / (a mounted replica, a copy of an origin\'s /etc)',
    '  --write                 write the changes: each file atomically, keeping its owner and mode',
    OUTPUT_HELP,
    '',
    "Runs the replica's fixups (its ipRemap, fixups.nics, and its exclusions for fstab and crypttab) on the",
    'network, storage and identity files under DIR, and prints the unified diff of each file they change',
    '(paths a/ and b/ from DIR, so `patch -p1 -d DIR` takes it). A file that cannot be parsed, or read (a',
    `symlink that leaves DIR, more than ${MAX_CONFIG_FILE_BYTES} bytes, not UTF-8), is reported and never touched.`,
    "The origin's hostname, which names its own lines in /etc/hosts, is read from DIR/etc/hostname.",
    'Run it on the origin\'s files as they are: fixups map the origin\'s settings, not settings already mapped.',
    '',
    'Exit codes: 0 nothing to change (or everything written), 3 changes pending, 1 some file unparsable or',
    'unreadable (left alone), 2 invalid input.',
  ].join('\n'),
  options: { ...FILE_OPTION, root: { type: 'string' }, write: { type: 'boolean' } },
  positionals: 1,
  async run(ctx) {
    const name = ctx.positionals[0];
    if (name === undefined) throw new UsageError('needs the name of a replica');
    const args = fileArgs(ctx);
    if (args.length === 0) throw new UsageError('needs at least one -f FILE');
    const root = ctx.values.root;
    if (typeof root !== 'string' || root === '') throw new UsageError('needs --root DIR, the folder that stands for the server\'s /');
    const tree = await LocalTree.open(root);
    const { spec, warnings } = await loadSpec(args);
    if (ctx.output === 'text') for (const w of warnings) ctx.stderr.write(`${formatDiagnostic(w)}\n`);
    const replica = spec.replicas.find((r) => r.name === name);
    if (!replica) throw new UsageError(`no replica named '${name}'${didYouMean(name, spec.replicas.map((r) => r.name))} in ${args.join(', ')} (there are: ${spec.replicas.map((r) => r.name).join(', ') || 'none'})`);
    if (!replica.fixups.enabled && ctx.output === 'text')
      ctx.stderr.write(`note: replica '${name}' gets no fixups when it syncs (its directory target has no fixups.enabled: true); showing what they would do\n`);

    const { files, refused } = await readTree(tree);
    const outcomes = runFixups(files, fixupInputsOf(replica));
    const reported: Reported[] = [...outcomes, ...refused.map((r) => ({ ...r, status: 'unreadable' as const }))].sort((a, b) => (a.path < b.path ? -1 : 1));
    const write = ctx.values.write === true;
    if (write) await writeOutcomes(tree, outcomes);

    const pending = outcomes.filter((o) => o.status === 'changed' || o.status === 'renamed');
    const failed = reported.filter((o) => o.status === 'unparsable' || o.status === 'unreadable');
    if (ctx.output === 'json') writeJson(ctx, fixupJson(name, tree.dir, write, reported));
    else render(ctx, reported, write);
    if (failed.length > 0) return EXIT.error;
    return pending.length > 0 && !write ? EXIT.changesPending : EXIT.ok;
  },
};

/** The catalog's files, then the files /etc/network/interfaces sources, round after round. */
function readTree(tree: LocalTree): Promise<{ files: TreeFile[]; refused: RefusedFile[] }> {
  return readConfigTree(async (patterns) => tree.read(await tree.expand(patterns)));
}

/** Only changed and renamed files are written; an unparsable one is never touched. */
async function writeOutcomes(tree: LocalTree, outcomes: readonly FileOutcome[]): Promise<void> {
  for (const o of outcomes) {
    if (o.status === 'changed') await tree.write(o.path, o.text, o.renamedTo);
    else if (o.status === 'renamed') await tree.rename(o.path, o.renamedTo);
  }
}

function render(ctx: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }, reported: readonly Reported[], written: boolean): void {
  let changed = 0;
  for (const o of reported) {
    if (o.status === 'changed' || o.status === 'renamed') {
      changed++;
      if (o.renamedTo !== undefined) ctx.stdout.write(`rename ${o.path} -> ${o.renamedTo}\n`);
      if (o.status === 'changed') ctx.stdout.write(o.diff);
    } else if (o.status === 'unparsable') {
      ctx.stderr.write(`${o.path}${o.line !== undefined ? `:${o.line}` : ''}: left alone: ${o.problem}\n`);
    } else if (o.status === 'unreadable') {
      ctx.stderr.write(`${o.path}: left alone: ${o.problem}\n`);
    }
  }
  const failed = reported.filter((o) => o.status === 'unparsable' || o.status === 'unreadable').length;
  const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;
  const done = changed === 0 ? 'nothing to change' : written ? `${files(changed)} written` : `${files(changed)} to change (--write writes them)`;
  ctx.stderr.write(`Fixup: ${done}, ${files(reported.length - changed - failed)} unchanged${failed > 0 ? `, ${files(failed)} left alone` : ''}.\n`);
}

/** `rmm fixup -o json`: every file looked at, with what the fixups made of it. */
function fixupJson(replica: string, root: string, written: boolean, reported: readonly Reported[]): Record<string, unknown> {
  const files = reported.map((o) => {
    const base = { file: o.path, status: o.status, ...('format' in o ? { format: o.format } : {}) };
    switch (o.status) {
      case 'changed':
        return { ...base, ...(o.renamedTo !== undefined ? { renamedTo: o.renamedTo } : {}), changes: o.changes.map((c) => ({ line: c.line, before: c.before, after: c.after, reason: c.reason })), diff: o.diff };
      case 'renamed':
        return { ...base, renamedTo: o.renamedTo, changes: [], diff: o.diff };
      case 'unparsable':
        return { ...base, problem: o.problem, ...(o.line !== undefined ? { line: o.line } : {}) };
      case 'unreadable':
        return { ...base, problem: o.problem };
      default:
        return base;
    }
  });
  const count = (...s: string[]): number => reported.filter((o) => s.includes(o.status)).length;
  return {
    formatVersion: 1,
    replica,
    root,
    written,
    files,
    summary: { changed: count('changed', 'renamed'), unchanged: count('unchanged'), leftAlone: count('unparsable', 'unreadable') },
    changesPending: !written && count('changed', 'renamed') > 0,
  };
}
