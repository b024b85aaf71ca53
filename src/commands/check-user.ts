import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { CommandNotFound, PreemptdError } from '../lib/errors.js';
import { runCommand } from '../lib/run-command.js';

/** The unit the .deb installs; its `User=` is whom the agent runs as. */
const UNIT = 'preemptd.service';
/** The system user packaging/deb/preemptd.sysusers creates, when systemd cannot say. */
const PACKAGE_USER = 'preemptd';
const TOOL_TIMEOUT_MS = 5_000;
/** Bit 5 of the capability sets: CAP_KILL, which the unit grants (AmbientCapabilities=). */
const CAP_KILL = 1n << 5n;

interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** The passwd entry of `name` through NSS (`getent`), or undefined when there is none. */
async function account(name: string, signal: AbortSignal): Promise<Account | undefined> {
  const result = await runCommand('getent', ['passwd', name], { signal, timeoutMs: TOOL_TIMEOUT_MS });
  const [user, , uid, gid, , home] = result.stdout.trim().split(':');
  if (result.exitCode !== 0 || !user || uid === undefined || gid === undefined) return undefined;
  return { name: user, uid: Number(uid), gid: Number(gid), home: home || '/' };
}

/** `User=` of the installed unit as systemd has it (drop-ins included); undefined when unknown. */
async function unitUser(signal: AbortSignal): Promise<string | undefined> {
  try {
    const result = await runCommand('systemctl', ['show', '--property=User', '--value', UNIT], { signal, timeoutMs: TOOL_TIMEOUT_MS });
    return result.exitCode === 0 ? result.stdout.trim() || undefined : undefined;
  } catch (error) {
    if (error instanceof CommandNotFound) return undefined;
    throw error;
  }
}

/**
 * Whom `check` should check as: `--as-user`, else (as root) the unit's `User=`, else the
 * package's user when it exists. Undefined: check as this process is.
 */
async function serviceAccount(asUser: string | undefined, signal: AbortSignal): Promise<Account | undefined> {
  const me = userInfo().username;
  if (asUser === undefined) {
    if (process.getuid?.() !== 0) return undefined;
    const name = (await unitUser(signal)) ?? PACKAGE_USER;
    return name === me ? undefined : account(name, signal);
  }
  if (asUser === me) return undefined;
  if (process.getuid?.() !== 0) throw new PreemptdError('ERR_USAGE', `--as-user ${asUser}: checking as another user needs root (run it with sudo)`);
  const found = await account(asUser, signal);
  if (!found) throw new PreemptdError('ERR_USAGE', `--as-user ${asUser}: no such user (getent passwd ${asUser} finds none)`);
  return found;
}

/**
 * Runs this same `preemptd check` again as `user`, with the user's groups and CAP_KILL as the
 * unit gives them (setpriv, util-linux), and its home as HOME (credential files): every file,
 * pidfile and credential is then looked at with the service's own access. Resolves to the
 * exit code.
 */
function recheckAs(user: Account): Promise<number> {
  const setpriv = ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--inh-caps', '+kill', '--ambient-caps', '+kill', '--'];
  const node = [process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  const env = { ...process.env, HOME: user.home, USER: user.name, LOGNAME: user.name };
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [...setpriv, ...node], { stdio: 'inherit', env });
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new PreemptdError('ERR_COMMAND', `setpriv (util-linux) not found on PATH: it is needed to check as ${user.name}; or pass --as-user root`) : error),
    );
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

/**
 * When root and the service runs as another user, runs the check as that user instead and
 * resolves to its exit code; undefined when this process should check itself.
 */
export async function checkAsServiceUser(asUser: string | undefined): Promise<number | undefined> {
  const user = await serviceAccount(asUser, AbortSignal.timeout(2 * TOOL_TIMEOUT_MS));
  return user ? recheckAs(user) : undefined;
}

/** This process's /proc status (capabilities); empty where there is none. */
function procStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

/** Whom this process checks as: `preemptd (uid 998, gid 998, groups 998), with CAP_KILL`. */
export function describeCheckingUser(): string {
  const { username, uid, gid } = userInfo();
  const groups = process.getgroups?.() ?? [];
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(procStatus())?.[1];
  const capKill = uid !== 0 && effective !== undefined && (BigInt(`0x${effective}`) & CAP_KILL) !== 0n;
  const who = `${username} (uid ${uid}, gid ${gid}${groups.length > 0 ? `, groups ${groups.join(',')}` : ''})${capKill ? ', with CAP_KILL' : ''}`;
  if (uid !== 0) return who;
  return `${who}: files are checked with root's access; pass --as-user NAME to check as the service's user`;
}
