// OpenSSH sshd on 127.0.0.1 with its own configuration, host key and authorized keys in the
// scratch folder. As root the harness creates the system user `escale-sftp` itself (useradd,
// chpasswd) so that password logins can be tested; as another user it logs in as that user
// with keys only. internal-sftp starts in the scratch home (`-d`), so the account's home does not
// matter. See docs/test-servers.md S5.
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { openSftpBackend, type SftpBackendOptions } from '../../../src/relay/backends/sftp/sftp-backend.js';
import { reportSkip, run, serverHarness, type ServerEnv, type ServerProcess } from './harness.js';

const execFileAsync = promisify(execFile);

/** Executables the sshd harness needs (sshd must be started by its absolute path). */
export const SSHD_BINARIES = ['/usr/sbin/sshd', 'ssh-keygen'] as const;

/** The test account made as root; its password is fixed so that parallel suites agree. */
export const SSHD_TEST_USER = 'escale-sftp';
const SSHD_TEST_PASSWORD = 'sftp-Secret-2718';

/** A running sshd and how to log in. */
export interface SshdServer {
  readonly port: number;
  readonly user: string;
  /** Undefined when not running as root (no password login possible then). */
  readonly password?: string;
  /** Unencrypted ed25519 client key. */
  readonly keyFile: string;
  /** ed25519 client key encrypted with `keyPassphrase`. */
  readonly encryptedKeyFile: string;
  readonly keyPassphrase: string;
  /** A known_hosts file that trusts this server (`[127.0.0.1]:port`). */
  readonly knownHosts: string;
  /** The host key's `SHA256:` fingerprint. */
  readonly fingerprint: string;
  /** Folder SFTP sessions start in (the relay directory '' points here). */
  readonly home: string;
  /** The server's host public key line (`ssh-ed25519 AAAA...`). */
  readonly hostPublicKey: string;
  /** An unrelated host key's public line, for mismatch tests. */
  readonly otherPublicKey: string;
  /** The sshd listener process. */
  readonly process: ServerProcess;
}

async function ensureUser(): Promise<void> {
  const exists = async (): Promise<boolean> => execFileAsync('id', ['-u', SSHD_TEST_USER]).then(() => true, () => false);
  if (!(await exists())) {
    try {
      await execFileAsync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', SSHD_TEST_USER]);
    } catch (error) {
      // why: the sftp and rclone suites may create the account at the same moment.
      if (!(await exists())) throw error;
    }
  }
  await new Promise<void>((resolve, reject) => {
    const child = execFile('chpasswd', (error) => (error ? reject(error) : resolve()));
    child.stdin?.on('error', () => undefined); // why: EPIPE when chpasswd fails early; its exit status reports it
    child.stdin?.end(`${SSHD_TEST_USER}:${SSHD_TEST_PASSWORD}\n`);
  });
}

/** Starts sshd in the foreground (`-D -e`); the harness stops it with SIGTERM. */
export async function startSshd(env: ServerEnv): Promise<SshdServer> {
  const asRoot = process.getuid?.() === 0;
  const keygen = env.binaries['ssh-keygen'] ?? 'ssh-keygen';
  const user = asRoot ? SSHD_TEST_USER : userInfo().username;
  if (asRoot) {
    await ensureUser();
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  }
  const key = (name: string, passphrase = ''): Promise<string> => run(keygen, ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', join(env.dir, name)]);
  const keyPassphrase = 'key-Passphrase-1618';
  await Promise.all([key('host_ed25519'), key('other_host_ed25519'), key('client_ed25519'), key('client_encrypted', keyPassphrase)]);
  const authorized = await env.writeFile('authorized_keys',
    (await readFile(join(env.dir, 'client_ed25519.pub'), 'utf8')) + (await readFile(join(env.dir, 'client_encrypted.pub'), 'utf8')));
  const home = join(env.dir, 'home');
  await mkdir(home);
  await chmod(env.dir, 0o755); // why: mkdtemp makes it 0700, and the session runs as the test user
  if (asRoot) {
    const uid = Number((await execFileAsync('id', ['-u', user])).stdout.trim());
    const gid = Number((await execFileAsync('id', ['-g', user])).stdout.trim());
    await chown(home, uid, gid);
  }
  const port = await env.freePort();
  const config = await env.writeFile('sshd_config', [
    'ListenAddress 127.0.0.1',
    `Port ${port}`,
    `HostKey ${join(env.dir, 'host_ed25519')}`,
    `PidFile ${join(env.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorized}`,
    // why: the keys sit below the world-writable /tmp, which StrictModes refuses.
    'StrictModes no',
    'PubkeyAuthentication yes',
    `PasswordAuthentication ${asRoot ? 'yes' : 'no'}`,
    'KbdInteractiveAuthentication no',
    `UsePAM ${asRoot ? 'yes' : 'no'}`,
    'PermitRootLogin no',
    `AllowUsers ${user}`,
    'AllowTcpForwarding no',
    'X11Forwarding no',
    'MaxStartups 50',
    `Subsystem sftp internal-sftp -d ${home}`,
    `ForceCommand internal-sftp -d ${home}`,
    'LogLevel INFO',
    '',
  ].join('\n'));
  const sshd = env.binaries['/usr/sbin/sshd'] ?? '/usr/sbin/sshd';
  await run(sshd, ['-t', '-f', config]);
  const proc = env.spawn(sshd, ['-D', '-e', '-f', config], { name: 'sshd' });
  await env.waitForPort(port, { process: proc });
  const hostPublicKey = (await readFile(join(env.dir, 'host_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const otherPublicKey = (await readFile(join(env.dir, 'other_host_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const knownHosts = await env.writeFile('known_hosts', `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const fingerprint = (await run(keygen, ['-l', '-E', 'sha256', '-f', join(env.dir, 'host_ed25519.pub')])).split(' ')[1] ?? '';
  return {
    port,
    user,
    ...(asRoot ? { password: SSHD_TEST_PASSWORD } : {}),
    keyFile: join(env.dir, 'client_ed25519'),
    encryptedKeyFile: join(env.dir, 'client_encrypted'),
    keyPassphrase,
    knownHosts,
    fingerprint,
    home,
    hostPublicKey,
    otherPublicKey,
    process: proc,
  };
}

/** Backend options for a started sshd: key login, host key checked against the test known_hosts. */
export function sshdOptions(server: SshdServer, overrides: Partial<SftpBackendOptions> = {}): SftpBackendOptions {
  return {
    host: '127.0.0.1',
    port: server.port,
    directory: 'relay',
    user: server.user,
    keyfile: server.keyFile,
    hostKey: { kind: 'known-hosts', file: server.knownHosts },
    ...overrides,
  };
}

/**
 * Runs `body` against a fresh sshd (for checks outside the conformance suite); skips the test
 * loudly when sshd is missing (fails under CI=true) and always stops the server.
 */
export async function withSshd(t: TestContext, body: (server: SshdServer) => Promise<void>): Promise<void> {
  let server: SshdServer | undefined;
  const harness = serverHarness('sshd', {
    binaries: SSHD_BINARIES,
    async start(env) {
      server = await startSshd(env);
      return openSftpBackend(sshdOptions(server));
    },
  });
  const started = await harness.start();
  if ('skip' in started) {
    reportSkip(`sshd ${t.name}`, started.skip);
    t.skip(started.skip);
    return;
  }
  try {
    await body(server as SshdServer);
  } finally {
    await started.stop();
  }
}
