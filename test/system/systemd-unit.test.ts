import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const UNIT = 'systemd/preemptd.service';

/** The unit's settings: key → every value it is given (systemd allows repeats). */
function unitSettings(): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
  }
  return settings;
}

function setting(name: string): string | undefined {
  return unitSettings().get(name)?.join(' ');
}

const HAS_SYSTEMD_ANALYZE = existsSync('/usr/bin/systemd-analyze') || existsSync('/bin/systemd-analyze');
const withSystemdAnalyze = HAS_SYSTEMD_ANALYZE ? test : test.skip;
if (!HAS_SYSTEMD_ANALYZE) console.warn('systemd-analyze not installed: skipping the unit security score check');

describe('systemd/preemptd.service', () => {
  test('is a notify service whose readiness and watchdog come from systemd-notify children', () => {
    expect(setting('Type')).toBe('notify');
    expect(setting('NotifyAccess')).toBe('all');
    expect(setting('WatchdogSec')).toMatch(/^\d+s$/);
    expect(setting('Restart')).toBe('always');
    expect(setting('RestartPreventExitStatus')).toBe('78');
  });

  test('starts the agent from the .deb layout on its own Node.js', () => {
    const [node, script, ...args] = setting('ExecStart')!.split(' ');
    expect(node).toBe('/opt/preemptd/bin/node');
    expect(script).toBe('/opt/preemptd/lib/preemptd.mjs');
    expect(args).toEqual(['run', '--config', '/etc/preemptd/config.yaml']);
    // The .deb puts the bundle (dist/bundle) at /opt/preemptd/lib.
    expect(existsSync('dist/bundle/preemptd.mjs')).toBe(true);
  });

  test('gives plans time to finish on stop, SIGTERM to the agent alone, and holds back no workload at boot', () => {
    // A plan running at stop time is bounded by its notice deadline: AWS gives 2 minutes.
    expect(Number(/^(\d+)s$/.exec(setting('TimeoutStopSec')!)![1])).toBeGreaterThanOrEqual(120);
    expect(setting('KillMode')).toBe('mixed');
    // Before= would make the container runtime wait for READY=1 at boot; stop ordering is a
    // documented drop-in (docs/deploy.md) for those who need it.
    expect(setting('Before')).toBeUndefined();
    expect(readFileSync('docs/deploy.md', 'utf8')).toContain('Before=docker.service containerd.service');
    // READY=1 no longer waits for the first metadata answer (Azure: up to 2 minutes).
    expect(Number(/^(\d+)s$/.exec(setting('TimeoutStartSec')!)![1])).toBeLessThanOrEqual(30);
    expect(setting('After')!.split(' ')).toEqual(expect.arrayContaining(['network-online.target', 'dbus.service']));
  });

  test('runs as its own user with CAP_KILL as its only capability, in a read-only system', () => {
    expect(setting('User')).toBe('preemptd');
    expect(setting('CapabilityBoundingSet')).toBe('CAP_KILL');
    expect(setting('AmbientCapabilities')).toBe('CAP_KILL');
    expect(setting('NoNewPrivileges')).toBe('yes');
    expect(setting('ProtectSystem')).toBe('strict');
    expect(setting('StateDirectory')).toBe('preemptd');
    // The default noticeFile, /run/preemptd/notice.json, is writable under ProtectSystem=strict and readable by all.
    expect(setting('RuntimeDirectory')).toBe('preemptd');
    expect(setting('RuntimeDirectoryMode')).toBe('0755');
    expect(setting('PrivateTmp')).toBe('yes');
    expect(setting('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(unitSettings().get('SystemCallFilter')).toEqual(['@system-service', '~@privileged @resources']);
  });

  withSystemdAnalyze('systemd-analyze security --offline=yes rates its exposure 2.5 or lower ("OK")', async () => {
    const { stdout } = await execFileAsync('systemd-analyze', ['security', '--offline=yes', UNIT]);
    const match = /Overall exposure level for preemptd\.service: (\d+\.\d+) (\S+)/.exec(stdout);
    expect(match).not.toBeNull();
    expect(Number(match![1])).toBeLessThanOrEqual(2.5);
    expect(['OK', 'SAFE', 'PERFECT']).toContain(match![2]);
  });
});
