import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { PassThrough, Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from 'ssh2';
import { EscaleError, throwIfAborted } from '../../../core/errors.js';
import { dirnameRel, type RelayPath } from '../../../core/relpath.js';
import type { Logger } from '../../../core/log.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { RelayClock } from '../../relay-clock.js';
import { removeLeftoverTemps, type ListedName } from '../upload-temp.js';
import { SFTP_STATUS, fromSftpError, hasSftpStatus } from './sftp-error.js';
import { checkHostKey, preferredKeyTypes, type HostKeyPolicy } from './sftp-host-key.js';

/** Prefix of this backend's upload temporaries; never listed, removed when stale. */
export const SFTP_TEMP_PREFIX = '.escale-put-';
const TEMP_SUFFIX = '.tmp';
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** Whether a base name is one of this backend's upload temporaries. */
export function isSftpTemp(name: string): boolean {
  return name.startsWith(SFTP_TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
}

/** Options for `openSftpBackend`. */
export interface SftpBackendOptions {
  readonly host: string;
  /** Default 22. */
  readonly port?: number;
  /** Relay folder, relative to the login folder (a leading `/` is removed, configuration.md C5). */
  readonly directory: string;
  readonly user: string;
  readonly password?: string;
  /** Path of a private key file (OpenSSH or PEM format). */
  readonly keyfile?: string;
  /** Passphrase of an encrypted private key. */
  readonly keyPassphrase?: string;
  /** ssh-agent socket path (normally SSH_AUTH_SOCK). */
  readonly agent?: string;
  /** How the server's host key is checked; there is no "trust anything" mode. */
  readonly hostKey: HostKeyPolicy;
  /** Calls in flight on the one connection (default 8). */
  readonly maxConnections?: number;
  /** Connection timeout in milliseconds (default 20 s). */
  readonly timeoutMs?: number;
  /** Where removed upload temporaries are reported (default: nowhere). */
  readonly logger?: Logger;
}

interface Session {
  readonly client: Client;
  readonly sftp: SFTPWrapper;
}

/** Connects (checking the host key and logging in) and opens the SFTP relay; throws PermissionDenied, Unavailable, Config. */
export async function openSftpBackend(options: SftpBackendOptions): Promise<SftpBackend> {
  if (options.password === undefined && options.keyfile === undefined && options.agent === undefined) {
    throw new EscaleError('Config', `sftp relay ${options.host}: no password, key file or ssh-agent to log in with`, {
      key: 'password', hint: 'set password, keyfile, or start an ssh-agent (SSH_AUTH_SOCK)',
    });
  }
  let privateKey: Buffer | undefined;
  if (options.keyfile !== undefined) {
    try {
      privateKey = await readFile(options.keyfile);
    } catch (error) {
      throw new EscaleError('Config', `cannot read the SSH private key file '${options.keyfile}': ${(error as Error).message}`, { key: 'keyfile', cause: error });
    }
  }
  const backend = new SftpBackend(options, privateKey);
  await backend.connect();
  return backend;
}

/**
 * An SFTP server as relay, over ssh2. One SSH connection with one SFTP channel carries every call
 * (requests are pipelined) and is reopened when the server drops it. Puts write a hidden temporary
 * in the target folder and rename it into place: with posix-rename@openssh.com where the server
 * offers it (atomic replace); otherwise the target is deleted first, which leaves a window where a
 * crash loses the old version while the new one sits under the temporary name (hidden, and
 * cleaned when stale). Exclusive puts use hardlink@openssh.com (fails atomically when the target
 * exists) where offered, else a check before the rename (best effort).
 */
export class SftpBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock = new RelayClock();
  /** Whether the server offers posix-rename@openssh.com (atomic replace). */
  posixRename = false;
  /** Whether the server offers hardlink@openssh.com (atomic create-if-absent). */
  hardlink = false;
  /** Whether a hardlink of this connection was seen to create its target (see `linkInto`). */
  private hardlinkChecked = false;
  private session: Promise<Session> | undefined;
  private live: Session | undefined;
  private readonly root: string;
  private readonly port: number;
  private closed = false;

  /** Use `openSftpBackend`, which connects first. */
  constructor(
    private readonly options: SftpBackendOptions,
    private readonly privateKey: Buffer | undefined,
  ) {
    this.port = options.port ?? 22;
    this.root = options.directory.replace(/^\/+/, '').replace(/\/+$/, '');
    this.id = `sftp://${options.user}@${options.host}${this.port === 22 ? '' : `:${this.port}`}/${this.root}`;
    this.features = { maxConnections: options.maxConnections ?? 8, mtimePrecisionMs: 1000, renameOverwrites: true, recursiveList: false };
  }

  /** Opens the connection now (used by `openSftpBackend` so that login problems show at open). */
  async connect(): Promise<void> {
    const session = await this.sftp();
    const extensions = (session.sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    // why: ssh2 keeps the server's SFTP extensions in a private field; the ext_openssh_* calls check the same field.
    this.posixRename = 'posix-rename@openssh.com' in extensions;
    this.hardlink = 'hardlink@openssh.com' in extensions;
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    this.check(options);
    const { sftp } = await this.sftp();
    const pending: RelayPath[] = [dir];
    while (pending.length > 0) {
      const current = pending.pop() as RelayPath;
      throwIfAborted(options.signal);
      let items: Array<{ filename: string; attrs: Stats }>;
      try {
        items = await call<Array<{ filename: string; attrs: Stats }>>((cb) => sftp.readdir(this.abs(current), cb));
      } catch (error) {
        if (hasSftpStatus(error, SFTP_STATUS.NO_SUCH_FILE)) continue;
        // why: OpenSSH answers FAILURE (ENOTDIR) for a listing of a file path; the contract lists nothing.
        if (hasSftpStatus(error, SFTP_STATUS.FAILURE) && current === dir) return;
        throw fromSftpError(error, current);
      }
      const subdirs: RelayPath[] = [];
      const temps: ListedName[] = [];
      for (const { filename, attrs } of items.sort((a, b) => (a.filename < b.filename ? -1 : 1))) {
        throwIfAborted(options.signal);
        if (filename === '.' || filename === '..') continue;
        if (isSftpTemp(filename)) {
          temps.push({ name: filename, size: attrs.size, mtimeMs: attrs.mtime * 1000 });
          continue;
        }
        // why: ssh2 decodes names as UTF-8, so a name that is not UTF-8 arrives with U+FFFD and is refused.
        const path = listedPath(current, filename, options);
        if (path === undefined) continue;
        const entry = toEntry(path, attrs);
        if (entry === undefined) continue;
        if (entry.kind === 'dir') {
          if (options.recursive) subdirs.push(entry.path);
          else yield entry;
        } else yield entry;
      }
      // why: a put cut by a crash leaves its temporary; it goes once stale.
      await removeLeftoverTemps(temps, current, {
        backend: this,
        ...(this.options.logger === undefined ? {} : { logger: this.options.logger }),
        remove: (name) => this.delete((current === '' ? name : `${current}/${name}`) as RelayPath),
      });
      pending.push(...subdirs.reverse());
    }
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    this.check(options);
    if (path === '') return { path, kind: 'dir', size: 0 };
    const { sftp } = await this.sftp();
    let attrs: Stats;
    try {
      attrs = await call<Stats>((cb) => sftp.stat(this.abs(path), cb));
    } catch (error) {
      throw fromSftpError(error, path);
    }
    const entry = toEntry(path, attrs);
    if (entry === undefined) throw new EscaleError('NotFound', `'${path}' is neither a file nor a folder`, { path });
    return entry;
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    const entry = await this.stat(path, options);
    if (entry.kind !== 'file') throw new EscaleError('NotFound', `'${path}' is a folder, not a file`, { path });
    throwIfAborted(options.signal);
    const { sftp } = await this.sftp();
    const source = sftp.createReadStream(this.abs(path));
    // why: ssh2 closes the file handle after the last byte and reports a failed close (for example
    // when the connection ends meanwhile) as an 'error' event nobody listens to any more; the
    // PassThrough carries read errors to the caller, translated (a file deleted since the stat is
    // NotFound), and swallows those that come after the end.
    const out = new PassThrough();
    source.on('error', (error: unknown) => {
      if (!out.writableEnded) out.destroy(fromSftpError(error, path));
    });
    source.pipe(out);
    if (options.signal) addAbortSignal(options.signal, out);
    return out;
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    return this.clock.timed(() => this.write(path, body, options), this.features.mtimePrecisionMs);
  }

  /** The put itself: hidden temporary, close, rename into place, stat. */
  private async write(path: RelayPath, body: Readable | Uint8Array, options: PutOptions): Promise<Entry> {
    this.check(options);
    if (path === '') throw new EscaleError('InvalidName', 'cannot put the relay root');
    const { sftp } = await this.sftp();
    const parent = dirnameRel(path);
    const temp = `${this.abs(parent)}/${SFTP_TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`;
    let tempMade = false;
    try {
      if (options.exclusive && !this.hardlink && (await this.exists(sftp, path))) {
        throw new EscaleError('AlreadyExists', `'${path}' exists already`, { path });
      }
      await this.openTemp(sftp, temp, parent, options);
      tempMade = true;
      const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
      const sink = sftp.createWriteStream(temp, { flags: 'w' });
      const closed = once(sink, 'close').catch(() => undefined);
      try {
        await pipeline(source, sink, options.signal ? { signal: options.signal } : {});
      } catch (error) {
        sink.destroy();
        if (!(body instanceof Uint8Array)) body.destroy();
        throw error;
      }
      // why: rclone serve sftp commits a file only when its handle is closed; rename after that.
      await closed;
      throwIfAborted(options.signal);
      await this.moveIntoPlace(sftp, temp, path, options.exclusive === true);
      tempMade = false;
    } catch (error) {
      if (tempMade) await this.removeQuietly(sftp, temp);
      throw fromSftpError(error, path);
    }
    return this.stat(path);
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    const { sftp } = await this.sftp();
    try {
      await call((cb) => sftp.unlink(this.abs(path), cb));
    } catch (error) {
      // why: OpenSSH answers FAILURE (EISDIR/EPERM) for unlink of a folder; the contract says NotFound (no such file).
      if (hasSftpStatus(error, SFTP_STATUS.FAILURE) && (await this.stat(path).catch(() => undefined))?.kind === 'dir') {
        throw new EscaleError('NotFound', `'${path}' is a folder, not a file`, { path });
      }
      throw fromSftpError(error, path);
    }
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    const { sftp } = await this.sftp();
    const source = await this.stat(from, options);
    if (source.kind !== 'file') throw new EscaleError('NotFound', `'${from}' is not a file`, { path: from });
    throwIfAborted(options.signal);
    try {
      await this.mkdirs(sftp, dirnameRel(to));
      await this.moveIntoPlace(sftp, this.abs(from), to, false);
    } catch (error) {
      throw fromSftpError(error, from);
    }
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    const { sftp } = await this.sftp();
    await this.mkdirs(sftp, dir);
  }

  async close(): Promise<void> {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (session) {
      const { client } = await session.catch(() => ({ client: undefined }));
      client?.end();
    }
  }

  // -------------------------------------------------------------------------------------------

  private check(options: Op): void {
    if (this.closed) throw new EscaleError('Internal', 'the sftp backend is closed');
    throwIfAborted(options.signal);
  }

  private abs(path: RelayPath | ''): string {
    const parts = [this.root, path].filter((p) => p !== '');
    return parts.length === 0 ? '.' : parts.join('/');
  }

  private async exists(sftp: SFTPWrapper, path: RelayPath): Promise<boolean> {
    try {
      await call<Stats>((cb) => sftp.stat(this.abs(path), cb));
      return true;
    } catch (error) {
      if (hasSftpStatus(error, SFTP_STATUS.NO_SUCH_FILE)) return false;
      throw fromSftpError(error, path);
    }
  }

  /** Creates the temporary (empty) so that a missing parent folder shows before any byte is sent. */
  private async openTemp(sftp: SFTPWrapper, temp: string, parent: RelayPath, options: Op): Promise<void> {
    const create = async (): Promise<void> => {
      const handle = await call<Buffer>((cb) => sftp.open(temp, 'wx', cb));
      await call((cb) => sftp.close(handle, cb));
    };
    try {
      await create();
    } catch (error) {
      if (!hasSftpStatus(error, SFTP_STATUS.NO_SUCH_FILE)) throw error;
      throwIfAborted(options.signal);
      await this.mkdirs(sftp, parent);
      await create();
    }
  }

  /**
   * Links `fromAbs` to `to` with hardlink@openssh.com, which fails when `to` exists (AlreadyExists);
   * false when the server's hardlink does not work: the first link of a connection is checked,
   * since some servers offer the extension, answer OK and create nothing (rclone serve sftp 1.60).
   */
  private async linkInto(sftp: SFTPWrapper, fromAbs: string, to: RelayPath): Promise<boolean> {
    const target = this.abs(to);
    for (let attempt = 1; ; attempt += 1) {
      try {
        await call((cb) => sftp.ext_openssh_hardlink(fromAbs, target, cb));
        break;
      } catch (error) {
        // why: hardlink(2) fails with EEXIST, which OpenSSH reports as FAILURE, like any other failure.
        if (!hasSftpStatus(error, SFTP_STATUS.FAILURE)) throw error;
        if (await this.exists(sftp, to)) throw new EscaleError('AlreadyExists', `'${to}' exists already`, { path: to });
        // why: the target may have existed and been removed since (another client's lock, released):
        // once more before the failure is taken for what the server says.
        if (attempt === 2) throw error;
      }
    }
    if (this.hardlinkChecked) return true;
    if (await this.exists(sftp, to)) {
      this.hardlinkChecked = true;
      return true;
    }
    this.hardlink = false;
    this.options.logger?.info(`the SFTP server offers hardlink@openssh.com but its links create nothing; exclusive writes fall back to a check before the rename`);
    return false;
  }

  /** Renames `fromAbs` onto `to`: atomic with posix-rename, else delete-then-rename (crash window documented on the class). */
  private async moveIntoPlace(sftp: SFTPWrapper, fromAbs: string, to: RelayPath, exclusive: boolean): Promise<void> {
    const target = this.abs(to);
    if (exclusive && this.hardlink) {
      if (await this.linkInto(sftp, fromAbs, to)) {
        await this.removeQuietly(sftp, fromAbs);
        return;
      }
      // why: the server's hardlink turned out not to work: the check that put() makes without it.
      if (await this.exists(sftp, to)) throw new EscaleError('AlreadyExists', `'${to}' exists already`, { path: to });
    }
    // why: without a working hardlink, an exclusive put is the existence check and the usual move: best effort.
    if (this.posixRename) {
      await call((cb) => sftp.ext_openssh_rename(fromAbs, target, cb));
      return;
    }
    try {
      await call((cb) => sftp.rename(fromAbs, target, cb));
    } catch (error) {
      if (!hasSftpStatus(error, SFTP_STATUS.FAILURE) || !(await this.exists(sftp, to))) throw error;
      await call((cb) => sftp.unlink(target, cb));
      await call((cb) => sftp.rename(fromAbs, target, cb));
    }
  }

  /** mkdir -p below the relay root; a file in the way gives AlreadyExists. */
  private async mkdirs(sftp: SFTPWrapper, dir: RelayPath): Promise<void> {
    const segments = [...this.root.split('/'), ...dir.split('/')].filter((s) => s !== '');
    let current = '';
    for (const segment of segments) {
      current = current === '' ? segment : `${current}/${segment}`;
      const here = current;
      try {
        await call((cb) => sftp.mkdir(here, cb));
      } catch (error) {
        let attrs: Stats;
        try {
          attrs = await call<Stats>((cb) => sftp.stat(here, cb));
        } catch {
          throw fromSftpError(error, here);
        }
        if ((attrs.mode & S_IFMT) !== S_IFDIR) throw new EscaleError('AlreadyExists', `'${here}' is a file, not a folder`, { path: here });
      }
    }
  }

  private async removeQuietly(sftp: SFTPWrapper, absPath: string): Promise<void> {
    await call((cb) => sftp.unlink(absPath, cb)).catch(() => undefined);
  }

  /** The live SFTP channel, connecting (again) when there is none. */
  private sftp(): Promise<Session> {
    if (this.closed) return Promise.reject(new EscaleError('Internal', 'the sftp backend is closed'));
    this.session ??= this.dial().catch((error: unknown) => {
      this.session = undefined;
      throw error;
    });
    return this.session;
  }

  private async dial(): Promise<Session> {
    const o = this.options;
    const known = await preferredKeyTypes(o.hostKey, o.host, this.port);
    let refusal: EscaleError | undefined;
    const client = new Client();
    const config: ConnectConfig = {
      host: o.host,
      port: this.port,
      username: o.user,
      readyTimeout: o.timeoutMs ?? 20_000,
      keepaliveInterval: 30_000,
      keepaliveCountMax: 3,
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(this.privateKey !== undefined ? { privateKey: this.privateKey } : {}),
      ...(o.keyPassphrase !== undefined ? { passphrase: o.keyPassphrase } : {}),
      ...(o.agent !== undefined ? { agent: o.agent } : {}),
      ...(known.length > 0 ? { algorithms: { serverHostKey: { prepend: hostKeyAlgorithms(known) } } as ConnectConfig['algorithms'] } : {}),
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        checkHostKey(o.hostKey, o.host, this.port, key).then((problem) => {
          refusal = problem;
          verify(problem === undefined);
        }, (error: unknown) => {
          refusal = error instanceof EscaleError ? error : new EscaleError('Internal', String(error), { cause: error });
          verify(false);
        });
      },
    };
    const ready = new Promise<void>((resolve, reject) => {
      client.once('ready', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new EscaleError('Unavailable', `the SSH server ${o.host}:${this.port} closed the connection`)));
    });
    try {
      client.connect(config);
      await ready;
    } catch (error) {
      client.end();
      if (refusal) throw refusal;
      if (error instanceof Error && /privateKey|passphrase|Cannot parse/i.test(error.message) && !('level' in error)) {
        throw new EscaleError('Config', `the SSH private key '${o.keyfile}' cannot be used: ${error.message.replace(o.keyPassphrase ?? '\0', '***')}`, { key: 'keyfile', cause: error });
      }
      throw fromSftpError(error);
    }
    let sftp: SFTPWrapper;
    try {
      sftp = await call<SFTPWrapper>((cb) => client.sftp(cb));
    } catch (error) {
      client.end();
      throw fromSftpError(error);
    }
    // why: a dropped connection is replaced on the next call instead of failing forever.
    const mine: Session = { client, sftp };
    const forget = (): void => {
      if (this.live !== mine) return;
      this.live = undefined;
      this.session = undefined;
    };
    client.on('error', forget);
    client.on('close', forget);
    sftp.on('close', forget);
    sftp.on('error', forget);
    this.live = mine;
    return mine;
  }
}

function toEntry(path: string, attrs: Stats): Entry | undefined {
  const type = attrs.mode & S_IFMT;
  if (type === S_IFDIR) return { path: path as RelayPath, kind: 'dir', size: 0, mtimeMs: attrs.mtime * 1000 };
  // why: symlinks and special files are skipped, like the file backend does.
  if (type === S_IFREG) return { path: path as RelayPath, kind: 'file', size: attrs.size, mtimeMs: attrs.mtime * 1000 };
  return undefined;
}

function hostKeyAlgorithms(types: string[]): string[] {
  return types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
}

/** Turns an ssh2 callback API into a promise. */
function call<T = void>(start: (callback: (error: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      start((error, value) => (error ? reject(error) : resolve(value)));
    } catch (error) {
      reject(error);
    }
  });
}
