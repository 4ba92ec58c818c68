import { watch } from 'chokidar';
import { formatDiagnostic } from '../config/diagnostics.js';
import { loadSources } from '../config/load.js';
import { readSources } from '../config/source.js';
import type { Spec } from '../config/spec.js';

/** What the files say once they changed: a valid estate, or its problems (file:line:column: field: message). */
export type Reloaded = { readonly spec: Spec; readonly warnings: readonly string[] } | { readonly problems: readonly string[] };

/** Reads and checks the files again, as `rmm validate` does; touches no host. */
export async function reloadSpec(args: readonly string[]): Promise<Reloaded> {
  const { files, diagnostics } = await readSources(args);
  const result = loadSources(files, diagnostics);
  if (!result.spec) return { problems: result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic) };
  return { spec: result.spec, warnings: result.diagnostics.map(formatDiagnostic) };
}

/**
 * Calls `onChange` when the configuration files change (a file written, renamed over, added to or
 * removed from a folder given with -f), once per burst of changes: an editor's save or a git pull
 * writes several files, or one file in several steps.
 */
export function watchFiles(paths: readonly string[], onChange: () => void, quietMs = 300): { close(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch([...paths], {
    ignoreInitial: true,
    // In a folder, only what -f reads there: its *.yaml and *.yml files.
    ignored: (path, stats) => stats?.isFile() === true && !/\.ya?ml$/.test(path) && !paths.includes(path),
  });
  watcher.on('all', () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, quietMs);
  });
  return {
    close: async () => {
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
