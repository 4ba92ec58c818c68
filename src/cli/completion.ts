import { GLOBAL_OPTIONS, type Command } from './command.js';

/** Options whose value is a path: the shell completes file names there. */
const PATH_OPTIONS = new Set(['file', 'plan', 'out', 'root', 'identity', 'known-hosts']);

/**
 * A bash completion script for rmm, made from the commands' own option tables (so it cannot
 * drift from them): commands, each command's options, file names after the options that take a
 * path, `text`/`json` after -o. zsh runs it through bashcompinit.
 */
export function bashCompletion(commands: readonly Command[]): string {
  const flags = (options: Command['options']): string[] =>
    Object.entries({ ...GLOBAL_OPTIONS, ...options } as Command['options']).flatMap(([long, o]) => [`--${long}`, ...(o.short ? [`-${o.short}`] : [])]);
  const valued = (test: (long: string) => boolean): string[] => {
    const all = Object.assign({}, GLOBAL_OPTIONS, ...commands.map((c) => c.options)) as Command['options'];
    return Object.entries(all).flatMap(([long, o]) => (o.type === 'string' && test(long) ? [`--${long}`, ...(o.short ? [`-${o.short}`] : [])] : []));
  };
  const others = valued((long) => !PATH_OPTIONS.has(long) && long !== 'output');
  return [
    '# rmm completion for bash (zsh: through bashcompinit). Load it with: source <(rmm completion bash)',
    '_rmm() {',
    '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=',
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    COMPREPLY=($(compgen -W '${[...commands.map((c) => c.name), '--help', '--version'].join(' ')}' -- "$cur"))`,
    '    return',
    '  fi',
    '  case $prev in',
    `    ${valued((long) => PATH_OPTIONS.has(long)).join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`,
    `    -o|--output) COMPREPLY=($(compgen -W 'text json' -- "$cur")); return ;;`,
    ...(others.length > 0 ? [`    ${others.join('|')}) COMPREPLY=(); return ;;`] : []),
    '  esac',
    '  case ${COMP_WORDS[1]} in',
    // The completion command's word is the shell.
    ...commands.map((c) => `    ${c.name}) words='${c.name === 'completion' ? 'bash zsh' : flags(c.options).join(' ')}' ;;`),
    '  esac',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    'complete -o default -F _rmm rmm',
    '',
  ].join('\n');
}

export function zshCompletion(commands: readonly Command[]): string {
  return ['# rmm completion for zsh. Load it with: source <(rmm completion zsh)', 'autoload -U +X bashcompinit && bashcompinit', bashCompletion(commands)].join('\n');
}
