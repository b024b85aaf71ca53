import yargs from 'yargs';
import { CONFIG_OPTIONS, camelCase, type ConfigFlags } from '../../src/commands/flags.js';
import { declareProgram } from '../../src/commands/program.js';
import { parsePlainRunLine } from '../../src/commands/run-line.js';

/** What yargs, given the program's declarations, hands `run`'s handler for `args` (the handler itself is not run). */
async function viaYargs(args: string[]): Promise<ConfigFlags> {
  let seen: ConfigFlags | undefined;
  const stop = new Error('stop before the handler');
  try {
    await declareProgram(yargs(args))
      .middleware((argv) => {
        seen = argv as unknown as ConfigFlags;
        throw stop;
      })
      .parseAsync();
  } catch (error) {
    if (error !== stop) throw error;
  }
  if (!seen) throw new Error(`yargs did not reach run's handler for ${args.join(' ')}`);
  return Object.fromEntries((Object.keys(CONFIG_OPTIONS).map(camelCase) as Array<keyof ConfigFlags>).flatMap((key) => (seen![key] === undefined ? [] : [[key, seen![key]]]))) as ConfigFlags;
}

describe('`run` in its plain forms, parsed without yargs', () => {
  const plain = [
    ['run'],
    ['run', '--config', '/etc/preemptd/config.yaml'],
    ['run', '-c', 'a.yaml', '--provider', 'aws', '--metadata-url', 'http://127.0.0.1:1', '--poll-interval', '2s', '--state-dir', '/var/lib/p', '--log-level', 'debug'],
    ['run', '--config=a=b.yaml', '--set', 'aws.allowImdsV1=true', '--set=server.enabled=false', '--provider=auto'],
  ];
  test.each(plain.map((args) => [args.join(' '), args] as const))('%s: read as yargs reads it', async (_line, args) => {
    const parsed = parsePlainRunLine(args);
    expect(parsed).toBeDefined();
    expect(parsed).toEqual(await viaYargs(args));
  });

  test('leaves every other line to yargs, which reports what is wrong as before', () => {
    const others = [
      [],
      ['check', '--config', 'a.yaml'],
      ['run', '--help'],
      ['run', '-h'],
      ['run', '--version'],
      ['run', '--bogus-flag', 'x'],
      ['run', '--stateDir', '/x'],
      ['run', '--config'],
      ['run', '--config', '--provider', 'aws'],
      ['run', '--config='],
      ['run', '--config', 'a.yaml', '--config', 'b.yaml'],
      ['run', '--provider', 'nimbus'],
      ['run', '--log-level=loud'],
      ['run', '--set', 'a=1', 'b=2'],
      ['run', 'extra'],
      ['run', '-x', 'a'],
      ['run', '--constructor', 'x'],
      ['run', '--', '--config', 'a.yaml'],
    ];
    for (const args of others) expect([args, parsePlainRunLine(args)]).toEqual([args, undefined]);
  });
});
