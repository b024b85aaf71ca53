import type { CliSpec, FlagSpec } from './cli-spec.js';

/** Text safe in roff: backslashes and hyphens escaped, `code` in bold, no line starting with a control character. */
function roff(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/`([^`]+)`/g, '\\fB$1\\fR')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

/** The NAME line's part after the dash: the first sentence, lower case first, no full stop. */
function summary(about: string): string {
  const sentence = about.split(/(?<=\.)\s/)[0]!.replace(/\.$/, '');
  return sentence.charAt(0).toLowerCase() + sentence.slice(1);
}

function flagItem(flag: FlagSpec): string {
  const names = [...flag.short.map((short) => `\\fB\\-${short}\\fR`), `\\fB\\-\\-${roff(flag.name)}\\fR`].join(', ');
  const value = flag.type === 'boolean' ? '' : ` \\fI${flag.choices.length > 0 ? roff(flag.choices.join('|')) : flag.type}\\fR`;
  const notes = [flag.required ? 'required' : '', flag.repeatable && !flag.describe.includes('repeatable') ? 'repeatable' : '', flag.default === undefined ? '' : `default: ${flag.default}`].filter(Boolean);
  const describe = notes.length > 0 ? `${flag.describe} (${notes.join('; ')})` : flag.describe;
  return `.TP\n${names}${value}\n${roff(describe)}`;
}

/**
 * The man page (section 1), in roff, from the command definitions: a synopsis, each command
 * with its flags, and the epilog of `--help`. No date, so it changes only with the CLI.
 */
export function manPage(spec: CliSpec): string {
  const name = roff(spec.name);
  const commands = spec.commands.map((command) => [`.SS "${name} ${roff(command.name)}"`, roff(command.describe), ...command.flags.map(flagItem)].join('\n'));
  return `.\\" ${spec.name}(1): generated from the command definitions (src/commands/program.ts) by npm run generate; do not edit
.TH ${name.toUpperCase()} 1 "" "${name}" "User Commands"
.SH NAME
${name} \\- ${roff(summary(spec.about))}
.SH SYNOPSIS
.B ${name}
.I command
.RI [ options ]
.SH DESCRIPTION
${roff(spec.about)}
.SH COMMANDS
${commands.join('\n')}
.SH OPTIONS
Every command takes these.
${spec.globalFlags.map(flagItem).join('\n')}
.SH NOTES
${roff(spec.epilog)}
`;
}
