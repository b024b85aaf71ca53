import { reportFailure } from './fatal.js';
import { CONFIG_OPTIONS, camelCase, type ConfigFlags } from './flags.js';

type FlagName = keyof typeof CONFIG_OPTIONS;
type FlagSpec = (typeof CONFIG_OPTIONS)[FlagName];

const LONG = /^--([a-z][a-z-]*)(?:=(.*))?$/s;
const SHORT = /^-([a-z])$/;

function flagNamed(name: string): FlagSpec | undefined {
  return Object.hasOwn(CONFIG_OPTIONS, name) ? CONFIG_OPTIONS[name as FlagName] : undefined;
}

function aliasedBy(letter: string): FlagName | undefined {
  return (Object.entries(CONFIG_OPTIONS) as Array<[FlagName, FlagSpec]>).find(([, spec]) => 'alias' in spec && spec.alias === letter)?.[0];
}

/**
 * `preemptd run` with its flags in the plain forms (`--name value`, `--name=value`, `-c value`),
 * read from the same declarations yargs gets (CONFIG_OPTIONS). Undefined for any other line:
 * another command, --help or --version, a flag that is unknown, camel-cased, given twice or
 * without a value, a value outside the flag's choices or beginning with `-`, a positional
 * argument; yargs then parses it and reports what is wrong, as before.
 */
export function parsePlainRunLine(args: readonly string[]): ConfigFlags | undefined {
  if (args[0] !== 'run') return undefined;
  const flags: Record<string, string | string[]> = {};
  for (let index = 1; index < args.length; index += 1) {
    const long = LONG.exec(args[index]!);
    const name = long ? long[1]! : aliasedBy(SHORT.exec(args[index]!)?.[1] ?? '');
    const spec = name === undefined ? undefined : flagNamed(name);
    if (name === undefined || !spec) return undefined;
    let value = long?.[2];
    if (value === undefined) {
      index += 1;
      value = args[index];
    }
    if (!value || value.startsWith('-')) return undefined;
    if ('choices' in spec && !(spec.choices as readonly string[]).includes(value)) return undefined;
    const key = camelCase(name);
    if ('array' in spec) flags[key] = [...((flags[key] as string[] | undefined) ?? []), value];
    else if (key in flags) return undefined;
    else flags[key] = value;
  }
  return flags as ConfigFlags;
}

/**
 * Runs the agent for a plain `run` line without loading yargs and the declarations (about a tenth
 * of the time to READY=1: docs/benchmarks.md), a failure reported as runCommandLine reports it.
 * False, having done nothing, for any other line.
 */
export async function runPlainRunLine(args: readonly string[]): Promise<boolean> {
  const flags = parsePlainRunLine(args);
  if (!flags) return false;
  try {
    await (await import('./run.js')).runCommand(flags);
  } catch (error) {
    await reportFailure('run', error);
  }
  return true;
}
