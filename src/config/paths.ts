import os from 'node:os';
import path from 'node:path';

/** Resolves a path written in a YAML file: `~` is the home directory, relative is relative to the file. */
export function resolveLocalPath(value: string, baseDir: string): string {
  if (value === '~') return os.homedir();
  if (value.startsWith('~/')) return path.join(os.homedir(), value.slice(2));
  return path.resolve(baseDir, value);
}
