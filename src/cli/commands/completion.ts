import { EXIT, type Command } from '../command.js';
import { bashCompletion, zshCompletion } from '../completion.js';
import { UsageError } from '../errors.js';

export const completionCommand: Command = {
  name: 'completion',
  summary: 'print a shell completion script (bash or zsh)',
  usage: 'rmm completion bash|zsh',
  details: ['Load it in the current shell with: source <(rmm completion bash)', 'or for every shell from ~/.bashrc (~/.zshrc for zsh).'].join('\n'),
  options: {},
  positionals: 1,
  async run(ctx) {
    const shell = ctx.positionals[0];
    if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`completion needs the shell: bash or zsh${shell === undefined ? '' : `, not '${shell}'`}`);
    // The command list imports this command: it is read when the script is made.
    const { commands } = await import('./index.js');
    ctx.stdout.write(shell === 'bash' ? bashCompletion(commands) : zshCompletion(commands));
    return EXIT.ok;
  },
};
