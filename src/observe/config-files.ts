import { posix } from 'node:path';
import { readConfigTree, type TreeFile } from '../fixup/run.js';
import { matchesPattern, MAX_CONFIG_FILE_BYTES } from '../fixup/catalog.js';
import type { RemoteHost } from '../transport/index.js';

/** The configuration files the fixups read, as an origin holds them; files refused are named with why. */
export interface ConfigFiles {
  readonly files: readonly TreeFile[];
  readonly refused: readonly { readonly path: string; readonly why: string }[];
}


// $1 the root, $2 the size limit, then glob patterns below it (from rmm's own catalog). Prints, for
// each regular file a pattern names, its path and size in base64, then its content in base64: no
// name or content can forge a line of this output. A file whose folder is reached through a symbolic
// link is not read: in a replica such a link may lead to the landing host's own files.
const READ = `r=$1 max=$2; shift 2
rr=$(cd -P -- "\${r:-/}" && pwd -P) || exit 3
for p in "$@"; do
  for f in "$r"$p; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    n=$(printf '%s' "\${f#"$r"}" | base64 -w0)
    if [ -L "$f" ]; then echo "skip $n symlink"; continue; fi
    d=\${f%/*}
    if [ "$(realpath -e -- "$d" 2>/dev/null)" != "\${rr%/}\${d#"$r"}" ]; then echo "skip $n linked"; continue; fi
    [ -f "$f" ] || continue
    s=$(stat -c %s -- "$f")
    if [ "$s" -gt "$max" ]; then echo "skip $n size"; continue; fi
    printf 'file %s ' "$n"; base64 -w0 < "$f"; echo
  done
done`;

/** Reads the origin's configuration files the fixups need, following ifupdown's `source` lines. Read-only. */
export function readConfigFiles(session: RemoteHost, root: string): Promise<ConfigFiles> {
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  return readConfigTree(async (patterns) => {
    const { stdout } = await session.exec(['sh', '-c', READ, 'rmm-read-config', base, String(MAX_CONFIG_FILE_BYTES), ...patterns], { sudo: true, timeoutMs: 60_000 });
    const files: TreeFile[] = [];
    const refused: { path: string; why: string }[] = [];
    for (const line of stdout.split('\n')) {
      const [kind, name, body = ''] = line.split(' ');
      if ((kind !== 'file' && kind !== 'skip') || name === undefined) continue;
      const path = Buffer.from(name, 'base64').toString('utf8');
      if (!path.startsWith('/') || !matchesPattern(path, patterns)) continue;
      if (posix.normalize(path) !== path) {
        refused.push({ path, why: 'its path holds . or .. (not followed)' });
        continue;
      }
      if (kind === 'skip') {
        refused.push({ path, why: body === 'size' ? `larger than ${MAX_CONFIG_FILE_BYTES} bytes` : body === 'linked' ? 'its folder is reached through a symbolic link (not followed)' : 'a symbolic link (not followed)' });
        continue;
      }
      const bytes = Buffer.from(body, 'base64');
      const text = bytes.toString('utf8');
      // Rewriting a file that is not UTF-8 would change bytes no fixup names.
      if (!Buffer.from(text, 'utf8').equals(bytes)) refused.push({ path, why: 'not UTF-8 text' });
      else files.push({ path, text });
    }
    return { files, refused };
  });
}
