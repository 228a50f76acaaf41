// Apache 2.4 mod_dav_fs on 127.0.0.1 with its own configuration in the scratch folder: HTTP or
// HTTPS (self-signed certificate) with Basic auth from an htpasswd file made by openssl.
// What the harness relies on: docs/test-servers.md S1, S3.
import { chmod, chown, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openWebdavBackend, type WebdavBackendOptions } from '../../../src/relay/backends/webdav/webdav-backend.js';
import { reportSkip, run, serverHarness, type ServerEnv, type ServerProcess } from './harness.js';

/** Executables the apache harness needs. */
export const APACHE_BINARIES = ['apache2', 'openssl'] as const;

/** A running WebDAV server and how to log in (shared by the apache and rclone harnesses). */
export interface DavServer {
  readonly scheme: 'http' | 'https';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The self-signed certificate (HTTPS only), usable as a CA file. */
  readonly certFile?: string;
  /** The folder served at the URL root, on this machine. */
  readonly root: string;
  /** The server's main process (for crash tests). */
  readonly process: ServerProcess;
}

const MODULES = ['mpm_event', 'authz_core', 'authn_core', 'authn_file', 'auth_basic', 'authz_user', 'dav', 'dav_fs', 'dav_lock', 'mime', 'ssl', 'socache_shmcb'];

/**
 * Starts `apache2 -DFOREGROUND`; the harness stops it with SIGTERM. Starting it again in the same
 * env with the same `port` serves the same folder (a restart).
 */
export async function startApache(env: ServerEnv, tls: boolean, port?: number): Promise<DavServer> {
  const user = 'escale';
  const password = 'dav-secret-2718';
  const root = process.getuid?.() === 0;
  const dav = join(env.dir, 'dav');
  const runDir = join(env.dir, 'run');
  await mkdir(dav, { recursive: true });
  await mkdir(runDir, { recursive: true });
  await chmod(env.dir, 0o755); // why: mkdtemp makes it 0700, and the workers run as www-data
  if (root) {
    // why: as root apache's workers switch to www-data, which must own the DAV and lock folders.
    const ids = await accountIds('www-data');
    await chown(dav, ids.uid, ids.gid);
    await chown(runDir, ids.uid, ids.gid);
  }
  const hash = (await run(env.binaries.openssl ?? 'openssl', ['passwd', '-apr1', password])).trim();
  const htpasswd = await env.writeFile('htpasswd', `${user}:${hash}\n`);
  await chmod(htpasswd, 0o644);
  const listen = port ?? (await env.freePort());
  const cert = tls ? await env.certificate() : undefined;
  const lines = [
    `ServerRoot "${env.dir}"`,
    'ServerName localhost',
    `Listen 127.0.0.1:${listen}`,
    `PidFile ${join(runDir, 'httpd.pid')}`,
    ...MODULES.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`),
    ...(root ? ['User www-data', 'Group www-data'] : []),
    `ErrorLog ${join(env.dir, 'error.log')}`,
    'LogLevel warn',
    'TypesConfig /etc/mime.types',
    `DAVLockDB ${join(runDir, 'DAVLock')}`,
    `Mutex file:${runDir}`,
    `DocumentRoot ${dav}`,
    `<Directory ${dav}>`,
    '  Dav On',
    '  AuthType Basic',
    '  AuthName "dav"',
    `  AuthUserFile ${htpasswd}`,
    '  Require valid-user',
    '  Options None',
    '  AllowOverride None',
    '</Directory>',
    ...(cert
      ? [
          'SSLEngine on',
          `SSLCertificateFile ${cert.certFile}`,
          `SSLCertificateKeyFile ${cert.keyFile}`,
          `SSLSessionCache shmcb:${join(runDir, 'ssl_scache')}(512000)`,
        ]
      : []),
  ];
  const config = await env.writeFile('httpd.conf', `${lines.join('\n')}\n`);
  const scheme = tls ? 'https' : 'http';
  const proc = env.spawn('apache2', ['-f', config, '-DFOREGROUND']);
  await env.waitForHttp(`${scheme}://127.0.0.1:${listen}/`, { process: proc });
  return { scheme, port: listen, user, password, root: dav, process: proc, ...(cert ? { certFile: cert.certFile } : {}) };
}

/** Backend options for a started WebDAV server (TLS verification off unless `overrides` turn it on). */
export function davOptions(server: DavServer, overrides: Partial<WebdavBackendOptions> = {}): WebdavBackendOptions {
  return {
    scheme: server.scheme,
    host: '127.0.0.1',
    port: server.port,
    directory: 'relay/folder',
    user: server.user,
    password: server.password,
    verifySsl: false,
    ...overrides,
  };
}

/**
 * Runs `body` against a fresh WebDAV server started by `start` (for checks outside the suite);
 * skips loudly when the server is missing (fails under CI=true) and always stops it.
 */
export async function withDavServer(
  t: TestContext,
  binaries: readonly string[],
  start: (env: ServerEnv) => Promise<DavServer>,
  body: (server: DavServer) => Promise<void>,
): Promise<void> {
  let server: DavServer | undefined;
  const harness = serverHarness('webdav', {
    binaries,
    async start(env) {
      server = await start(env);
      return openWebdavBackend(davOptions(server));
    },
  });
  const started = await harness.start();
  if ('skip' in started) {
    reportSkip(`webdav ${t.name}`, started.skip);
    t.skip(started.skip);
    return;
  }
  try {
    await body(server as DavServer);
  } finally {
    await started.stop();
  }
}

async function accountIds(name: string): Promise<{ uid: number; gid: number }> {
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`no ${name} account in /etc/passwd`);
  return { uid: Number(uid), gid: Number(gid) };
}
