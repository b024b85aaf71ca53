import type { CliSpec, CommandSpec, FlagSpec } from './cli-spec.js';

const HEADER = 'generated from the command definitions (src/commands/program.ts) by `npm run generate`; do not edit';

function spellings(flag: FlagSpec): string[] {
  return [`--${flag.name}`, ...flag.short.map((short) => `-${short}`)];
}

function words(flags: readonly FlagSpec[]): string {
  return flags.flatMap(spellings).join(' ');
}

/** `'text'` for sh and zsh: a single quote becomes `'\''`. */
function quoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * A static bash completion: commands, each command's flags, and the choices of a flag that
 * has them. A flag that takes some other value falls back to file names (`-o default`).
 * Runs nothing at TAB time.
 */
export function bashCompletion(spec: CliSpec): string {
  const commandNames = spec.commands.map((command) => command.name);
  const flagsOf = spec.commands.map((command) => `    ${command.name}) flags=${quoted(words([...command.flags, ...spec.globalFlags]))} ;;`);
  const choices = spec.commands.flatMap((command) =>
    command.flags.filter((flag) => flag.choices.length > 0).map((flag) => `    ${command.name}:${spellings(flag).join(`|${command.name}:`)}) values=${quoted(flag.choices.join(' '))} ;;`),
  );
  const takesValue = spec.commands.flatMap((command) => {
    const patterns = command.flags.filter((flag) => flag.type !== 'boolean' && flag.choices.length === 0).flatMap((flag) => spellings(flag).map((spelling) => `${command.name}:${spelling}`));
    return patterns.length > 0 ? [`    ${patterns.join('|')}) return ;;`] : [];
  });
  return `# bash completion for ${spec.name}: ${HEADER}
_${spec.name}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local command='' flags values i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      ${commandNames.join('|')}) command=\${COMP_WORDS[i]}; break ;;
    esac
  done
  COMPREPLY=()
  case $command:$prev in
${[...choices, ...takesValue].join('\n')}
  esac
  if [[ -n $values ]]; then
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
    return
  fi
  case $command in
    '') flags=${quoted(words(spec.globalFlags))}
      if [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W ${quoted(commandNames.join(' '))} -- "$cur"))
        return
      fi ;;
${flagsOf.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -o default -F _${spec.name} ${spec.name}
`;
}

/** The part of a zsh `_arguments` spec for one flag: exclusions, spellings, description, value. */
function zshFlag(flag: FlagSpec): string[] {
  const description = `[${flag.describe.replaceAll('\\', '\\\\').replaceAll(']', '\\]').replaceAll(':', '\\:')}]`;
  const value = flag.type === 'boolean' ? '' : flag.choices.length > 0 ? `:${flag.name}:(${flag.choices.join(' ')})` : `:${flag.name}:_files`;
  const repeat = flag.repeatable ? '*' : '';
  const all = spellings(flag);
  const exclusive = flag.name === 'help' || flag.name === 'version' ? '(- *)' : all.length > 1 ? `(${all.join(' ')})` : '';
  return all.map((spelling) => `${quoted(`${exclusive}${repeat}${spelling}${description}${value}`)}`);
}

function zshCommand(command: CommandSpec, globalFlags: readonly FlagSpec[]): string {
  const specs = [...command.flags, ...globalFlags].flatMap(zshFlag);
  return `        (${command.name}) _arguments \\\n          ${specs.join(' \\\n          ')} ;;`;
}

/** A zsh completion (`_preemptd`, for a directory on $fpath), from the same definitions. */
export function zshCompletion(spec: CliSpec): string {
  const commands = spec.commands.map((command) => `    ${quoted(`${command.name}:${command.describe}`)}`);
  return `#compdef ${spec.name}
# zsh completion for ${spec.name}: ${HEADER}
_${spec.name}() {
  local -a commands
  commands=(
${commands.join('\n')}
  )
  local curcontext=$curcontext state line
  _arguments -C \\
    ${spec.globalFlags.flatMap(zshFlag).join(' \\\n    ')} \\
    '1: :->command' \\
    '*:: :->args' && return
  case $state in
    (command) _describe -t commands ${quoted(`${spec.name} command`)} commands ;;
    (args)
      case $line[1] in
${spec.commands.map((command) => zshCommand(command, spec.globalFlags)).join('\n')}
      esac ;;
  esac
}
_${spec.name} "$@"
`;
}
