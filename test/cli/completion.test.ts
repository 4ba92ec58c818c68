import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { rmm } from '../support/cli.js';

/** What bash completes for the words typed (the last one being completed), with rmm's script loaded. */
function complete(script: string, ...words: string[]): string[] {
  const program = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _rmm; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', program], { cwd: 'examples' }).toString().split('\n').filter(Boolean);
}

describe('shell completion', () => {
  it('completes commands, their options, file names and output formats in bash', async () => {
    const { code, out } = await rmm('completion', 'bash');
    expect(code).toBe(0);
    expect(complete(out, 'rmm', 'pl')).toEqual(['plan']);
    expect(complete(out, 'rmm', 'apply', '--y')).toEqual(['--yes']);
    expect(complete(out, 'rmm', 'apply', '--trust')).toEqual(['--trust-new-host-keys']);
    expect(complete(out, 'rmm', 'plan', '-f', 'lab')).toEqual(['lab.yaml']);
    expect(complete(out, 'rmm', 'status', '-o', 'j')).toEqual(['json']);
    expect(complete(out, 'rmm', 'completion', 'z')).toEqual(['zsh']);
    // Every command is offered, and each offers --help.
    expect(complete(out, 'rmm', '')).toEqual(expect.arrayContaining(['validate', 'plan', 'apply', 'status', 'discover', 'unlock', 'repair', 'fixup', 'version', 'completion']));
    for (const command of ['validate', 'plan', 'apply', 'status', 'fixup']) expect(complete(out, 'rmm', command, '--he')).toEqual(['--help']);
  });

  it('gives zsh the same through bashcompinit, and refuses another shell', async () => {
    const zsh = await rmm('completion', 'zsh');
    expect(zsh.out).toContain('autoload -U +X bashcompinit && bashcompinit');
    expect(zsh.out).toContain((await rmm('completion', 'bash')).out);
    const fish = await rmm('completion', 'fish');
    expect(fish.code).toBe(2);
    expect(fish.err).toContain("completion needs the shell: bash or zsh, not 'fish'");
  });
});
