import { PassThrough, pipeline, Readable, Transform, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, FileType, FTPError, type FileInfo } from 'basic-ftp';
import { EscaleError, fromSystemError, throwIfAborted } from '../../../core/errors.js';
import { basenameRel, dirnameRel, type RelayPath } from '../../../core/relpath.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { FtpConnectionPool, type PooledClient } from './ftp-connection-pool.js';
import { translateFtpError } from './ftp-error.js';
import { tlsOptionsFrom, type TlsSettings } from '../tls-options.js';
import type { Logger } from '../../../core/log.js';
import { RelayClock } from '../../relay-clock.js';
import { isUploadTempName, removeLeftoverTemps, UPLOAD_TEMP_PREFIX, uploadTempName } from '../upload-temp.js';

/** Tries of a call whose data connection could not be opened (reply 425). */
const DATA_CONNECTION_ATTEMPTS = 4;

/** How to reach an FTP relay (the fields of a relay target this backend reads). */
export interface FtpBackendOptions extends TlsSettings {
  /** `ftps` is explicit TLS (AUTH TLS on the plain port, then PROT P); `ftp` is plain. */
  readonly protocol: 'ftp' | 'ftps';
  readonly host: string;
  /** Control port; 21 when left out. */
  readonly port?: number;
  /** Relay folder, relative to the login folder (a leading `/` is ignored, as in escale 0.7). */
  readonly directory: string;
  readonly user?: string;
  readonly password?: string;
  /** Connections opened at most (one per concurrent call); 2 when left out. */
  readonly maxConnections?: number;
  /** Control and data socket timeout in milliseconds; 30 s when left out. */
  readonly timeoutMs?: number;
  /** Where removed upload temporaries are reported (default: nowhere). */
  readonly logger?: Logger;
}

/** Prefix of the hidden names `put` uploads to before renaming; never listed. */
export const FTP_TEMP_PREFIX = UPLOAD_TEMP_PREFIX;

/** Whether a base name is one of this backend's upload temporaries. */
export function isFtpTempName(name: string): boolean {
  return isUploadTempName(name);
}

/** Connects once (to check the credentials and learn the login folder and features), then returns the backend. */
export async function openFtpBackend(options: FtpBackendOptions): Promise<FtpBackend> {
  const backend = new FtpBackend(options);
  await backend.open();
  return backend;
}

/**
 * The `ftp` and `ftps` relay backends on basic-ftp: passive mode, MLSD listings with a `LIST -a`
 * fallback, atomic put through a hidden temporary name and RNFR/RNTO, one control connection per
 * concurrent call (pooled), reconnection after a dropped connection.
 */
export class FtpBackend implements Backend {
  readonly id: string;
  features: Features;
  readonly clock = new RelayClock();
  private readonly pool: FtpConnectionPool;
  private readonly port: number;
  private readonly timeoutMs: number;
  private loginDir = '/';
  private root = '/';
  private learned = false;
  private useMlsd = true;
  private hasMlst = true;

  /** Prefer `openFtpBackend`, which also connects; a backend built here connects on first use. */
  constructor(private readonly options: FtpBackendOptions) {
    this.port = options.port ?? 21;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const max = Math.max(1, options.maxConnections ?? 2);
    const user = options.user ? `${encodeURIComponent(options.user)}@` : '';
    const dir = stripSlashes(options.directory);
    this.id = `${options.protocol}://${user}${options.host}:${this.port}/${dir}`;
    this.features = { maxConnections: max, mtimePrecisionMs: 1000, renameOverwrites: true, recursiveList: false };
    this.pool = new FtpConnectionPool(max, () => this.connect());
  }

  /** Opens the first connection; fails early on a wrong password or an untrusted certificate. */
  async open(signal?: AbortSignal): Promise<void> {
    await this.run('connect', undefined, signal, async () => undefined);
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    const pending: RelayPath[] = [dir];
    for (let current = pending.shift(); current !== undefined; current = pending.shift()) {
      // why: each folder is read whole and the connection given back before yielding, so a
      // consumer that calls the backend between items cannot starve the pool.
      const entries = await this.listOnce(current, options);
      for (const entry of entries) {
        if (options.recursive) {
          if (entry.kind === 'dir') pending.push(entry.path);
          else yield entry;
        } else {
          yield entry;
        }
      }
    }
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    if (path === '') return { path, kind: 'dir', size: 0 };
    return this.run('stat', path, options.signal, (client) => this.statWith(client, path));
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    const { client } = await this.acquire('get', path, options.signal);
    const onAbort = (): void => client.close();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      options.signal?.removeEventListener('abort', onAbort);
      this.pool.release(client);
    };
    try {
      // why: proftpd may reset the data connection before its 550 reply to a RETR of a missing
      // file arrives, so the failure would look transient; asking first gives a clean NotFound.
      const entry = await this.statWith(client, path);
      if (entry.kind !== 'file') throw new EscaleError('NotFound', `${this.id} '${path}' is a folder`, { path });
    } catch (error) {
      done();
      if (options.signal?.aborted) throw new EscaleError('Aborted', `get '${path}' aborted`, { path, cause: options.signal.reason });
      throw this.translate(error, 'get', path);
    }
    const out = new PassThrough();
    // why: basic-ftp ends its destination even when the transfer fails, which would look like a
    // complete (truncated) file; this sink never ends `out`, the outcome below does.
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback): void {
        if (out.write(chunk)) callback();
        else out.once('drain', () => callback());
      },
      final(callback): void {
        callback();
      },
    });
    let settled = false;
    // why: a reader that stops early must close the data connection, or the transfer hangs.
    out.once('close', () => {
      if (!settled) client.close();
    });
    client.downloadTo(sink, this.abs(path)).then(
      () => {
        settled = true;
        out.end();
      },
      (error: unknown) => {
        settled = true;
        out.destroy(options.signal?.aborted
          ? new EscaleError('Aborted', `get '${path}' aborted`, { path, cause: options.signal.reason })
          : this.translate(error, 'get', path));
      },
    ).finally(done);
    return out;
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    return this.clock.timed(() => this.write(path, body, options), this.features.mtimePrecisionMs);
  }

  /** The put itself: upload to a tagged hidden temporary, then RNFR/RNTO, then MLST (or SIZE and MDTM). */
  private async write(path: RelayPath, body: Readable | Uint8Array, options: PutOptions): Promise<Entry> {
    const name = basenameRel(path);
    if (name === '') throw new EscaleError('InvalidName', 'cannot put the relay root', { path });
    const temp = `${this.abs(dirnameRel(path))}/${uploadTempName(name)}`.replace(/^\/\//, '/');
    let sourceError: unknown;
    if (!(body instanceof Uint8Array)) body.once('error', (error) => (sourceError = error));
    let uploaded = false;
    try {
      return await this.run('put', path, options.signal, async (client) => {
        await this.ensureDir(client, dirnameRel(path));
        if (sourceError !== undefined) throw sourceError;
        // why: a buffer body is re-read from the start if the call is retried on a new connection.
        const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
        uploaded = true;
        await client.uploadFrom(this.options.protocol === 'ftps' ? pipeline(source, lingerWhenEmpty(client), () => undefined) : source, temp);
        throwIfAborted(options.signal);
        if (options.exclusive && (await this.exists(client, path))) {
          throw new EscaleError('AlreadyExists', `'${path}' exists`, { path });
        }
        await this.renameWith(client, temp, this.abs(path), path);
        uploaded = false;
        return this.statWith(client, path);
      }, body instanceof Uint8Array);
    } catch (error) {
      if (uploaded) await this.removeQuietly(temp);
      if (sourceError !== undefined && !options.signal?.aborted) {
        throw sourceError instanceof EscaleError ? sourceError : fromSystemError(sourceError, path);
      }
      throw error;
    }
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    await this.run('delete', path, options.signal, async (client) => {
      await client.send(`DELE ${this.abs(path)}`);
    });
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    await this.run('rename', from, options.signal, async (client) => {
      await this.ensureDir(client, dirnameRel(to));
      await this.renameWith(client, this.abs(from), this.abs(to), from);
    });
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    await this.run('mkdir', dir, options.signal, (client) => this.ensureDir(client, dir));
  }

  async close(): Promise<void> {
    this.pool.close();
  }

  // ---- internals ----

  private async connect(): Promise<Client> {
    const client = new Client(this.timeoutMs);
    const { protocol, host, user, password } = this.options;
    try {
      await client.access({
        host,
        port: this.port,
        user: user ?? 'anonymous',
        password: password ?? 'guest',
        secure: protocol === 'ftps',
        secureOptions: protocol === 'ftps' ? tlsOptionsFrom(this.options) : undefined,
      });
      if (!this.learned) await this.learnServer(client);
      return client;
    } catch (error) {
      client.close();
      // why: proftpd answers USER with "550 SSL/TLS required on the control channel" when it
      // only accepts TLS; that is a refused login, not a missing file.
      if (error instanceof FTPError && error.code !== 530 && error.code >= 500) {
        throw new EscaleError('PermissionDenied', `${this.id}: login refused: ${error.message}`, {
          cause: error,
          ...(/TLS|SSL/i.test(error.message) && protocol === 'ftp' ? { hint: "the server requires TLS: use protocol 'ftps'" } : {}),
        });
      }
      throw error;
    }
  }

  private async learnServer(client: Client): Promise<void> {
    this.loginDir = await client.pwd();
    const dir = stripSlashes(this.options.directory);
    this.root = joinAbs(this.loginDir, dir);
    const features = await client.features();
    this.hasMlst = features.has('MLST');
    this.useMlsd = this.hasMlst;
    // why: LIST gives no reliable mtimes; only MLSD and MDTM do.
    this.features = { ...this.features, mtimePrecisionMs: this.hasMlst || features.has('MDTM') ? 1000 : undefined };
    this.learned = true;
  }

  /**
   * Runs `fn` on a pooled client. Aborting closes the client (control and data connections). A
   * call that failed because a reused idle connection had been dropped by the server is retried
   * once on a fresh connection when `retry` allows it (not for streamed uploads), and so is one
   * whose data connection could not be opened (425), up to DATA_CONNECTION_ATTEMPTS times.
   */
  private async run<T>(what: string, path: RelayPath | undefined, signal: AbortSignal | undefined, fn: (client: Client) => Promise<T>, retry = true): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      const { client, reused } = await this.acquire(what, path, signal);
      const onAbort = (): void => client.close();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await fn(client);
      } catch (error) {
        if (signal?.aborted) throw new EscaleError('Aborted', `${what} aborted`, { path, cause: signal.reason });
        // why: a server that times an idle session out may answer our next command with 421
        // (closing) instead of closing first; either way nothing was done.
        const closing = error instanceof FTPError && error.code === 421;
        if (closing) client.close();
        const dropped = closing || (client.closed && !(error instanceof FTPError) && !(error instanceof EscaleError));
        if (dropped && reused && retry && attempt === 0) continue;
        // why: 425 means the data connection never opened (a busy passive port), so nothing was
        // sent; the server picks another port on the next try.
        if (error instanceof FTPError && error.code === 425 && retry && attempt < DATA_CONNECTION_ATTEMPTS - 1) {
          await delay(50 * (attempt + 1));
          continue;
        }
        throw this.translate(error, what, path);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        this.pool.release(client);
      }
    }
  }

  private async acquire(what: string, path: RelayPath | undefined, signal: AbortSignal | undefined): Promise<PooledClient> {
    try {
      return await this.pool.acquire(signal);
    } catch (error) {
      throw this.translate(error, what === 'connect' ? 'connect' : `${what} (connect)`, path);
    }
  }

  private translate(error: unknown, what: string, path: RelayPath | undefined): EscaleError {
    const where = path === undefined ? this.id : `${this.id} '${path}'`;
    const translated = translateFtpError(error, `${where}: ${what}`, path, this.options.password);
    // why: proftpd and vsftpd answer 550 both for a missing file and a refused one.
    if (translated.code === 'NotFound' && /permission denied/i.test(translated.message)) {
      return new EscaleError('PermissionDenied', translated.message, translated.details);
    }
    return translated;
  }

  private async listOnce(dir: RelayPath, options: ListOptions): Promise<Entry[]> {
    const { signal } = options;
    const infos = await this.run('list', dir, signal, async (client) => {
      try {
        return await this.rawList(client, this.abs(dir));
      } catch (error) {
        // A missing folder lists as empty (550 from MLSD, 450 or 550 from LIST).
        if (error instanceof FTPError && (error.code === 550 || error.code === 450)) return [];
        throw error;
      }
    });
    const entries: Entry[] = [];
    for (const info of infos) {
      if (isFtpTempName(info.name)) continue;
      const path = listedPath(dir, info.name, options);
      if (path === undefined) continue;
      const kind = info.type === FileType.Directory ? 'dir' : 'file';
      const mtimeMs = info.modifiedAt?.getTime();
      entries.push({ path, kind, size: kind === 'dir' ? 0 : info.size, ...(mtimeMs !== undefined && !Number.isNaN(mtimeMs) ? { mtimeMs } : {}) });
    }
    // why: a put cut by a crash leaves its temporary; it goes once stale or superseded by a later put.
    await removeLeftoverTemps(infos.map((info) => ({ name: info.name, size: info.size, ...(info.modifiedAt ? { mtimeMs: info.modifiedAt.getTime() } : {}) })), dir, {
      backend: this,
      ...(this.options.logger === undefined ? {} : { logger: this.options.logger }),
      remove: (name) => this.delete((dir === '' ? name : `${dir}/${name}`) as RelayPath),
    });
    return entries;
  }

  private async rawList(client: Client, absDir: string): Promise<FileInfo[]> {
    if (this.useMlsd) {
      // why: basic-ftp tries its list commands in turn and keeps the first that answers, so a
      // 550 on a missing folder would let it drop MLSD for good; we pick the command ourselves.
      client.availableListCommands = ['MLSD'];
      try {
        return (await client.list(absDir)).filter((info) => info.type !== FileType.SymbolicLink || info.size >= 0);
      } catch (error) {
        if (!(error instanceof FTPError) || ![500, 502, 504].includes(error.code)) throw error;
        this.useMlsd = false;
      }
    }
    // `-a`: vsftpd and proftpd hide dot files from a plain LIST; escale's records are dot files.
    client.availableListCommands = ['LIST -a'];
    return client.list(absDir);
  }

  private async statWith(client: Client, path: RelayPath): Promise<Entry> {
    const abs = this.abs(path);
    if (this.hasMlst) {
      try {
        const reply = await client.send(`MLST ${abs}`);
        const entry = parseMlst(reply.message, path);
        if (entry !== undefined) return entry;
      } catch (error) {
        if (!(error instanceof FTPError)) throw error;
        if (error.code === 550) throw new EscaleError('NotFound', `${this.id} '${path}' does not exist`, { path, cause: error });
        if (![500, 502, 504].includes(error.code)) throw error;
        this.hasMlst = false;
      }
    }
    try {
      const size = await client.size(abs);
      const mtimeMs = await client.lastMod(abs).then((d) => d.getTime(), () => undefined);
      return { path, kind: 'file', size, ...(mtimeMs !== undefined ? { mtimeMs } : {}) };
    } catch (error) {
      if (!(error instanceof FTPError)) throw error;
    }
    const cwd = await client.sendIgnoringError(`CWD ${abs}`);
    if (cwd.code < 400) return { path, kind: 'dir', size: 0 };
    throw new EscaleError('NotFound', `${this.id} '${path}' does not exist`, { path });
  }

  private async exists(client: Client, path: RelayPath): Promise<boolean> {
    try {
      await this.statWith(client, path);
      return true;
    } catch (error) {
      if (error instanceof EscaleError && error.code === 'NotFound') return false;
      throw error;
    }
  }

  /**
   * RNFR/RNTO. Servers that refuse to rename over an existing file get the target deleted first
   * and the rename repeated. Crash window: between that DELE and the second RNTO the target is
   * missing (the new content sits under the source name), so a reader sees NotFound, never a
   * partial file.
   */
  private async renameWith(client: Client, fromAbs: string, toAbs: string, path: RelayPath): Promise<void> {
    try {
      await client.send(`RNFR ${fromAbs}`);
    } catch (error) {
      if (error instanceof FTPError && (error.code === 550 || error.code === 450)) {
        throw new EscaleError('NotFound', `${this.id} '${path}' does not exist`, { path, cause: error });
      }
      throw error;
    }
    try {
      await client.send(`RNTO ${toAbs}`);
    } catch (error) {
      if (!(error instanceof FTPError) || error.code < 500) throw error;
      const target = await client.sendIgnoringError(`DELE ${toAbs}`);
      if (target.code >= 400) throw error;
      await client.send(`RNFR ${fromAbs}`);
      await client.send(`RNTO ${toAbs}`);
    }
  }

  /** mkdir -p below the login folder (the relay folder itself included); a file in the way is AlreadyExists. */
  private async ensureDir(client: Client, dir: RelayPath): Promise<void> {
    const target = this.abs(dir);
    if ((await client.sendIgnoringError(`CWD ${target}`)).code < 400) return;
    const below = [stripSlashes(this.options.directory), dir].filter((p) => p !== '').join('/');
    let current = this.loginDir;
    for (const segment of below.split('/')) {
      current = joinAbs(current, segment);
      const made = await client.sendIgnoringError(`MKD ${current}`);
      if (made.code < 400) continue;
      if ((await client.sendIgnoringError(`CWD ${current}`)).code >= 400) {
        const code = made.code === 550 || made.code === 521 ? 'AlreadyExists' : undefined;
        if (code) throw new EscaleError(code, `${this.id}: cannot create folder '${current}' (${made.message.trim()})`, { path: dir });
        throw new FTPError(made);
      }
    }
  }

  private async removeQuietly(absPath: string): Promise<void> {
    try {
      await this.run('cleanup', undefined, AbortSignal.timeout(this.timeoutMs), (client) => client.sendIgnoringError(`DELE ${absPath}`));
    } catch {
      // why: best effort; a left-over temporary is hidden from listings and removed when stale.
    }
  }

  private abs(path: RelayPath | string): string {
    return path === '' ? this.root : joinAbs(this.root, path);
  }
}

/**
 * A pass-through for uploads over TLS that, when the body turns out empty, waits until the data
 * connection's TLS session is established on both sides before ending it.
 */
function lingerWhenEmpty(client: Client): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback): void {
      bytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback): void {
      if (bytes > 0) {
        callback();
        return;
      }
      // why: proftpd with TLS 1.3 fails a data connection that is closed right after the client's
      // side of the handshake ("tlsv1 alert decode error"), which is what an empty upload does;
      // waiting for the server's session ticket (or 200 ms) lets its side finish first.
      const socket = client.ftp.dataSocket;
      const timer = setTimeout(done, 200);
      function done(): void {
        clearTimeout(timer);
        socket?.removeListener('session', done);
        callback();
      }
      socket?.once('session', done);
    },
  });
}

function stripSlashes(text: string): string {
  return text.replace(/^\/+|\/+$/g, '');
}

function joinAbs(base: string, rest: string): string {
  if (rest === '') return base;
  return base.endsWith('/') ? `${base}${rest}` : `${base}/${rest}`;
}

/** Parses the fact line of an MLST reply (`250-...`, ` type=file;size=3;modify=...; /path`, `250 End`). */
function parseMlst(message: string, path: RelayPath): Entry | undefined {
  const line = message.split(/\r?\n/).find((l) => l.startsWith(' ') && l.includes('='));
  if (line === undefined) return undefined;
  const facts = new Map<string, string>();
  for (const fact of line.trimStart().split(' ', 1)[0]!.split(';')) {
    const eq = fact.indexOf('=');
    if (eq > 0) facts.set(fact.slice(0, eq).toLowerCase(), fact.slice(eq + 1));
  }
  const type = facts.get('type')?.toLowerCase() ?? '';
  const kind = type === 'dir' || type === 'cdir' || type === 'pdir' ? 'dir' : 'file';
  const modify = facts.get('modify');
  const mtimeMs = modify ? parseMlsxTime(modify) : undefined;
  return { path, kind, size: kind === 'dir' ? 0 : Number(facts.get('size') ?? -1), ...(mtimeMs !== undefined ? { mtimeMs } : {}) };
}

/** `YYYYMMDDHHMMSS[.sss]` in UTC (RFC 3659) to milliseconds. */
function parseMlsxTime(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number((ms ?? '0').padEnd(3, '0')));
}
