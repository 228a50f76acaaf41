// Shared helpers of the end-to-end tests through real relay servers (proftpd, Apache mod_dav,
// rclone serve webdav, OpenSSH sshd, rclone serve sftp, s3rver, rclone remotes): a server that can
// be killed and restarted where it was, and a workspace whose configuration points alice and bob at it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { APACHE_BINARIES, startApache, type DavServer } from '../conformance/servers/apache.js';
import { killTree, openServerEnv, reportSkip, type ServerEnv, type ServerProcess } from '../conformance/servers/harness.js';
import { PROFTPD_BINARIES, startProftpd } from '../conformance/servers/proftpd.js';
import { RCLONE_SFTP_BINARIES, startRcloneSftp } from '../conformance/servers/rclone-sftp.js';
import { RCLONE_BINARIES, startRcloneWebdav } from '../conformance/servers/rclone-webdav.js';
import { s3rverMissing, startS3rver } from '../conformance/servers/s3rver.js';
import { SSHD_BINARIES, startSshd, type SshdServer } from '../conformance/servers/sshd.js';
import { allPaths, bigFile, configText, put, runEscale, tree, workspace, type FileState, type RunResult } from './harness.js';

/** What a running relay server gives the tests. */
export interface RunningServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly certFile?: string;
  /** Folder on this machine that the relay address's root maps to (FTP login folder, DAV root). */
  readonly root: string;
  /** The server process; undefined when there is none (an rclone remote on a local folder). */
  readonly process?: ServerProcess;
  /** Relay keys the server itself dictates (host key, client key, rclone config file). */
  readonly keys?: Record<string, string | number>;
}

/** One kind of relay server and how escale's configuration addresses it. */
export interface ServerKind {
  readonly name: string;
  readonly binaries: readonly string[];
  /** A further skip reason (a missing npm server), or undefined. */
  readonly precondition?: () => string | undefined;
  /**
   * The relay path a stored file of the server stands for, or undefined for the server's own
   * bookkeeping files (s3rver); identity when absent.
   */
  readonly relayPath?: (stored: string) => string | undefined;
  /** Starts the server in `env`, on `port` when given (a restart). */
  start(env: ServerEnv, port?: number): Promise<RunningServer>;
  /** Relay keys of a client section for relay folder `directory` (credentials included). */
  relayKeys(server: RunningServer, directory: string, secretFile: string): Record<string, string | number>;
}

const dav = (server: DavServer): RunningServer => server;

/** proftpd over plain FTP: `protocol = ftp`, `host address`, `port`, `relay directory`, literal password. */
export const PROFTPD_FTP: ServerKind = {
  name: 'proftpd ftp',
  binaries: PROFTPD_BINARIES,
  async start(env, port) {
    const s = await startProftpd(env, { tls: false, ...(port === undefined ? {} : { port }) });
    return { ...s, root: s.home };
  },
  relayKeys: (s, directory) => ({ protocol: 'ftp', 'host address': '127.0.0.1', port: s.port, 'relay directory': directory, user: s.user, password: s.password }),
};

/** proftpd over explicit TLS: `protocol = ftps`, the self-signed certificate as `ca file`, password from a `secret file`. */
export const PROFTPD_FTPS: ServerKind = {
  name: 'proftpd ftps',
  binaries: PROFTPD_BINARIES,
  async start(env, port) {
    const s = await startProftpd(env, { tls: true, ...(port === undefined ? {} : { port }) });
    return { ...s, root: s.home };
  },
  relayKeys: (s, directory, secretFile) => ({
    protocol: 'ftps', 'host address': '127.0.0.1', port: s.port, 'relay directory': directory, user: s.user, 'secret file': secretFile, 'ca file': s.certFile ?? '',
  }),
};

/** Apache mod_dav over HTTP, addressed as one URL `http://127.0.0.1:PORT/DIR` (no protocol key). */
export const APACHE_HTTP: ServerKind = {
  name: 'apache mod_dav http',
  binaries: APACHE_BINARIES,
  start: async (env, port) => dav(await startApache(env, false, port)),
  relayKeys: (s, directory) => ({ 'host address': `http://127.0.0.1:${s.port}/${directory}`, user: s.user, password: s.password }),
};

/** Apache mod_dav over HTTPS: `protocol = https` with `verify ssl = no`. */
export const APACHE_HTTPS: ServerKind = {
  name: 'apache mod_dav https',
  binaries: APACHE_BINARIES,
  start: async (env, port) => dav(await startApache(env, true, port)),
  relayKeys: (s, directory) => ({ protocol: 'https', 'host address': '127.0.0.1', port: s.port, 'relay directory': directory, user: s.user, password: s.password, 'verify ssl': 'no' }),
};

/** rclone serve webdav over HTTPS: `protocol = webdav`, `host address = 127.0.0.1:PORT`, `ca file`, `secret file`. */
export const RCLONE_WEBDAV: ServerKind = {
  name: 'rclone serve webdav',
  binaries: RCLONE_BINARIES,
  start: async (env, port) => dav(await startRcloneWebdav(env, true, port)),
  relayKeys: (s, directory, secretFile) => ({
    protocol: 'webdav', 'host address': `127.0.0.1:${s.port}`, 'relay directory': directory, user: s.user, 'secret file': secretFile, 'ca file': s.certFile ?? '',
  }),
};

/** rclone serve webdav over plain HTTP (`protocol = http`), for the crash test. */
export const RCLONE_HTTP: ServerKind = {
  name: 'rclone serve webdav http',
  binaries: RCLONE_BINARIES,
  start: async (env, port) => dav(await startRcloneWebdav(env, false, port)),
  relayKeys: (s, directory) => ({ protocol: 'http', 'host address': '127.0.0.1', port: s.port, 'relay directory': directory, user: s.user, password: s.password }),
};

/** Refuses a restart on a given port: these servers pick a new port and host key at each start. */
function noRestart(name: string, port: number | undefined): void {
  if (port !== undefined) throw new Error(`${name}: restarting on the same port is not supported`);
}

const sshd = (s: SshdServer, keys: Record<string, string | number>): RunningServer =>
  ({ port: s.port, user: s.user, password: s.password ?? '', root: s.home, process: s.process, keys });

/**
 * OpenSSH sshd through native SFTP: `protocol = sftp`, `host address = 127.0.0.1`, `port`, a client
 * key (`keyfile`), the host trusted by `host key = SHA256:...` from the harness.
 */
export const SSHD_SFTP: ServerKind = {
  name: 'openssh sftp',
  binaries: SSHD_BINARIES,
  async start(env, port) {
    noRestart(this.name, port);
    const s = await startSshd(env);
    return sshd(s, { keyfile: s.keyFile, 'host key': s.fingerprint });
  },
  relayKeys: (s, directory) => ({ protocol: 'sftp', 'host address': '127.0.0.1', port: s.port, 'relay directory': directory, user: s.user, ...s.keys }),
};

/** `rclone serve sftp` through native SFTP: `host address = 127.0.0.1:PORT`, password from a `secret file`, a `known hosts` file. */
export const RCLONE_SERVE_SFTP: ServerKind = {
  name: 'rclone serve sftp',
  binaries: RCLONE_SFTP_BINARIES,
  async start(env, port) {
    noRestart(this.name, port);
    const s = await startRcloneSftp(env);
    return { port: s.port, user: s.user, password: s.password, root: s.root, process: s.process, keys: { 'known hosts': s.knownHosts } };
  },
  relayKeys: (s, directory, secretFile) => ({
    protocol: 'sftp', 'host address': `127.0.0.1:${s.port}`, 'relay directory': directory, user: s.user, 'secret file': secretFile, ...s.keys,
  }),
};

const S3RVER_OBJECT = '._S3rver_object';

/**
 * s3rver through native S3 over HTTP: `protocol = s3`, `host address = 127.0.0.1:PORT`, `scheme = http`,
 * the bucket as the relay directory's first folder, `s3 quirks = s3rver`, its fixed keys as user/password.
 */
export const S3RVER_S3: ServerKind = {
  name: 's3rver s3',
  binaries: [],
  precondition: s3rverMissing,
  relayPath: (stored) => (stored.endsWith(S3RVER_OBJECT) && !stored.split('/').pop()?.startsWith(S3RVER_OBJECT) ? stored.slice(0, -S3RVER_OBJECT.length) : undefined),
  async start(env, port) {
    noRestart(this.name, port);
    const s = await startS3rver(env, { tls: false });
    return { port: Number(new URL(s.endpoint).port), user: s.accessKeyId, password: s.secretAccessKey, root: join(s.data, s.bucket), process: s.process, keys: { bucket: s.bucket } };
  },
  relayKeys: (s, directory) => ({
    protocol: 's3', 'host address': `127.0.0.1:${s.port}`, scheme: 'http', 'relay directory': `${s.keys?.bucket ?? ''}/${directory}`, user: s.user, password: s.password, 's3 quirks': 's3rver',
  }),
};

/** The rclone remote name of the local-folder remote that RCLONE_LOCAL writes into its own rclone config file. */
export const RCLONE_LOCAL_REMOTE = 'escalelocal';

/** rclone with a named remote (an alias of a local folder) from an rclone config file: `protocol = rclone`, `rclone config = FILE`. */
export const RCLONE_LOCAL: ServerKind = {
  name: 'rclone local remote',
  binaries: ['rclone'],
  async start(env, port) {
    noRestart(this.name, port);
    const root = join(env.dir, 'folder');
    await mkdir(root);
    const config = await env.writeFile('rclone.conf', `[${RCLONE_LOCAL_REMOTE}]\ntype = alias\nremote = ${root}\n`);
    // why: the relay keys repeat the relay directory under the remote, so the address is the bare remote name.
    return { port: 0, user: '', password: '', root, keys: { 'rclone config': config } };
  },
  relayKeys: (s, directory) => ({ protocol: 'rclone', 'host address': RCLONE_LOCAL_REMOTE, 'relay directory': directory, ...s.keys }),
};

/**
 * rclone with a remote of type sftp built from the section's keys (`rclone type = sftp`) on OpenSSH
 * sshd: `protocol = rclone`, `host address = 127.0.0.1`, `port`, key login, a `known hosts` file.
 */
export const RCLONE_SFTP_SSHD: ServerKind = {
  name: 'rclone sftp remote',
  binaries: ['rclone', ...SSHD_BINARIES],
  async start(env, port) {
    noRestart(this.name, port);
    const s = await startSshd(env);
    return sshd(s, { keyfile: s.keyFile, 'known hosts': s.knownHosts, 'rclone type': 'sftp' });
  },
  relayKeys: (s, directory) => ({ protocol: 'rclone', 'host address': '127.0.0.1', port: s.port, 'relay directory': directory, user: s.user, ...s.keys }),
};

/** A started server that can be killed like a crash and started again on the same port and folder. */
export interface ServerHandle {
  readonly kind: ServerKind;
  current(): RunningServer;
  /** SIGKILL to the server and its workers. */
  kill(): Promise<void>;
  /** Starts it again on the same port, serving the same folder. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a server of `kind`; undefined (after a loud skip, or a failure under CI=true) when it is not installed. */
export async function startServer(t: TestContext, kind: ServerKind): Promise<ServerHandle | undefined> {
  const opened = await openServerEnv(`e2e ${kind.name}`, { binaries: kind.binaries, ...(kind.precondition === undefined ? {} : { precondition: kind.precondition }) });
  if ('skip' in opened) {
    reportSkip(`e2e ${kind.name}`, opened.skip);
    t.skip(opened.skip);
    return undefined;
  }
  let server: RunningServer;
  try {
    server = await kind.start(opened.env);
  } catch (error) {
    await opened.stop();
    throw error;
  }
  return {
    kind,
    current: () => server,
    async kill() {
      if (server.process === undefined) throw new Error(`${kind.name} has no server process to kill`);
      await killTree(server.process);
    },
    async restart() {
      server = await kind.start(opened.env, server.port);
    },
    stop: () => opened.stop(),
  };
}

/** A workspace with alice and bob configured on one relay folder of a server. */
export interface RelayWorkspace {
  readonly dir: string;
  readonly config: string;
  /** The relay folder on this machine (inside the server's served folder). */
  readonly relayDir: string;
  folder(name: string): string;
  /** One `escale --once` round of a section; asserts exit 0 unless `allowFailure`. */
  once(section: string, options?: { allowFailure?: boolean }): Promise<RunResult>;
  cleanup(): Promise<void>;
}

/** Writes a configuration for alice and bob (shared mode) on relay folder `directory` of `server`. */
export async function relayWorkspace(handle: ServerHandle, directory: string, extra: Record<string, string | number> = {}): Promise<RelayWorkspace> {
  const ws = await workspace('escale-e2e-relay-');
  const server = handle.current();
  const secretFile = join(ws.dir, 'relay.secret');
  await writeFile(secretFile, `${server.password}\n`);
  await chmod(secretFile, 0o600);
  const sections: Record<string, Record<string, string | number>> = {};
  for (const name of ['alice', 'bob']) {
    await mkdir(join(ws.dir, name));
    sections[name] = { 'client name': name, 'local path': join(ws.dir, name), mode: 'shared', ...handle.kind.relayKeys(server, directory, secretFile), ...extra };
  }
  const config = join(ws.dir, 'escale.conf');
  await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), refresh: 2 }, sections));
  return {
    dir: ws.dir,
    config,
    relayDir: join(server.root, directory),
    folder: (name) => join(ws.dir, name),
    async once(section, options = {}) {
      const result = await runEscale(['--once', '-c', config, '--section', section], { timeoutMs: 60_000 });
      if (!options.allowFailure) assert.equal(result.code, 0, `escale --once [${section}] failed:\n${result.stderr}`);
      return result;
    },
    cleanup: ws.cleanup,
  };
}

/** What `escale --check --json` must show for both clients; `host` defaults to 127.0.0.1, `password` to shown as ***. */
export interface ExpectedRelay {
  readonly protocol: string;
  readonly host?: string;
  /** Omitted when the relay has no port (an rclone remote name). */
  readonly port?: number;
  readonly directory: string;
  readonly index: boolean;
  /** Whether the section has a password (false for key logins and rclone remotes). */
  readonly password?: boolean;
}

/** Checks with `escale --check --json` that the configuration loads and resolves the relay as expected. */
export async function checkConfig(ws: RelayWorkspace, expected: ExpectedRelay): Promise<void> {
  const result = await runEscale(['--check', '--json', '-c', ws.config]);
  assert.equal(result.code, 0, `escale --check failed:\n${result.stderr}${result.stdout}`);
  const report = JSON.parse(result.stdout) as { clients: Array<{ protocol: string; host: string; port?: number; directory: string; password?: string; index: { enabled: boolean } }> };
  assert.equal(report.clients.length, 2);
  const { password = true, host = '127.0.0.1', ...rest } = expected;
  for (const client of report.clients) {
    const seen = { protocol: client.protocol, host: client.host, ...(client.port === undefined ? {} : { port: client.port }), directory: client.directory, index: client.index.enabled };
    assert.deepEqual(seen, { ...rest, host });
    assert.equal(client.password, password ? '***' : undefined);
  }
}

/** Runs rounds of the sections in turn until `done` holds (checked after every round); fails after `max` rounds. */
export async function roundsUntil(ws: RelayWorkspace, sections: string[], done: () => Promise<boolean>, max = 8): Promise<number> {
  for (let round = 1; round <= max; round += 1) {
    await ws.once(sections[(round - 1) % sections.length] as string);
    if (await done()) return round;
  }
  const state = await Promise.all(['alice', 'bob'].map(async (name) => `${name}: ${[...(await tree(ws.folder(name), { includeHidden: true }))].map(([p, f]) => `${p} (${f.size})`).join(', ')}`));
  assert.fail(`not converged after ${max} rounds of ${sections.join(', ')}\n${state.join('\n')}\nrelay: ${(await allPaths(ws.relayDir)).join(', ')}`);
}

/** Whether two folders hold the same files (bytes and integer-second mtimes). */
export async function sameTrees(a: string, b: string): Promise<boolean> {
  return JSON.stringify([...(await tree(a))].sort()) === JSON.stringify([...(await tree(b))].sort());
}

/** Asserts that two folders hold the same files, with a readable difference. */
export async function assertSameTrees(a: string, b: string, label: string): Promise<Map<string, FileState>> {
  const left = await tree(a);
  const right = await tree(b);
  assert.deepEqual([...right.keys()].sort(), [...left.keys()].sort(), `${label}: file lists differ`);
  for (const [path, state] of left) assert.deepEqual(right.get(path), state, `${label}: '${path}' differs`);
  return left;
}

/**
 * Relay paths (relative to the relay folder) that are escale locks or upload temporaries. Apache's
 * own `.davfs.tmp*` body files of a PUT cut by its crash are the server's, left out on purpose.
 * With `kind`, stored files are first mapped to relay paths (s3rver keeps `KEY._S3rver_object`).
 */
export async function leftovers(relayDir: string, kind?: ServerKind): Promise<string[]> {
  const paths = (await allPaths(relayDir)).flatMap((p) => {
    const mapped = kind?.relayPath === undefined ? p : kind.relayPath(p);
    return mapped === undefined ? [] : [mapped];
  });
  return paths.filter((p) => {
    const base = p.split('/').pop() ?? '';
    return base.endsWith('.lock') || base.startsWith('.escale-put-');
  });
}

/** Random test files, written as a stream. */
export { bigFile };

/**
 * The common scenario of the relay-server end-to-end tests: alice's nested, unicode, empty and
 * 3 MiB files reach bob, then bob's edit and new file reach alice; identical trees, and no lock or
 * temporary left on the relay.
 */
export async function syncBothWays(handle: ServerHandle, directory: string, extra: Record<string, string | number>, t: TestContext, expected: Omit<ExpectedRelay, 'index'>): Promise<void> {
  const ws = await relayWorkspace(handle, directory, extra);
  try {
    await checkConfig(ws, { ...expected, index: extra.index !== undefined });
    const alice = ws.folder('alice');
    const bob = ws.folder('bob');
    await put(alice, 'top.txt', 'alice top\n', 1_700_000_000);
    await put(alice, 'deep/er/nested/file.bin', randomBytes(300_000), 1_700_000_100);
    await put(alice, 'unicode/\u00e9t\u00e9 \u2603.txt', 'snow\n', 1_700_000_200);
    await put(alice, 'empty.txt', '', 1_700_000_300);
    await bigFile(join(alice, 'big/three.bin'), 3);
    await put(bob, 'from-bob/notes.md', '# bob\n', 1_700_000_400);

    const started = Date.now();
    const there = await roundsUntil(ws, ['alice', 'bob'], () => sameTrees(alice, bob));
    const files = await assertSameTrees(alice, bob, 'after alice → bob');
    assert.equal(files.size, 6);
    assert.equal(files.get('top.txt')?.mtimeSec, 1_700_000_000);

    // and back: bob edits one of alice's files and adds one; alice receives both.
    await put(bob, 'top.txt', 'bob rewrote the top\n', 1_700_001_000);
    await put(bob, 'from-bob/second.txt', 'second\n', 1_700_001_100);
    const back = await roundsUntil(ws, ['bob', 'alice'], () => sameTrees(alice, bob));
    await assertSameTrees(alice, bob, 'after bob → alice');
    assert.equal(await readFile(join(alice, 'top.txt'), 'utf8'), 'bob rewrote the top\n');
    assert.deepEqual(await leftovers(ws.relayDir, handle.kind), [], 'no lock and no temporary left on the relay');
    t.diagnostic(`${handle.kind.name} ${extra.index === undefined ? 'placeholder' : 'index'}: ${there} rounds there, ${back} back, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await ws.cleanup();
  }
}
