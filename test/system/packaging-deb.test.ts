import { execFile } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const run = (command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) =>
  execFileAsync(command, args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...options.env } });
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
/** The package's version: the top entry of its Debian changelog, package.json's plus a Debian revision. */
const DEB_VERSION = /^preemptd \(([^)]+)\)/.exec(readFileSync('packaging/deb/changelog', 'utf8'))![1]!;

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(join(dir, command)));
}

const HAS_DPKG = onPath('dpkg-deb') && onPath('dpkg');
const HAS_SYSTEMD_ANALYZE = onPath('systemd-analyze');
const HAS_LINTIAN = onPath('lintian');
const describeWithDpkg = HAS_DPKG ? describe : describe.skip;
if (!HAS_DPKG) console.warn('dpkg-deb / dpkg not installed: skipping the .deb build and install tests');
else if (!HAS_LINTIAN) console.warn('lintian not installed (apt-get install lintian): skipping the lintian check of the .deb');

describeWithDpkg('the .deb (packaging/deb/build.sh)', () => {
  let out: string;
  let deb: string;
  let root: string;

  beforeAll(async () => {
    if (!existsSync('dist/bundle/preemptd.mjs')) throw new Error('dist/bundle is missing: build first (npm run build; npm test does)');
    out = mkdtempSync(join(tmpdir(), 'preemptd-deb-'));
    // gzip to keep the test quick (lintian refuses an uncompressed one); `npm run package:deb` uses xz.
    const { stdout } = await run('sh', ['packaging/deb/build.sh'], { env: { PREEMPTD_DEB_OUT: out, PREEMPTD_DEB_COMPRESSION: 'gzip' } });
    deb = stdout.trim().split('\n').at(-1)!;
    root = join(out, 'root');
    // An empty dpkg database is all dpkg --root needs.
    mkdirSync(join(root, 'var/lib/dpkg/updates'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    writeFileSync(join(root, 'var/lib/dpkg/available'), '');
  }, 300_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  /**
   * dpkg --root normally chroots into the root for the maintainer scripts; the scratch root
   * has no shell, so they run outside it with DPKG_ROOT set, which postinst, prerm and
   * postrm honour. The scratch root has none of the dependencies (systemd, libc6).
   */
  const dpkg = (...args: string[]) => run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', ...args]);

  test('is named for the version and says what it is and needs', async () => {
    expect(DEB_VERSION).toMatch(new RegExp(`^${VERSION.replaceAll('.', '\\.')}-\\d+$`));
    expect(deb).toBe(join(out, `preemptd_${DEB_VERSION}_amd64.deb`));
    const field = async (name: string) => (await run('dpkg-deb', ['--field', deb, name])).stdout.trim();
    expect(await field('Package')).toBe('preemptd');
    expect(await field('Version')).toBe(DEB_VERSION);
    expect(await field('Architecture')).toBe('amd64');
    expect(await field('Depends')).toMatch(/^systemd \(>= \d+\), init-system-helpers \(>= [\d.~]+\), libc6/);
    const { stdout: info } = await run('dpkg-deb', ['--info', deb]);
    for (const script of ['postinst', 'prerm', 'postrm', 'conffiles']) expect(info).toContain(script);
    const { stdout: conffiles } = await run('dpkg-deb', ['--info', deb, 'conffiles']);
    expect(conffiles.trim()).toBe('/etc/preemptd/config.yaml');
  });

  test('carries the bundled agent, its own Node.js, the unit, the config and the Debian docs, owned by root', async () => {
    const { stdout } = await run('dpkg-deb', ['--contents', deb]);
    const entries = stdout.trim().split('\n');
    const paths = entries.map((line) => line.split(/\s+/)[5]!);
    for (const path of [
      './opt/preemptd/bin/node',
      './opt/preemptd/bin/preemptd',
      './opt/preemptd/lib/preemptd.mjs',
      './opt/preemptd/lib/read-worker.mjs',
      './opt/preemptd/node_modules/systemd-notify/notify.js',
      './opt/preemptd/node_modules/@node-rs/crc32/index.js',
      './usr/lib/systemd/system/preemptd.service',
      './usr/lib/sysusers.d/preemptd.conf',
      './etc/preemptd/config.yaml',
      './var/lib/preemptd/',
      './usr/share/doc/preemptd/copyright',
      './usr/share/preemptd/preemptd.schema.json',
      './usr/share/bash-completion/completions/preemptd',
      './usr/share/zsh/vendor-completions/_preemptd',
      './usr/share/man/man1/preemptd.1.gz',
      './usr/share/doc/preemptd/changelog.Debian.gz',
      './usr/share/lintian/overrides/preemptd',
    ]) {
      expect(paths).toContain(path);
    }
    expect(entries.find((line) => line.endsWith('./usr/bin/preemptd -> /opt/preemptd/bin/preemptd'))).toBeDefined();
    expect(entries.every((line) => line.split(/\s+/)[1] === 'root/root')).toBe(true);
  });

  test('ships no dependency tree: only the two external packages, one native add-on, no dotfiles, tests, HTML or sources', async () => {
    const { stdout } = await run('dpkg-deb', ['--contents', deb]);
    const paths = stdout.trim().split('\n').map((line) => line.split(/\s+/)[5]!);
    const packages = new Set(paths.flatMap((path) => /^\.\/opt\/preemptd\/node_modules\/(@[^/]+\/[^/]+|[^@/][^/]*)\//.exec(path)?.[1] ?? []));
    expect([...packages].sort()).toEqual(['@node-rs/crc32', '@node-rs/crc32-linux-x64-gnu', 'systemd-notify']);
    expect(paths.filter((path) => /\.node$/.test(path))).toEqual(['./opt/preemptd/node_modules/@node-rs/crc32-linux-x64-gnu/crc32.linux-x64-gnu.node']);
    expect(paths.filter((path) => /\/\.[^/]+\/?$|\.html?$|\.ts$|\/tests?\/|msal-browser/.test(path))).toEqual([]);
  });

  test('its maintainer scripts handle the unit through deb-systemd-helper and deb-systemd-invoke, as dh_installsystemd writes them', async () => {
    const script = async (name: string) => (await run('dpkg-deb', ['--info', deb, name])).stdout;
    const [postinst, prerm, postrm] = await Promise.all(['postinst', 'prerm', 'postrm'].map(script));
    for (const text of [postinst!, prerm!, postrm!]) {
      // lintian's own test (maintainer-script-calls-systemctl): a command line running systemctl.
      expect(text.split('\n').filter((line) => /^(?:.+;)?\s*systemctl\b/.test(line) && !line.includes('daemon-reload'))).toEqual([]);
    }
    expect(postinst).toMatch(/deb-systemd-helper enable preemptd\.service/);
    expect(postinst).toMatch(/deb-systemd-invoke try-restart preemptd\.service/);
    expect(prerm).toMatch(/deb-systemd-invoke stop preemptd\.service/);
    expect(postrm).toMatch(/deb-systemd-helper purge preemptd\.service/);
  });

  (HAS_LINTIAN ? test : test.skip)('lintian finds no error or warning that packaging/deb/lintian-overrides does not explain', async () => {
    // lintian exits non-zero on errors; its findings are on stdout either way. Overridden ones are not printed.
    const { stdout } = await run('lintian', ['--no-tag-display-limit', deb]).catch((error: { stdout: string }) => error);
    const findings = stdout.split('\n').filter((line) => /^[EW]: /.test(line));
    expect(findings).toEqual([]);
  }, 300_000);

  describe('installed into a scratch root with dpkg --root', () => {
    beforeAll(async () => {
      await dpkg('-i', deb);
    }, 120_000);

    test('dpkg records it as installed and its files land under the root', async () => {
      const { stdout } = await run('dpkg-query', [`--root=${root}`, '--show', '--showformat=${Status} ${Version}', 'preemptd']);
      expect(stdout).toBe(`install ok installed ${DEB_VERSION}`);
      for (const path of ['opt/preemptd/bin/node', 'opt/preemptd/lib/preemptd.mjs', 'usr/lib/systemd/system/preemptd.service', 'etc/preemptd/config.yaml']) {
        expect(existsSync(join(root, path))).toBe(true);
      }
      expect(statSync(join(root, 'var/lib/preemptd')).isDirectory()).toBe(true);
      expect(readlinkSync(join(root, 'usr/bin/preemptd'))).toBe('/opt/preemptd/bin/preemptd');
    });

    test('the packaged Node.js 24 runs the packaged agent', async () => {
      const node = join(root, 'opt/preemptd/bin/node');
      expect((await run(node, ['--version'])).stdout.trim()).toMatch(/^v24\./);
      expect((await run(node, [join(root, 'opt/preemptd/lib/preemptd.mjs'), '--version'])).stdout.trim()).toBe(VERSION);
    });

    test('postinst creates the preemptd user, keeps the config from other users and enables the unit without starting it', () => {
      const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
      const user = passwd.split('\n').find((line) => line.startsWith('preemptd:'))!.split(':');
      expect(user[5]).toBe('/var/lib/preemptd');
      expect(user[6]).toBe('/usr/sbin/nologin');
      const gid = Number(readFileSync(join(root, 'etc/group'), 'utf8').split('\n').find((line) => line.startsWith('preemptd:'))!.split(':')[2]);
      const config = statSync(join(root, 'etc/preemptd/config.yaml'));
      expect(config.mode & 0o777).toBe(0o640);
      expect(config.gid).toBe(gid);
      const wanted = join(root, 'etc/systemd/system/multi-user.target.wants/preemptd.service');
      expect(lstatSync(wanted).isSymbolicLink()).toBe(true);
      expect(readlinkSync(wanted)).toBe('/usr/lib/systemd/system/preemptd.service');
    });

    (HAS_SYSTEMD_ANALYZE ? test : test.skip)('systemd-analyze verify accepts the installed unit', async () => {
      // The scratch root has no systemd of its own, nor procps: lend it the host's unit files
      // (targets) and the /bin/kill of ExecReload, which verify checks is executable.
      cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, force: false, errorOnExist: false });
      cpSync('/bin/kill', join(root, 'bin/kill'));
      const result = await run('systemd-analyze', ['verify', `--root=${root}`, 'preemptd.service']).then(
        ({ stderr }) => ({ code: 0, stderr }),
        (error: { code: number; stderr: string }) => error,
      );
      expect(result).toEqual({ code: 0, stderr: '' });
    });

    test('purging removes the files, the state dir and the unit\'s enablement, and keeps nothing of the config', async () => {
      await dpkg('--purge', 'preemptd');
      expect(existsSync(join(root, 'opt/preemptd/bin/node'))).toBe(false);
      expect(existsSync(join(root, 'var/lib/preemptd'))).toBe(false);
      expect(existsSync(join(root, 'etc/preemptd/config.yaml'))).toBe(false);
      expect(existsSync(join(root, 'etc/systemd/system/multi-user.target.wants/preemptd.service'))).toBe(false);
    }, 60_000);
  });
});
