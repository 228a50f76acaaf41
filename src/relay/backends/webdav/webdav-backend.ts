import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { pipeline, Readable, Transform } from 'node:stream';
import { AuthType, createClient, parseXML, type FileStat, type WebDAVClient } from 'webdav';
import { EscaleError, fromSystemError, throwIfAborted } from '../../../core/errors.js';
import { basenameRel, dirnameRel, type RelayPath } from '../../../core/relpath.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { tlsOptionsFrom, type TlsSettings } from '../tls-options.js';
import type { Logger } from '../../../core/log.js';
import { RelayClock } from '../../relay-clock.js';
import { isUploadTempName, removeLeftoverTemps, UPLOAD_TEMP_PREFIX, uploadTempName } from '../upload-temp.js';
import { statusOf, translateWebdavError } from './webdav-error.js';

/** How to reach a WebDAV relay (the fields of a relay target this backend reads). */
export interface WebdavBackendOptions extends TlsSettings {
  /** `http` or `https` (escale's `webdav` protocol means https). */
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port?: number;
  /** Relay folder below the server root (a leading `/` is ignored). */
  readonly directory: string;
  readonly user?: string;
  readonly password?: string;
  /** Requests in flight at most (sockets kept alive); 4 when left out. */
  readonly maxConnections?: number;
  /** Where removed upload temporaries are reported (default: nowhere). */
  readonly logger?: Logger;
}

/** Space figures of a relay, from the RFC 4331 properties when the server offers them. */
export interface WebdavQuota {
  readonly usedBytes?: number;
  readonly availableBytes?: number;
}

/** Prefix of the hidden names `put` uploads to before its MOVE; never listed. */
export const WEBDAV_TEMP_PREFIX = UPLOAD_TEMP_PREFIX;

/** Whether a base name is one of this backend's upload temporaries. */
export function isWebdavTempName(name: string): boolean {
  return isUploadTempName(name);
}

const QUOTA_BODY = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>';

/** Opens a WebDAV backend and checks the credentials with one PROPFIND of the relay folder's parent chain. */
export async function openWebdavBackend(options: WebdavBackendOptions, signal?: AbortSignal): Promise<WebdavBackend> {
  const backend = new WebdavBackend(options);
  await backend.check(signal);
  return backend;
}

/**
 * The `webdav`, `http` and `https` relay backends on the `webdav` client: Basic auth, PROPFIND
 * Depth 1 listings (recursive by walking), MKCOL of missing parents, put through a hidden
 * temporary name and MOVE with `Overwrite: T`, streamed bodies both ways. Server quirk:
 * `rclone serve webdav` (golang.org/x/net/webdav) performs an overwriting MOVE as delete then
 * rename, so during a replace a reader may briefly get NotFound (never a partial file); apache
 * mod_dav_fs renames atomically.
 */
export class WebdavBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock = new RelayClock();
  private readonly client: WebDAVClient;
  private readonly agent: HttpAgent | HttpsAgent;
  // why: folders are never removed during normal work, so remembering the ones known to exist
  // saves one MKCOL per put; a PUT that still meets a missing parent drops the entry.
  // Keys are folders relative to the server root; '' is the server root.
  private readonly knownDirs = new Set<string>(['']);
  private readonly dir: string;

  constructor(private readonly options: WebdavBackendOptions) {
    const port = options.port === undefined ? '' : `:${options.port}`;
    const dir = options.directory.split('/').filter((s) => s !== '').join('/');
    this.dir = dir;
    // why: the client sits at the server root, so that ensureDir can create the relay folder too.
    const base = `${options.scheme}://${options.host}${port}`;
    const user = options.user ? `${encodeURIComponent(options.user)}@` : '';
    this.id = `${options.scheme}://${user}${options.host}${port}/${dir}`;
    const max = Math.max(1, options.maxConnections ?? 4);
    this.features = { maxConnections: max, mtimePrecisionMs: 1000, renameOverwrites: true, recursiveList: false };
    this.agent = options.scheme === 'https'
      ? new HttpsAgent({ keepAlive: true, maxSockets: max, ...tlsOptionsFrom(options) })
      : new HttpAgent({ keepAlive: true, maxSockets: max });
    this.client = createClient(base, {
      authType: options.user !== undefined || options.password !== undefined ? AuthType.Password : AuthType.None,
      username: options.user,
      password: options.password,
      ...(options.scheme === 'https' ? { httpsAgent: this.agent } : { httpAgent: this.agent }),
    });
  }

  /** Checks that the server answers and accepts the credentials (PROPFIND Depth 0 of the relay folder; a missing folder is fine). */
  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.stat(this.remote(''), { signal });
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw this.translate(error, 'connect', undefined, signal);
    }
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    const pending: RelayPath[] = [dir];
    for (let current = pending.shift(); current !== undefined; current = pending.shift()) {
      const entries = await this.listOnce(current, options);
      for (const entry of entries) {
        if (options.recursive && entry.kind === 'dir') pending.push(entry.path);
        else yield entry;
      }
    }
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    if (path === '') return { path, kind: 'dir', size: 0 };
    try {
      const stat = (await this.client.stat(this.remote(path), { signal: options.signal })) as FileStat;
      return toEntry(path, stat);
    } catch (error) {
      throw this.translate(error, 'stat', path, options.signal);
    }
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    try {
      const response = await this.client.customRequest(this.remote(path), { method: 'GET', signal: options.signal });
      // why: in Node the `webdav` client fetches with node-fetch, whose body is a Node Readable.
      const body = (response as unknown as { body: Readable | null }).body;
      if (body === null) return Readable.from([]);
      // why: node-fetch reports a body cut short (connection reset, abort) as a stream error of
      // its own kind; translate it so readers only ever see EscaleErrors.
      const out = new Readable({ read(): void { body.resume(); } });
      body.on('data', (chunk: Buffer) => {
        if (!out.push(chunk)) body.pause();
      });
      body.once('end', () => out.push(null));
      body.once('error', (error) => out.destroy(this.translate(error, 'get', path, options.signal)));
      out.once('close', () => {
        if (!body.readableEnded) body.destroy();
      });
      return out;
    } catch (error) {
      throw this.translate(error, 'get', path, options.signal);
    }
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    const name = basenameRel(path);
    if (name === '') throw new EscaleError('InvalidName', 'cannot put the relay root', { path });
    throwIfAborted(options.signal);
    const parent = dirnameRel(path);
    const temp = `${parent === '' ? '' : `${parent}/`}${uploadTempName(name)}`;
    let sourceError: unknown;
    if (!(body instanceof Uint8Array)) body.once('error', (error) => (sourceError = error));
    let uploaded = false;
    try {
      await this.ensureDir(parent, options.signal);
      const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
      const size = body instanceof Uint8Array ? body.byteLength : options.size;
      if (size !== undefined) headers['Content-Length'] = String(size);
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback): void {
          sent += chunk.length;
          callback(null, chunk);
        },
      });
      uploaded = true;
      await this.client.customRequest(this.remote(temp), {
        method: 'PUT',
        headers,
        data: body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : pipeline(body, counter, () => undefined),
        signal: options.signal,
      });
      if (sourceError !== undefined) throw sourceError;
      throwIfAborted(options.signal);
      await this.publish(temp, path, !options.exclusive, options.signal);
      uploaded = false;
      // why: no PROPFIND afterwards: rclone replaces a target by deleting it and renaming, so a
      // concurrent put can leave it briefly missing; what we sent is what the MOVE published.
      return { path, kind: 'file', size: body instanceof Uint8Array ? body.byteLength : sent };
    } catch (error) {
      if (statusOf(error) === 409 || statusOf(error) === 404) this.knownDirs.delete(this.server(parent));
      if (uploaded) await this.removeQuietly(temp);
      if (sourceError !== undefined && !options.signal?.aborted) {
        throw sourceError instanceof EscaleError ? sourceError : fromSystemError(sourceError, path);
      }
      throw this.translate(error, 'put', path, options.signal);
    }
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    try {
      await this.client.deleteFile(this.remote(path), { signal: options.signal });
    } catch (error) {
      throw this.translate(error, 'delete', path, options.signal);
    }
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    try {
      // why: apache answers a MOVE into a missing folder with 500, not 409; make the folder first
      // (free when it is known to exist).
      await this.ensureDir(dirnameRel(to), options.signal);
      try {
        await this.move(from, to, true, options.signal);
      } catch (error) {
        // why: the folder may have been removed behind our back (409 apache, 404 rclone); forget
        // it, create it and try once more (a missing source fails again, as NotFound).
        const status = statusOf(error);
        if (status !== 409 && status !== 404) throw error;
        this.knownDirs.delete(this.server(dirnameRel(to)));
        await this.ensureDir(dirnameRel(to), options.signal);
        await this.move(from, to, true, options.signal);
      }
    } catch (error) {
      throw this.translate(error, 'rename', from, options.signal);
    }
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    try {
      await this.ensureDir(dir, options.signal, true);
    } catch (error) {
      throw this.translate(error, 'mkdir', dir, options.signal);
    }
  }

  /**
   * Space figures from `quota-available-bytes` and `quota-used-bytes` (RFC 4331) of the relay
   * folder; undefined when the server does not offer them.
   */
  async quota(options: Op = {}): Promise<WebdavQuota | undefined> {
    try {
      const response = await this.client.customRequest(this.remote(''), {
        method: 'PROPFIND',
        headers: { Depth: '0', 'Content-Type': 'application/xml; charset=utf-8' },
        data: QUOTA_BODY,
        signal: options.signal,
      });
      const result = await parseXML(await response.text());
      const prop = result.multistatus.response[0]?.propstat?.prop as Record<string, unknown> | undefined;
      const bytes = (value: unknown): number | undefined => {
        const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
        return Number.isFinite(n) && n >= 0 ? n : undefined;
      };
      const usedBytes = bytes(prop?.['quota-used-bytes']);
      const availableBytes = bytes(prop?.['quota-available-bytes']);
      if (usedBytes === undefined && availableBytes === undefined) return undefined;
      return { ...(usedBytes !== undefined ? { usedBytes } : {}), ...(availableBytes !== undefined ? { availableBytes } : {}) };
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 405 || status === 501) return undefined;
      throw this.translate(error, 'quota', undefined, options.signal);
    }
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  // ---- internals ----

  private async listOnce(dir: RelayPath, options: ListOptions): Promise<Entry[]> {
    const { signal } = options;
    let stats: FileStat[];
    try {
      stats = (await this.client.getDirectoryContents(this.remote(dir), { signal })) as FileStat[];
    } catch (error) {
      if (statusOf(error) === 404) return [];
      throw this.translate(error, 'list', dir, signal);
    }
    this.knownDirs.add(this.server(dir));
    const entries: Entry[] = [];
    for (const stat of stats) {
      const name = stat.basename;
      if (isWebdavTempName(name)) continue;
      const path = listedPath(dir, name, options);
      if (path === undefined) continue;
      entries.push(toEntry(path, stat));
    }
    // why: a put cut by a crash leaves its temporary; it goes once stale or superseded by a later put.
    await removeLeftoverTemps(stats.map((stat) => ({ name: stat.basename, size: stat.size, mtimeMs: Date.parse(stat.lastmod) })), dir, {
      backend: this,
      ...(this.options.logger === undefined ? {} : { logger: this.options.logger }),
      remove: (name) => this.delete((dir === '' ? name : `${dir}/${name}`) as RelayPath),
    });
    return entries;
  }

  /**
   * MKCOL of `dir`, walking up while the server answers 409 (parent missing; rclone says 404),
   * then back down; the relay folder itself is created the same way. 405 means it exists: when
   * `verify` is set, a PROPFIND makes sure it is a folder and not a file (apache answers 405 for
   * both).
   */
  private async ensureDir(dir: RelayPath, signal: AbortSignal | undefined, verify = false): Promise<void> {
    const target = this.server(dir);
    if (this.knownDirs.has(target)) return;
    const missing: string[] = [];
    for (let current = target; !this.knownDirs.has(current); current = parentOf(current)) {
      const status = await this.mkcol(current, signal);
      if (status === 'made') break;
      if (status === 'exists') {
        if (verify || current !== target) await this.mustBeDir(current, signal);
        this.knownDirs.add(current);
        break;
      }
      missing.push(current);
    }
    for (const current of missing.reverse()) {
      const status = await this.mkcol(current, signal);
      if (status === 'parent-missing') throw new EscaleError('NotFound', `${this.id}: cannot create folder '/${current}'`, { path: dir });
      if (status === 'exists') await this.mustBeDir(current, signal);
      this.knownDirs.add(current);
    }
  }

  /**
   * MOVE with `Overwrite: T` (or F). rclone answers a MOVE of a missing source with 403; that is
   * made NotFound.
   */
  /**
   * Moves an uploaded temporary over its target. Apache mod_dav_fs answers 404 to an overwriting
   * MOVE that races another MOVE onto the same target (the target it was about to replace vanished):
   * while our temporary is still there, the MOVE is tried again.
   */
  private async publish(temp: string, target: string, overwrite: boolean, signal: AbortSignal | undefined): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.move(temp, target, overwrite, signal);
        return;
      } catch (error) {
        if (!overwrite || statusOf(error) !== 404 || attempt >= 4 || !(await this.exists(temp, signal))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
  }

  private async move(from: string, to: string, overwrite: boolean, signal: AbortSignal | undefined): Promise<void> {
    try {
      await whileLocked(signal, () => this.client.moveFile(this.remote(from), this.remote(to), { overwrite, signal }));
    } catch (error) {
      if (statusOf(error) === 403 && !(await this.exists(from, signal))) {
        throw new EscaleError('NotFound', `${this.id} '${from}' does not exist`, { path: from, cause: error });
      }
      throw error;
    }
  }

  private async exists(path: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      await this.client.stat(this.remote(path), { signal });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  private async mkcol(serverDir: string, signal: AbortSignal | undefined): Promise<'made' | 'exists' | 'parent-missing'> {
    try {
      await whileLocked(signal, () => this.client.customRequest(`/${serverDir}`, { method: 'MKCOL', signal }));
      this.knownDirs.add(serverDir);
      return 'made';
    } catch (error) {
      const status = statusOf(error);
      if (status === 405) return 'exists';
      if (status === 409 || status === 404) return 'parent-missing';
      // why: apache mod_dav_fs answers 403 to a MKCOL that loses a race with a concurrent MKCOL
      // of the same folder (mkdir meets EEXIST); the folder is there all the same.
      if (status === 403 && (await this.isDir(serverDir, signal))) return 'exists';
      throw error;
    }
  }

  private async isDir(serverDir: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      return ((await this.client.stat(`/${serverDir}`, { signal })) as FileStat).type === 'directory';
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  private async mustBeDir(serverDir: string, signal: AbortSignal | undefined): Promise<void> {
    const stat = (await this.client.stat(`/${serverDir}`, { signal })) as FileStat;
    if (stat.type !== 'directory') throw new EscaleError('AlreadyExists', `${this.id}: '/${serverDir}' is a file, not a folder`, { path: serverDir });
  }

  private async removeQuietly(path: string): Promise<void> {
    try {
      await this.client.deleteFile(this.remote(path), { signal: AbortSignal.timeout(30_000) });
    } catch {
      // why: best effort; a left-over temporary is hidden from listings and removed when stale.
    }
  }

  private translate(error: unknown, what: string, path: RelayPath | undefined, signal: AbortSignal | undefined): EscaleError {
    if (signal?.aborted && !(error instanceof EscaleError)) {
      return new EscaleError('Aborted', `${this.id}: ${what} aborted`, { ...(path === undefined ? {} : { path }), cause: signal.reason });
    }
    const where = path === undefined ? this.id : `${this.id} '${path}'`;
    return translateWebdavError(error, `${where}: ${what}`, path, this.options.password);
  }

  /** The path below the server root of a relay path. */
  private server(path: string): string {
    return [this.dir, path].filter((p) => p !== '').join('/');
  }

  /** The client path (unencoded; the client percent-encodes it) of a relay path. */
  private remote(path: string): string {
    return `/${this.server(path)}`;
  }
}

/**
 * Runs a request that changes nothing when refused, again while it answers 423 Locked (up to
 * about 1.3 s). `rclone serve webdav` (golang.org/x/net/webdav) takes short internal locks for
 * MKCOL, PUT and MOVE and refuses concurrent requests on the same name with 423.
 */
async function whileLocked<T>(signal: AbortSignal | undefined, request: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (statusOf(error) !== 423 || attempt >= 6) throw error;
      await delay(20 * 2 ** attempt, signal);
    }
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new EscaleError('Aborted', 'operation aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function parentOf(serverPath: string): string {
  const slash = serverPath.lastIndexOf('/');
  return slash < 0 ? '' : serverPath.slice(0, slash);
}

function toEntry(path: RelayPath, stat: FileStat): Entry {
  const kind = stat.type === 'directory' ? 'dir' : 'file';
  const mtimeMs = stat.lastmod ? Date.parse(stat.lastmod) : NaN;
  return { path, kind, size: kind === 'dir' ? 0 : Number.isFinite(stat.size) ? stat.size : -1, ...(Number.isNaN(mtimeMs) ? {} : { mtimeMs }) };
}
