import type { Argv } from 'yargs';
import { declareProgram } from './program.js';

export interface FlagSpec {
  /** The long name, as typed after `--`. */
  name: string;
  /** One-letter aliases, as typed after `-`. */
  short: string[];
  type: 'string' | 'boolean' | 'number';
  /** Repeatable (`--set a=1 --set b=2`). */
  repeatable: boolean;
  required: boolean;
  choices: string[];
  describe: string;
  /** What the default is, in words, when there is one. */
  default?: string;
}

export interface CommandSpec {
  name: string;
  describe: string;
  flags: FlagSpec[];
}

/** The CLI as the completion scripts and the man page show it. */
export interface CliSpec {
  name: string;
  /** The text under the usage line of `--help`. */
  about: string;
  epilog: string;
  commands: CommandSpec[];
  /** Flags every command takes (help and version). */
  globalFlags: FlagSpec[];
}

interface YargsOption {
  alias?: string | string[];
  type?: 'string' | 'boolean' | 'number';
  array?: boolean;
  demandOption?: boolean | string;
  choices?: readonly string[];
  describe?: string;
  default?: unknown;
  defaultDescription?: string;
}

function flagSpec(name: string, option: YargsOption): FlagSpec {
  const fallback = option.defaultDescription ?? (option.default === undefined || option.default === false ? undefined : String(option.default));
  return {
    name,
    short: [option.alias ?? []].flat().filter((alias) => alias.length === 1),
    type: option.type ?? 'string',
    repeatable: option.array === true,
    required: Boolean(option.demandOption),
    choices: [...(option.choices ?? [])],
    describe: option.describe ?? '',
    ...(fallback === undefined ? {} : { default: fallback }),
  };
}

/**
 * Stands in for yargs while a declaration runs: records each call that declares something
 * (commands, options, aliases, texts) and ignores the rest, returning itself to keep a chain going.
 */
function recorder(calls: { method: string; args: unknown[] }[]): Argv {
  const proxy: Argv = new Proxy({} as Argv, {
    get: (_target, method) => (...args: unknown[]) => {
      calls.push({ method: String(method), args });
      return proxy;
    },
  });
  return proxy;
}

function flagsDeclared(builder: (argv: Argv) => unknown): FlagSpec[] {
  const calls: { method: string; args: unknown[] }[] = [];
  builder(recorder(calls));
  // `.option(name, spec)` declares one flag, `.options({ name: spec, ... })` several.
  const declared = calls.flatMap(({ method, args }) => (method === 'option' ? [[args[0], args[1]]] : method === 'options' ? Object.entries(args[0] as object) : [])) as Array<[string, YargsOption]>;
  return declared.map(([name, option]) => flagSpec(name, option));
}

/** The CLI of declareProgram, by running it against a recorder rather than yargs. */
export function cliSpec(): CliSpec {
  const calls: { method: string; args: unknown[] }[] = [];
  declareProgram(recorder(calls));
  const first = (method: string) => calls.find((call) => call.method === method)?.args;
  const shortOf = (name: string) => calls.filter((call) => call.method === 'alias' && call.args[1] === name).map((call) => call.args[0] as string);
  const globalFlags = [flagSpec('help', { type: 'boolean', alias: shortOf('help'), describe: 'Show help' })];
  if (first('version')) globalFlags.push(flagSpec('version', { type: 'boolean', alias: shortOf('version'), describe: 'Show version number' }));
  const usage = String(first('usage')?.[0] ?? '');
  return {
    name: String(first('scriptName')?.[0]),
    about: usage.split('\n\n').slice(1).join('\n\n'),
    epilog: String(first('epilog')?.[0] ?? ''),
    commands: calls
      .filter((call) => call.method === 'command')
      .map(({ args: [name, describe, builder] }) => ({
        // `snapshots <action> <prefix>`: the command is the first word; its describe names the rest.
        name: (name as string).split(' ')[0]!,
        describe: describe as string,
        flags: flagsDeclared(builder as (argv: Argv) => unknown),
      })),
    globalFlags,
  };
}
