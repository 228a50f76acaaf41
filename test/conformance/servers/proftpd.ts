// proftpd 1.3.8 on 127.0.0.1 with its own configuration in the scratch folder: one virtual user
// from an AuthUserFile (no system account), plain FTP or explicit TLS (TLSRequired) with a
// self-signed certificate. See docs/test-servers.md S2.
import { chmod, chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openFtpBackend, type FtpBackendOptions } from '../../../src/relay/backends/ftp/ftp-backend.js';
import { reportSkip, run, serverHarness, type ServerEnv, type ServerProcess } from './harness.js';

/** Executables the proftpd harness needs. */
export const PROFTPD_BINARIES = ['proftpd', 'openssl'] as const;

/** A running proftpd and how to log in. */
export interface ProftpdServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Home folder of the virtual user (the FTP login folder). */
  readonly home: string;
  /** The self-signed certificate (TLS only), usable as a CA file. */
  readonly certFile?: string;
  /** The proftpd master process (for crash tests). */
  readonly process: ServerProcess;
}

/** How to configure the test server. */
export interface ProftpdSettings {
  /** Explicit TLS, required on control and data connections. */
  readonly tls: boolean;
  /** Seconds after which proftpd drops an idle session (default 600). */
  readonly idleTimeoutS?: number;
  /** Listen on this port (to restart a server where it was); default: a free port. */
  readonly port?: number;
}

/**
 * Starts proftpd in the foreground (`-n`); the harness stops it with SIGTERM. Starting it again in
 * the same env with the same `port` serves the same home folder (a restart).
 */
export async function startProftpd(env: ServerEnv, settings: ProftpdSettings): Promise<ProftpdServer> {
  const tls = settings.tls;
  const user = 'escale';
  const password = 'ftp-secret-3141';
  const root = process.getuid?.() === 0;
  // why: as root proftpd switches to the virtual user's uid; 65534 is nobody/nogroup on Debian.
  const uid = root ? 65534 : (process.getuid?.() ?? 65534);
  const gid = root ? 65534 : (process.getgid?.() ?? 65534);
  const home = join(env.dir, 'home');
  await mkdir(home, { recursive: true });
  await chmod(env.dir, 0o755); // why: mkdtemp makes it 0700, and the session runs as `uid`
  if (root) await chown(home, uid, gid);
  const hash = (await run(env.binaries.openssl ?? 'openssl', ['passwd', '-6', password])).trim();
  const passwd = await env.writeFile('ftpd.passwd', `${user}:${hash}:${uid}:${gid}::${home}:/bin/false\n`);
  await chmod(passwd, 0o600);
  const port = settings.port ?? (await env.freePort());
  // why: ftp and ftps suites may run at once, and every data connection leaves its port in
  // TIME_WAIT for a minute: a wide random range, below Linux's ephemeral ports (32768 and up,
  // taken by outgoing sockets), keeps proftpd from answering 425 (address in use).
  const passive = 10000 + Math.floor(Math.random() * 22) * 1000;
  const cert = tls ? await env.certificate() : undefined;
  const lines = [
    'ServerName "escale-test"',
    'ServerType standalone',
    'DefaultAddress 127.0.0.1',
    'SocketBindTight on',
    'UseIPv6 off',
    `Port ${port}`,
    `PassivePorts ${passive} ${passive + 999}`,
    ...(root ? ['User nobody', 'Group nogroup'] : []),
    'Umask 022',
    'MaxInstances 40',
    `PidFile ${join(env.dir, 'proftpd.pid')}`,
    `ScoreboardFile ${join(env.dir, 'proftpd.scoreboard')}`,
    'DelayTable none',
    'WtmpLog off',
    'UseReverseDNS off',
    `SystemLog ${join(env.dir, 'proftpd.log')}`,
    'AuthOrder mod_auth_file.c',
    `AuthUserFile ${passwd}`,
    'RequireValidShell off',
    'DefaultRoot ~',
    // why: proftpd hides dot files from LIST unless told; escale's records are dot files (MLSD shows them).
    'ListOptions "-a"',
    'AllowOverwrite on',
    `TimeoutIdle ${settings.idleTimeoutS ?? 600}`,
    '<Limit SITE_CHMOD>',
    '  DenyAll',
    '</Limit>',
    ...(cert
      ? [
          '<IfModule !mod_tls.c>',
          '  LoadModule mod_tls.c',
          '</IfModule>',
          'TLSEngine on',
          'TLSRequired on',
          `TLSLog ${join(env.dir, 'tls.log')}`,
          'TLSProtocol TLSv1.2 TLSv1.3',
          `TLSRSACertificateFile ${cert.certFile}`,
          `TLSRSACertificateKeyFile ${cert.keyFile}`,
          'TLSVerifyClient off',
        ]
      : []),
  ];
  const config = await env.writeFile('proftpd.conf', `${lines.join('\n')}\n`);
  const proc = env.spawn('proftpd', ['-n', '-q', '-c', config]);
  await env.waitForPort(port, { process: proc });
  return { port, user, password, home, process: proc, ...(cert ? { certFile: cert.certFile } : {}) };
}

/** Backend options for a started server (TLS verification off unless `overrides` turn it on). */
export function proftpdOptions(server: ProftpdServer, overrides: Partial<FtpBackendOptions> = {}): FtpBackendOptions {
  return {
    protocol: server.certFile ? 'ftps' : 'ftp',
    host: '127.0.0.1',
    port: server.port,
    directory: 'relay',
    user: server.user,
    password: server.password,
    verifySsl: false,
    ...overrides,
  };
}

/**
 * Runs `body` against a fresh proftpd (for checks outside the conformance suite); skips the test
 * loudly when proftpd is missing (fails under CI=true) and always stops the server.
 */
export async function withProftpd(t: TestContext, settings: ProftpdSettings, body: (server: ProftpdServer) => Promise<void>): Promise<void> {
  let server: ProftpdServer | undefined;
  const harness = serverHarness('proftpd', {
    binaries: PROFTPD_BINARIES,
    async start(env) {
      server = await startProftpd(env, settings);
      return openFtpBackend(proftpdOptions(server));
    },
  });
  const started = await harness.start();
  if ('skip' in started) {
    reportSkip(`proftpd ${t.name}`, started.skip);
    t.skip(started.skip);
    return;
  }
  try {
    await body(server as ProftpdServer);
  } finally {
    await started.stop();
  }
}
