import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/examples.js';

const BASH_COMPLETION = join(ROOT, 'packaging/completion/preemptd.bash');
const ZSH_COMPLETION = join(ROOT, 'packaging/completion/_preemptd');
const MAN_PAGE = join(ROOT, 'packaging/man/preemptd.1');

function available(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** What bash offers at TAB after `line` (the last word is the one being completed). */
function complete(line: string): string[] {
  const words = line.split(' ');
  const script = `source "$1"; COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _preemptd; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['--norc', '--noprofile', '-c', script, 'bash', BASH_COMPLETION], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  return result.stdout.split('\n').filter(Boolean);
}

describe('bash completion', () => {
  test('completes a command from its first letters', () => {
    expect(complete('preemptd ch')).toEqual(['check']);
    expect(complete('preemptd sim')).toEqual(['simulate', 'simulator']);
  });

  test("offers run's flags, and only its", () => {
    const flags = complete('preemptd run --');
    expect(flags).toEqual(expect.arrayContaining(['--config', '--provider', '--metadata-url', '--poll-interval', '--state-dir', '--log-level', '--set', '--help']));
    expect(flags).not.toContain('--json');
    expect(complete('preemptd run --poll')).toEqual(['--poll-interval']);
  });

  test("offers a flag's choices, and no flags where a value goes", () => {
    expect(complete('preemptd check --provider a')).toEqual(['auto', 'aws', 'azure', 'alibaba']);
    expect(complete('preemptd simulate --config --')).toEqual([]);
  });
});

const zsh = available('zsh') ? test : test.skip;
zsh('the zsh completion parses (skipped without zsh)', () => {
  const result = spawnSync('zsh', ['-n', ZSH_COMPLETION], { encoding: 'utf8' });
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
});

const groff = available('groff') ? test : test.skip;
groff('the man page has no groff warnings (skipped without groff)', () => {
  const result = spawnSync('groff', ['-z', '-w', 'all', '-man', MAN_PAGE], { encoding: 'utf8' });
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
});

const man = available('man') ? test : test.skip;
man('man reads the page without warnings and shows every command (skipped without man)', () => {
  const result = spawnSync('man', ['--warnings', '-l', MAN_PAGE], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '100', MANPAGER: 'cat', PAGER: 'cat' } });
  expect(result.stderr).toBe('');
  for (const command of ['run', 'check', 'simulate', 'simulator', 'restore']) expect(result.stdout).toContain(`preemptd ${command}`);
});
