/** What the qemu labs' own tests check on this machine's processes. */
import { readdir, readFile } from 'node:fs/promises';

/** Whether pid runs (an exited process stays a zombie until pid 1 reaps it, which may take a while). */
export async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** PIDs of qemu processes whose command line names a file in dir. */
export async function qemuUsing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('qemu-system') && cmdline.includes(`${dir}/`)) pids.push(Number(entry));
  }
  return pids;
}

/** A process's command line, word by word. */
export async function processArgs(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
}
