import { constants } from 'node:fs';
import { link, lstat, open, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { MAX_CONFIG_FILE_BYTES } from '../fixup/catalog.js';
import type { TreeFile } from '../fixup/run.js';
import { globToRegExp } from '../util/glob.js';

/** A file of the tree that matched a pattern but cannot be taken: the caller reports it and leaves it alone. */
export interface RefusedFile {
  readonly path: string;
  readonly problem: string;
}

/**
 * A local folder that stands for a server's `/` (a mounted replica, a copy of an origin's /etc).
 * Paths in and out are the server's (/etc/fstab); only this class knows where they are on this host.
 * A symlink is followed only while it stays inside the folder: one that leaves it (an absolute link
 * resolves against this host's /, not the server's) is refused.
 */
export class LocalTree {
  private constructor(
    readonly dir: string,
    private readonly realDir: string,
  ) {}

  static async open(dir: string): Promise<LocalTree> {
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new InputError('fixup.root', `--root ${dir} is not a directory`);
    return new LocalTree(path.resolve(dir), await realpath(dir));
  }

  /** The server paths matching `patterns` (globs within one path segment), in path order. */
  async expand(patterns: readonly string[]): Promise<string[]> {
    const found = new Set<string>();
    for (const pattern of patterns) for (const p of await this.#expandOne(pattern)) found.add(p);
    return [...found].sort();
  }

  async #expandOne(pattern: string): Promise<string[]> {
    let paths = [''];
    for (const segment of pattern.split('/').filter((s) => s !== '')) {
      if (!/[*?]/.test(segment)) {
        paths = paths.map((p) => `${p}/${segment}`);
        continue;
      }
      const re = globToRegExp(segment);
      const next: string[] = [];
      for (const p of paths) {
        const names = await readdir(this.#local(p || '/')).catch(() => [] as string[]);
        for (const name of names.sort()) if (re.test(name)) next.push(`${p}/${name}`);
      }
      paths = next;
    }
    const existing: string[] = [];
    for (const p of paths) {
      const info = await lstat(this.#local(p)).catch(() => undefined);
      // A folder where a file is expected is another layout (SUSE's /etc/sysconfig/network), not a file to refuse.
      const folder = info?.isSymbolicLink() ? (await stat(this.#local(p)).catch(() => undefined))?.isDirectory() : info?.isDirectory();
      if (info && !folder) existing.push(p);
    }
    return existing;
  }

  #local(serverPath: string): string {
    return path.join(this.dir, serverPath);
  }

  /** Where a server path really is on this host, or why it is refused. */
  /**
   * A file reached through a symlink is renamed nowhere: the real file lives elsewhere (a vendor's
   * unit under /usr/lib), and moving it would leave the link dangling and the interface unconfigured.
   */
  async #refuseLinkRename(serverPath: string): Promise<void> {
    const info = await lstat(this.#local(serverPath)).catch(() => undefined);
    if (info?.isSymbolicLink()) throw new InputError('fixup.refused', `${serverPath}: a symbolic link; rmm renames only real files (rename the file it points to by hand)`);
  }

  async #resolve(serverPath: string): Promise<{ real: string } | { problem: string }> {
    const real = await realpath(this.#local(serverPath)).catch(() => undefined);
    if (real === undefined) return { problem: 'a symlink whose target does not exist in the tree' };
    if (real !== this.realDir && !real.startsWith(`${this.realDir}${path.sep}`)) return { problem: `a symlink that leaves the tree (to ${real})` };
    return { real };
  }

  /** Reads files as UTF-8 text; a file that is not a regular file, too big, or not UTF-8 is refused. */
  async read(serverPaths: readonly string[]): Promise<{ files: TreeFile[]; refused: RefusedFile[] }> {
    const files: TreeFile[] = [];
    const refused: RefusedFile[] = [];
    for (const p of serverPaths) {
      const got = await this.#readOne(p);
      if ('problem' in got) refused.push({ path: p, problem: got.problem });
      else files.push({ path: p, text: got.text });
    }
    return { files, refused };
  }

  async #readOne(serverPath: string): Promise<{ text: string } | { problem: string }> {
    const where = await this.#resolve(serverPath);
    if ('problem' in where) return where;
    // O_NONBLOCK: a fifo planted in the tree must not hang the read; it is refused below.
    const file = await open(where.real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const info = await file.stat();
      if (!info.isFile()) return { problem: 'not a regular file' };
      if (info.size > MAX_CONFIG_FILE_BYTES) return { problem: `${info.size} bytes, more than the ${MAX_CONFIG_FILE_BYTES} bytes a configuration file may have` };
      const buffer = Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1);
      let total = 0;
      for (;;) {
        const { bytesRead } = await file.read(buffer, total, buffer.length - total, total);
        if (bytesRead === 0) break;
        total += bytesRead;
        if (total > MAX_CONFIG_FILE_BYTES) return { problem: `more than the ${MAX_CONFIG_FILE_BYTES} bytes a configuration file may have` };
      }
      const bytes = buffer.subarray(0, total);
      const text = bytes.toString('utf8');
      // Rewriting a file decoded with replacement characters would change bytes no fixup named.
      if (!Buffer.from(text, 'utf8').equals(bytes)) return { problem: 'not UTF-8 text' };
      return { text };
    } finally {
      await file.close();
    }
  }

  /**
   * Replaces a file's content atomically: a temporary file in the same folder, written, given the old
   * file's owner and mode, flushed, then renamed over it (a hard link to the old content, as an older
   * recovery point holds, keeps the old content). With `to`, the new content goes to that name instead,
   * which must not exist, and the old name is removed.
   */
  async write(serverPath: string, text: string, to?: string): Promise<void> {
    if (to !== undefined) await this.#refuseLinkRename(serverPath);
    const where = await this.#resolve(serverPath);
    if ('problem' in where) throw new InputError('fixup.refused', `${serverPath}: ${where.problem}`);
    const old = await stat(where.real);
    const folder = path.dirname(where.real);
    const target = to === undefined ? where.real : path.join(folder, path.basename(to));
    const temp = path.join(folder, `.${path.basename(target)}.rmm-${process.pid}-${Date.now()}`);
    const file = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await file.writeFile(text, 'utf8');
      await file.chown(old.uid, old.gid);
      await file.chmod(old.mode & 0o7777);
      await file.sync();
    } catch (err) {
      await file.close();
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await file.close();
    try {
      if (to === undefined) await rename(temp, target);
      else await link(temp, target); // fails when the new name is taken
    } finally {
      if (to !== undefined) await unlink(temp).catch(() => undefined);
    }
    if (to !== undefined) await unlink(where.real);
    await syncFolder(folder);
  }

  /** Moves a file to a new name in its folder; refuses when the new name is taken. */
  async rename(serverPath: string, to: string): Promise<void> {
    await this.#refuseLinkRename(serverPath);
    const where = await this.#resolve(serverPath);
    if ('problem' in where) throw new InputError('fixup.refused', `${serverPath}: ${where.problem}`);
    const folder = path.dirname(where.real);
    await link(where.real, path.join(folder, path.basename(to)));
    await unlink(where.real);
    await syncFolder(folder);
  }
}

async function syncFolder(folder: string): Promise<void> {
  const dir = await open(folder, constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
