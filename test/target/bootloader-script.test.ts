import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BOOTLOADER } from '../../src/target/disks/scripts.js';

/**
 * The bootloader step's script, run as it runs on a landing host: as root, on a copy it enters by
 * chroot. The copy here is a small real root (dash, env, rm and their libraries) whose GRUB is a
 * stand-in that logs its calls and writes a configuration listing the kernels in /boot, as
 * update-grub does. Run in a mount namespace of its own, so the script's bind mounts end with it.
 */

let base: string;
let root: string;

function copyBinary(path: string): void {
  const res = spawnSync('ldd', [path], { encoding: 'utf8' });
  const libs = [...res.stdout.matchAll(/(\/\S+)/g)].map((m) => m[1]!);
  for (const file of [path, ...libs]) {
    const at = join(root, file);
    mkdirSync(dirname(at), { recursive: true });
    if (!existsSync(at)) copyFileSync(file, at);
  }
}

function put(path: string, text: string, mode = 0o644): void {
  const at = join(root, path);
  mkdirSync(dirname(at), { recursive: true });
  writeFileSync(at, text);
  chmodSync(at, mode);
}

function kernel(version: string): void {
  put(`boot/vmlinuz-${version}`, 'kernel');
  put(`boot/config-${version}`, 'config');
  put(`boot/System.map-${version}`, 'map');
  put(`boot/initrd.img-${version}`, 'initrd');
  put(`usr/lib/modules/${version}/kernel/drivers/x.ko`, 'module');
}

function bootloader(kernels: string[]): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync('unshare', ['-m', 'sh', '-c', BOOTLOADER, 'rmm-bootloader', root, 'bios', '/dev/null', '', ...kernels], { encoding: 'utf8' });
  if (res.error) throw res.error;
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

const grubCalls = () => readFileSync(join(root, 'grub.log'), 'utf8').trim().split('\n');
const grubCfg = () => readFileSync(join(root, 'boot/grub/grub.cfg'), 'utf8');

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'rmm-bootloader-'));
  root = join(base, 'copy');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'usr/sbin'), { recursive: true });
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${l}`, join(root, l));
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  mkdirSync(join(root, 'usr/lib64'), { recursive: true });
  for (const bin of ['/usr/bin/dash', '/usr/bin/env', '/usr/bin/rm']) copyBinary(bin);
  symlinkSync('dash', join(root, 'usr/bin/sh'));
  mkdirSync(join(root, 'boot/grub'), { recursive: true });
  put('usr/sbin/grub-install', '#!/bin/sh\necho "grub-install $*" >> /grub.log\n', 0o755);
  put('usr/sbin/update-grub', '#!/bin/sh\necho update-grub >> /grub.log\nfor f in /boot/vmlinuz-*; do if [ -f "$f" ]; then echo "menuentry $f"; fi; done > /boot/grub/grub.cfg\n', 0o755);
});

afterEach(() => {
  // The script's mounts lived in its own namespace: nothing of the host is below the copy now.
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  if (mounts.includes(base)) throw new Error(`mounts left below ${base}`);
  rmSync(base, { recursive: true, force: true });
});

describe('BOOTLOADER: kernels the origin no longer has', () => {
  it('installs GRUB and makes its configuration; with no kernel list, removes nothing', () => {
    kernel('6.1.0-1-amd64');
    kernel('6.1.0-2-amd64');
    const res = bootloader([]);
    expect(res, res.stderr).toMatchObject({ code: 0, stdout: '' });
    expect(grubCalls()).toEqual(['grub-install --target=i386-pc /dev/null', 'update-grub']);
    expect(grubCfg()).toBe('menuentry /boot/vmlinuz-6.1.0-1-amd64\nmenuentry /boot/vmlinuz-6.1.0-2-amd64\n');
  });

  it('removes the files of a kernel the origin lost, then makes the configuration again without it', () => {
    kernel('6.1.0-1-amd64');
    kernel('6.1.0-2-amd64');
    put('boot/initrd.img-6.1.0-2-amd64', 'initrd');
    const res = bootloader(['6.1.0-2-amd64']);
    expect(res, res.stderr).toMatchObject({ code: 0, stdout: 'removed 6.1.0-1-amd64\n' });
    expect(grubCalls()).toEqual(['grub-install --target=i386-pc /dev/null', 'update-grub', 'update-grub']);
    expect(grubCfg()).toBe('menuentry /boot/vmlinuz-6.1.0-2-amd64\n');
    expect(readdirSync(join(root, 'boot')).sort()).toEqual(['System.map-6.1.0-2-amd64', 'config-6.1.0-2-amd64', 'grub', 'initrd.img-6.1.0-2-amd64', 'vmlinuz-6.1.0-2-amd64']);
    expect(readdirSync(join(root, 'usr/lib/modules'))).toEqual(['6.1.0-2-amd64']);
  });

  it('removes nothing when none of the origin kernels is in the copy (never every kernel)', () => {
    kernel('6.1.0-1-amd64');
    const res = bootloader(['6.1.0-9-amd64']);
    expect(res, res.stderr).toMatchObject({ code: 0, stdout: '' });
    expect(grubCalls()).toEqual(['grub-install --target=i386-pc /dev/null', 'update-grub']);
    expect(existsSync(join(root, 'boot/vmlinuz-6.1.0-1-amd64'))).toBe(true);
  });

  it('removes inside the copy: a /boot that is a symbolic link to the host resolves in the chroot', () => {
    // The copy's /boot/vmlinuz-x is a link to an absolute path: rm in the chroot removes the link
    // (and the copy's own target), never the landing host's file of that name.
    kernel('6.1.0-2-amd64');
    const hostFile = join(base, 'host-file');
    writeFileSync(hostFile, 'landing host');
    symlinkSync(hostFile, join(root, 'boot/vmlinuz-old'));
    put('usr/lib/modules/old/keep', 'x');
    const res = bootloader(['6.1.0-2-amd64']);
    expect(res.code, res.stderr).toBe(0);
    // A link is not a kernel file (-f follows it inside the chroot, where the target does not exist).
    expect(res.stdout).toBe('');
    expect(readFileSync(hostFile, 'utf8')).toBe('landing host');
  });

  it('skips a file whose version is not a plain name', () => {
    kernel('6.1.0-2-amd64');
    put('boot/vmlinuz-.hidden', 'x');
    const res = bootloader(['6.1.0-2-amd64']);
    expect(res, res.stderr).toMatchObject({ code: 0, stdout: '' });
    expect(existsSync(join(root, 'boot/vmlinuz-.hidden'))).toBe(true);
  });
});
