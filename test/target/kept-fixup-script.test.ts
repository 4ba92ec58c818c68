import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KEPT_FIXUP_SCRIPT, PRESENT_SCRIPT } from '../../src/target/fixup-files.js';

function run(script: string, args: string[], input = ''): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync('sh', ['-c', script, 'name', ...args], { input, encoding: 'utf8' });
  if (res.error) throw res.error;
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

let base: string;
let root: string;
let elsewhere: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'rmm-kept-fixup-'));
  root = join(base, 'copy');
  elsewhere = join(base, 'elsewhere');
  mkdirSync(root);
  mkdirSync(elsewhere);
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function put(path: string, text: string, mode?: number): string {
  const full = join(root, path);
  mkdirSync(join(full, '..'), { recursive: true });
  writeFileSync(full, text);
  if (mode !== undefined) chmodSync(full, mode);
  return full;
}

describe('the scripts as text', () => {
  // A NUL byte cannot travel in an argv (nor in an SSH exec request): the shell must get the two
  // characters backslash-zero and let printf turn them into the separator.
  it('hold no NUL byte', () => {
    expect(KEPT_FIXUP_SCRIPT.includes('\0')).toBe(false);
    expect(PRESENT_SCRIPT.includes('\0')).toBe(false);
  });
});

describe('KEPT_FIXUP_SCRIPT', () => {
  it('replaces the file with stdin and keeps its mode', () => {
    const f = put('etc/network/interfaces', 'auto eth0\n', 0o640);
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/network/interfaces', ''], 'auto ens3\n');
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(f, 'utf8')).toBe('auto ens3\n');
    expect(statSync(f).mode & 0o7777).toBe(0o640);
    expect(readdirSync(join(root, 'etc/network'))).toEqual(['interfaces']);
  });

  it('replaces by rename: a hard link to the old file (a link-dest point) keeps the old text', () => {
    const f = put('etc/hostname', 'origin\n', 0o644);
    const other = join(base, 'last-point-hostname');
    linkSync(f, other);
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/hostname', ''], 'replica\n');
    expect(res.code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('replica\n');
    expect(readFileSync(other, 'utf8')).toBe('origin\n');
    expect(statSync(f).ino).not.toBe(statSync(other).ino);
  });

  it('writes an empty text', () => {
    const f = put('etc/motd', 'hello\n');
    expect(run(KEPT_FIXUP_SCRIPT, [root, '/etc/motd', ''], '').code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('');
  });

  it('with a new name: writes the text at the new name and removes the old path', () => {
    const oldF = put('etc/sysconfig/network-scripts/ifcfg-eth0', 'DEVICE=eth0\n', 0o600);
    const newF = put('etc/sysconfig/network-scripts/ifcfg-ens3', 'DEVICE=ens3\nIPADDR=10.0.0.1\n', 0o640);
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/sysconfig/network-scripts/ifcfg-eth0', '/etc/sysconfig/network-scripts/ifcfg-ens3'], 'DEVICE=ens3\nIPADDR=10.0.0.2\n');
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(newF, 'utf8')).toBe('DEVICE=ens3\nIPADDR=10.0.0.2\n');
    expect(statSync(newF).mode & 0o7777).toBe(0o640);
    expect(existsSync(oldF)).toBe(false);
    expect(readdirSync(join(root, 'etc/sysconfig/network-scripts'))).toEqual(['ifcfg-ens3']);
  });

  it('with a new name: succeeds when the old path is already gone', () => {
    const newF = put('etc/sysconfig/network-scripts/ifcfg-ens3', 'old\n');
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/sysconfig/network-scripts/ifcfg-eth0', '/etc/sysconfig/network-scripts/ifcfg-ens3'], 'new\n');
    expect(res.code).toBe(0);
    expect(readFileSync(newF, 'utf8')).toBe('new\n');
  });

  it('with a new name: refuses when the file at the new name is missing, and leaves the old path', () => {
    const oldF = put('etc/sysconfig/network-scripts/ifcfg-eth0', 'DEVICE=eth0\n');
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/sysconfig/network-scripts/ifcfg-eth0', '/etc/sysconfig/network-scripts/ifcfg-ens3'], 'new\n');
    expect(res.code).toBe(3);
    expect(readFileSync(oldF, 'utf8')).toBe('DEVICE=eth0\n');
    expect(existsSync(join(root, 'etc/sysconfig/network-scripts/ifcfg-ens3'))).toBe(false);
  });

  it('refuses a missing file and a folder at the path', () => {
    expect(run(KEPT_FIXUP_SCRIPT, [root, '/etc/hostname', ''], 'x\n').code).toBe(3);
    mkdirSync(join(root, 'etc/hostname'), { recursive: true });
    expect(run(KEPT_FIXUP_SCRIPT, [root, '/etc/hostname', ''], 'x\n').code).toBe(3);
    expect(lstatSync(join(root, 'etc/hostname')).isDirectory()).toBe(true);
  });

  it('refuses a symlink at the path and leaves its target outside the root untouched', () => {
    const target = join(elsewhere, 'hosts');
    writeFileSync(target, 'outside\n');
    chmodSync(target, 0o644);
    mkdirSync(join(root, 'etc'));
    symlinkSync(target, join(root, 'etc/hosts'));
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/hosts', ''], 'inside\n');
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/not a regular file/);
    expect(readFileSync(target, 'utf8')).toBe('outside\n');
    expect(statSync(target).mode & 0o7777).toBe(0o644);
    expect(lstatSync(join(root, 'etc/hosts')).isSymbolicLink()).toBe(true);
    expect(readdirSync(join(root, 'etc'))).toEqual(['hosts']);
  });

  it('refuses a folder reached through a symlink and writes nothing there', () => {
    mkdirSync(join(elsewhere, 'network'));
    const target = join(elsewhere, 'network/interfaces');
    writeFileSync(target, 'outside\n');
    symlinkSync(elsewhere, join(root, 'etc'));
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/network/interfaces', ''], 'inside\n');
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('outside\n');
    expect(readdirSync(join(elsewhere, 'network'))).toEqual(['interfaces']);
  });

  it('refuses a new name in a folder reached through a symlink', () => {
    mkdirSync(join(elsewhere, 'network'));
    const target = join(elsewhere, 'network/ifcfg-ens3');
    writeFileSync(target, 'outside\n');
    const oldF = put('etc/ifcfg-eth0', 'inside\n');
    symlinkSync(join(elsewhere, 'network'), join(root, 'etc/network'));
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/ifcfg-eth0', '/etc/network/ifcfg-ens3'], 'new\n');
    expect(res.code).toBe(3);
    expect(readFileSync(target, 'utf8')).toBe('outside\n');
    expect(readFileSync(oldF, 'utf8')).toBe('inside\n');
  });

  it('with a new name: does not remove an old path reached through a symlinked folder', () => {
    const newF = put('etc/ifcfg-ens3', 'old\n');
    mkdirSync(join(elsewhere, 'scripts'));
    const outside = join(elsewhere, 'scripts/ifcfg-eth0');
    writeFileSync(outside, 'outside\n');
    symlinkSync(join(elsewhere, 'scripts'), join(root, 'etc/scripts'));
    const res = run(KEPT_FIXUP_SCRIPT, [root, '/etc/scripts/ifcfg-eth0', '/etc/ifcfg-ens3'], 'new\n');
    expect(res.code).toBe(0);
    expect(readFileSync(newF, 'utf8')).toBe('new\n');
    expect(readFileSync(outside, 'utf8')).toBe('outside\n');
  });

  it('works with a root given with a trailing slash', () => {
    const f = put('etc/hostname', 'origin\n');
    expect(run(KEPT_FIXUP_SCRIPT, [`${root}/`, '/etc/hostname', ''], 'replica\n').code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('replica\n');
  });
});

describe('PRESENT_SCRIPT', () => {
  function present(paths: string[]): string[] {
    const res = run(PRESENT_SCRIPT, [root, ...paths]);
    expect(res.code).toBe(0);
    expect(res.stdout === '' || res.stdout.endsWith('\0')).toBe(true);
    return res.stdout.split('\0').slice(0, -1);
  }

  it('lists the regular files only: not missing ones, links, folders, or files under a symlinked folder', () => {
    put('etc/hostname', 'a\n');
    put('etc/with space', 'b\n');
    mkdirSync(join(root, 'etc/adir'));
    writeFileSync(join(elsewhere, 'hosts'), 'outside\n');
    symlinkSync(join(elsewhere, 'hosts'), join(root, 'etc/hosts'));
    symlinkSync('hostname', join(root, 'etc/relative-link'));
    mkdirSync(join(elsewhere, 'network'));
    writeFileSync(join(elsewhere, 'network/interfaces'), 'outside\n');
    symlinkSync(join(elsewhere, 'network'), join(root, 'etc/network'));
    expect(
      present(['/etc/hostname', '/etc/missing', '/etc/hosts', '/etc/relative-link', '/etc/adir', '/etc/network/interfaces', '/etc/with space', '/nowhere/x']),
    ).toEqual(['/etc/hostname', '/etc/with space']);
  });

  it('lists nothing when the top folder is a symlink out of the root', () => {
    mkdirSync(join(elsewhere, 'network'));
    writeFileSync(join(elsewhere, 'network/interfaces'), 'outside\n');
    symlinkSync(elsewhere, join(root, 'etc'));
    expect(present(['/etc/network/interfaces'])).toEqual([]);
  });

  it('prints nothing for no paths', () => {
    expect(present([])).toEqual([]);
  });
});
