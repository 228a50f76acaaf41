import { constants as fsConstants, lstatSync } from 'node:fs';
import type { Dir, Dirent, Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { link, lstat, mkdir, open, opendir, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, join, sep } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { EscaleError, fromSystemError, throwIfAborted } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { namesDecodingTo } from '../../../core/raw-names.js';
import { dirnameRel, isRelayPath, type RelayPath } from '../../../core/relpath.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { RelayClock } from '../../relay-clock.js';
import { removeLeftoverTemps, type ListedName } from '../upload-temp.js';

/** Names this backend gives its in-flight uploads; never listed, removed by listings once stale. */
export const FILE_TEMP_PATTERN = /^\.escale-put-[0-9a-f]{16}\.tmp$/;

/** Options for `openFileBackend`. */
export interface FileBackendOptions {
  /** Absolute path of the relay folder; it must exist. */
  readonly root: string;
  /** Age after which a leftover temporary is deleted, by the relay's clock or unchanged while watched (default one hour). */
  readonly staleTempMs?: number;
  /** The relay clock estimate (tests inject one with their own monotonic clock; default: a new one). */
  readonly clock?: RelayClock;
  /** Where removed temporaries are reported (default: nowhere). */
  readonly logger?: Logger;
  /** Overrides `features.maxConnections` (default 8). */
  readonly maxConnections?: number;
  /**
   * How long a folder's listing is given again without reading the folder, while the folder's own
   * stamp (inode, mtime, ctime) stays the same (default one hour; 0 turns the cache off).
   */
  readonly listingCacheMaxAgeMs?: number;
  /** Local monotonic clock in milliseconds (tests; default `performance.now`). */
  readonly monotonic?: () => number;
  /**
   * Creates a missing relay folder and its missing parents, as escale 0.7 does (its first put makes
   * them), and tells `onCreated` which folders it made, outermost first. Without it a missing folder
   * is NotFound.
   */
  readonly create?: { readonly onCreated: (folders: readonly string[]) => void };
}

const READ_CHUNK = 256 * 1024;
/** Buffer of the read that is expected to find the end of a file. */
const EOF_PROBE = 64;
const DEFAULT_STALE_TEMP_MS = 60 * 60 * 1000;
/** Default `listingCacheMaxAgeMs`: a folder is read again at least every hour. */
const DEFAULT_LISTING_CACHE_MAX_AGE_MS = 60 * 60 * 1000;
/** A folder stamp this close (ms) to the clock is not trusted for the listing cache. */
const RACY_FOLDER_MS = 2000;

/**
 * Opens a local or mounted folder as a relay. A missing folder is created with its parents when
 * `create` is given, else it is NotFound (with a message that names the folder).
 */
export async function openFileBackend(options: FileBackendOptions): Promise<FileBackend> {
  if (!isAbsolute(options.root)) {
    throw new EscaleError('Config', `the relay folder '${options.root}' must be an absolute path`, { path: options.root });
  }
  if (options.create !== undefined) {
    const created = await createFolder(options.root);
    if (created.length > 0) options.create.onCreated(created);
  }
  let root: string;
  let info: Stats;
  try {
    // why: the configured root may itself be a symlink (a mount point alias); that one is trusted.
    root = await realpath(options.root);
    info = await stat(root);
  } catch (error) {
    const translated = fromSystemError(error, options.root);
    if (translated.code === 'NotFound') throw new EscaleError('NotFound', `the relay folder '${options.root}' does not exist`, { path: options.root, cause: error });
    throw new EscaleError(translated.code, `cannot open the relay folder '${options.root}': ${translated.message}`, { path: options.root, cause: error });
  }
  if (!info.isDirectory()) throw new EscaleError('NotFound', `the relay folder '${options.root}' is not a folder`, { path: options.root });
  return new FileBackend(root, options);
}

/** mkdir -p of `folder`; returns the folders it created, outermost first (none when it existed). */
async function createFolder(folder: string): Promise<string[]> {
  const missing: string[] = [];
  for (let current = folder; ; current = dirname(current)) {
    try {
      await stat(current);
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // why: other failures are not ours to judge here; creating or opening the folder reports their real cause.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') break;
      missing.unshift(current);
      if (dirname(current) === current) break;
    }
  }
  if (missing.length === 0) return [];
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    throw new EscaleError(fromSystemError(error, folder).code, `cannot create the relay folder '${folder}': ${(error as Error).message}`, { path: folder, cause: error });
  }
  return missing;
}

/**
 * A local or mounted folder as relay. Puts are atomic (hidden temporary in the target folder,
 * fsync, rename). Symlinks inside the relay are never followed: they are skipped in listings
 * and refused (PermissionDenied) by every call naming them or a path through them, so a hostile
 * relay cannot make escale read or write outside the root.
 */
export class FileBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;
  private readonly staleTempMs: number;
  private readonly logger: Logger | undefined;
  private closed = false;
  /**
   * The last listing of each folder, by the folder's stamp. why: creating, deleting or renaming a
   * name in a folder changes its mtime and ctime, so an unchanged stamp means the same names; every
   * escale put renames into place and every escale 0.7 transaction creates and deletes a lock in
   * the resource's folder (the page lock in the root for index relays), so their writes change the
   * stamp too. A writer that rewrites a file in place without any lock (an editor on the relay, a
   * tool that is not escale) is not seen until the folder changes otherwise or `listingCacheMaxAgeMs`
   * passes; a stamp within a few seconds of the relay's clock is not trusted (a change in the same
   * clock tick would keep it).
   */
  private readonly folders = new Map<RelayPath, { readonly stamp: string; readonly entries: readonly Entry[]; readonly readAtMono: number }>();
  private readonly listingCacheMaxAgeMs: number;
  private readonly monotonic: () => number;

  /** Use `openFileBackend`, which checks and resolves the root. */
  constructor(
    private readonly root: string,
    options: Omit<FileBackendOptions, 'root'> = {},
  ) {
    this.id = `file://${root}`;
    this.features = { maxConnections: options.maxConnections ?? 8, mtimePrecisionMs: 1, renameOverwrites: true, recursiveList: true };
    this.staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS;
    this.clock = options.clock ?? new RelayClock();
    this.logger = options.logger;
    this.listingCacheMaxAgeMs = options.listingCacheMaxAgeMs ?? DEFAULT_LISTING_CACHE_MAX_AGE_MS;
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  /** The stamp of a folder (inode, mtime and ctime in ns), or undefined when it cannot be read. */
  private folderStamp(dir: RelayPath): string | undefined {
    if (this.listingCacheMaxAgeMs <= 0) return undefined;
    try {
      const info = lstatSync(this.abs(dir), { bigint: true, throwIfNoEntry: false });
      return info?.isDirectory() === true ? `${info.ino}:${info.mtimeNs}:${info.ctimeNs}` : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether a folder stamp is old enough that a change made in the same clock tick after the read would have moved it. */
  private cacheable(stamp: string): boolean {
    const [, mtimeNs, ctimeNs] = stamp.split(':');
    const latestMs = Math.max(Number(BigInt(mtimeNs ?? '0') / 1_000_000n), Number(BigInt(ctimeNs ?? '0') / 1_000_000n));
    const relay = this.clock.now();
    const now = relay === undefined ? Date.now() : relay.earliest;
    return Math.abs(now - latestMs) >= RACY_FOLDER_MS;
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    this.check(dir, options);
    try {
      await this.checkDirChain(dir);
    } catch (error) {
      if (error instanceof EscaleError && error.code === 'NotFound') return;
      throw error;
    }
    // why: a stack of folders still to read keeps memory bounded by depth x one open Dir, never the whole tree.
    const pending: RelayPath[] = [dir];
    while (pending.length > 0) {
      const current = pending.pop() as RelayPath;
      const stamp = this.folderStamp(current);
      const cached = stamp === undefined ? undefined : this.folders.get(current);
      if (cached !== undefined && cached.stamp === stamp && this.monotonic() - cached.readAtMono < this.listingCacheMaxAgeMs) {
        throwIfAborted(options.signal);
        // why: the folder's names did not change since it was read (see `folders`): its entries are given again without a stat each.
        for (const entry of cached.entries) {
          if (entry.kind === 'file' || !options.recursive) yield entry;
        }
        if (options.recursive) pending.push(...cached.entries.filter((e) => e.kind === 'dir').map((e) => e.path).reverse());
        continue;
      }
      this.folders.delete(current);
      const readAtMono = this.monotonic();
      const listed: Entry[] = [];
      const subdirs: RelayPath[] = [];
      const temps: ListedName[] = [];
      // why: a folder with a refused or unreadable name is read again every time, so that each listing reports it.
      let troubled = false;
      const folderOptions: ListOptions = {
        ...options,
        onRefused: (name, problem) => {
          troubled = true;
          options.onRefused?.(name, problem);
        },
        onUnreadable: (path, error) => {
          troubled = true;
          options.onUnreadable?.(path, error);
        },
      };
      let handle: Dir;
      try {
        handle = await opendir(this.abs(current), { bufferSize: 256 });
      } catch (error) {
        if (current !== dir && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        const translated = fromSystemError(error, current);
        if (translated.code === 'NotFound') return;
        throw translated;
      }
      const lossyNames = new Set<string>();
      try {
        for (;;) {
          throwIfAborted(options.signal);
          let dirent: Dirent | null;
          try {
            dirent = await handle.read();
          } catch (error) {
            throw fromSystemError(error, current);
          }
          if (dirent === null) break;
          if (dirent.name.includes('\ufffd')) {
            // why: Node decoded a name that is not UTF-8 lossily; it is refused by its bytes (once per folder read).
            if (!lossyNames.has(dirent.name)) {
              lossyNames.add(dirent.name);
              for (const spelled of namesDecodingTo(this.abs(current), dirent.name)) listedPath(current, spelled, folderOptions);
            }
            continue;
          }
          const entry = this.describeDirent(current, dirent, temps, folderOptions);
          if (entry === undefined) continue;
          listed.push(entry);
          if (entry.kind === 'dir') {
            if (options.recursive) subdirs.push(entry.path);
            else yield entry;
          } else yield entry;
        }
      } finally {
        await handle.close().catch(() => undefined);
      }
      await this.removeLeftovers(current, temps);
      // why: kept only when the folder's stamp could not hide a change made since it was read (see `cacheable`).
      if (stamp !== undefined && temps.length === 0 && lossyNames.size === 0 && !troubled && this.cacheable(stamp)) {
        this.folders.set(current, { stamp, entries: listed, readAtMono });
      }
      // why: reversed so that the stack pops folders in the order they were read.
      pending.push(...subdirs.reverse());
    }
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    this.check(path, options);
    if (path === '') return { path, kind: 'dir', size: 0 };
    await this.checkDirChain(dirnameRel(path));
    const info = await this.lstatOrThrow(path);
    if (info.isFile()) return fileEntry(path, info);
    if (info.isDirectory()) return { path, kind: 'dir', size: 0, mtimeMs: Math.floor(info.mtimeMs) };
    throw new EscaleError('NotFound', `'${path}' is neither a file nor a folder`, { path });
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    this.check(path, options);
    await this.checkDirChain(dirnameRel(path));
    let handle: FileHandle;
    try {
      // why: O_NOFOLLOW makes the kernel refuse a symlink as the last component (ELOOP), race-free.
      handle = await open(this.abs(path), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(path);
      throw fromSystemError(error, path);
    }
    let size: number;
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new EscaleError('NotFound', `'${path}' is not a file`, { path });
      throwIfAborted(options.signal);
      size = info.size;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw fromSystemError(error, path);
    }
    const signal = options.signal;
    const stream = Readable.from(readChunks(handle, path, signal, size), { objectMode: false });
    if (signal) {
      // why: a paused or piped consumer must learn about the abort too, with a catalogue error.
      const onAbort = (): void => {
        stream.destroy(new EscaleError('Aborted', 'get aborted', { path, cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    return this.clock.timed(() => this.write(path, body, options), this.features.mtimePrecisionMs);
  }

  /** The put itself: hidden temporary, fsync, rename (or link for `exclusive`). */
  private async write(path: RelayPath, body: Readable | Uint8Array, options: PutOptions): Promise<Entry> {
    this.check(path, options);
    if (path === '') throw new EscaleError('InvalidName', 'cannot put the relay root', { path });
    const created: string[] = [];
    const temp = join(this.abs(dirnameRel(path)), `.escale-put-${randomBytes(8).toString('hex')}.tmp`);
    let handle: FileHandle | undefined;
    let tempExists = false;
    try {
      await this.ensureDirChain(dirnameRel(path), created);
      await this.refuseSpecialTarget(path, options.exclusive === true);
      handle = await open(temp, 'wx', 0o666);
      tempExists = true;
      await writeBody(handle, body, options.signal, path);
      await handle.sync();
      await handle.close();
      handle = undefined;
      throwIfAborted(options.signal);
      if (options.exclusive) await this.commitExclusive(temp, path);
      else await rename(temp, this.abs(path));
      tempExists = false;
      const info = await lstat(this.abs(path));
      return fileEntry(path, info);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if (tempExists) await unlink(temp).catch(() => undefined);
      await removeCreated(created);
      throw fromSystemError(error, path);
    }
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    this.check(path, options);
    await this.checkDirChain(dirnameRel(path));
    const info = await this.lstatOrThrow(path);
    if (!info.isFile()) throw new EscaleError('NotFound', `'${path}' is not a file`, { path });
    try {
      await unlink(this.abs(path));
    } catch (error) {
      throw fromSystemError(error, path);
    }
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    this.check(from, options);
    this.check(to, options);
    await this.checkDirChain(dirnameRel(from));
    const info = await this.lstatOrThrow(from);
    if (!info.isFile()) throw new EscaleError('NotFound', `'${from}' is not a file`, { path: from });
    const created: string[] = [];
    try {
      await this.ensureDirChain(dirnameRel(to), created);
      await this.refuseSpecialTarget(to, false);
      throwIfAborted(options.signal);
      await rename(this.abs(from), this.abs(to));
    } catch (error) {
      await removeCreated(created);
      throw fromSystemError(error, to);
    }
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    this.check(dir, options);
    await this.ensureDirChain(dir, []);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Removes the left-over temporaries among those one folder read found (see `removeLeftoverTemps`). */
  private async removeLeftovers(dir: RelayPath, temps: readonly ListedName[]): Promise<number> {
    if (temps.length === 0) return 0;
    return removeLeftoverTemps(temps, dir, {
      backend: this,
      staleAfterMs: this.staleTempMs,
      ...(this.logger === undefined ? {} : { logger: this.logger }),
      remove: async (name) => {
        const absPath = join(this.abs(dir), name);
        // why: only a regular file of ours goes; a name that became something else since is left.
        if (!(await lstat(absPath)).isFile()) return;
        await unlink(absPath);
      },
    });
  }

  /** Adds a temporary's size and mtime to `temps` (a temporary that vanished meanwhile is left out). */
  private noteTemp(dir: RelayPath, name: string, temps: ListedName[]): void {
    let info: Stats | undefined;
    try {
      info = lstatSync(join(this.abs(dir), name), { throwIfNoEntry: false });
    } catch (error) {
      this.logger?.debug(`cannot look at the upload temporary '${dir === '' ? name : `${dir}/${name}`}': ${(error as Error).message}`);
      return;
    }
    if (info?.isFile()) temps.push({ name, size: info.size, mtimeMs: Math.floor(info.mtimeMs) });
  }

  /**
   * Maps a directory entry to a listing entry, or undefined for what a listing must hide
   * (temporaries go to `temps`). A file that cannot be stat'ed (other than deleted since the folder
   * was read) goes to `options.onUnreadable`.
   */
  private describeDirent(parent: RelayPath, dirent: Dirent, temps: ListedName[], options: ListOptions): Entry | undefined {
    const name = dirent.name;
    if (FILE_TEMP_PATTERN.test(name)) {
      if (dirent.isFile()) this.noteTemp(parent, name, temps);
      return undefined;
    }
    // why: symlinks, sockets and devices are never relay content; following them could escape the root.
    if (!dirent.isFile() && !dirent.isDirectory()) return undefined;
    // why: a name that is no safe RelayPath (not UTF-8, control character, backslash) cannot be addressed back.
    const path = listedPath(parent, name, options);
    if (path === undefined) return undefined;
    if (dirent.isDirectory()) return { path, kind: 'dir', size: 0 };
    let info: Stats | undefined;
    try {
      // why: synchronous, as a promise round trip per entry cost ~10x the lstat itself in
      // listings of many files (W3); deleted since the folder was read: undefined.
      info = lstatSync(this.abs(path), { throwIfNoEntry: false });
    } catch (error) {
      // why: a folder replaced by a file since it was read is a removal too.
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      const translated = fromSystemError(error, path);
      options.onUnreadable?.(path, new EscaleError(translated.code, `cannot stat relay entry '${path}': ${translated.message}`, { path, cause: error }));
      return undefined;
    }
    if (info === undefined) return undefined;
    return info.isFile() ? fileEntry(path, info) : undefined;
  }

  /** Exclusive commit: hard link fails atomically on an existing target; falls back to check-then-rename. */
  private async commitExclusive(temp: string, path: RelayPath): Promise<void> {
    try {
      await link(temp, this.abs(path));
      await unlink(temp);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new EscaleError('AlreadyExists', `'${path}' exists`, { path, cause: error });
      // why: FAT, some SMB and FUSE mounts have no hard links (EPERM/ENOTSUP/EXDEV): best effort instead.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw error;
    }
    await this.refuseSpecialTarget(path, true);
    await rename(temp, this.abs(path));
  }

  /** Refuses a symlink or folder at `path`, and with `exclusive` any existing entry. */
  private async refuseSpecialTarget(path: RelayPath, exclusive: boolean): Promise<void> {
    let info: Stats;
    try {
      info = await lstat(this.abs(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fromSystemError(error, path);
    }
    if (info.isSymbolicLink()) throw symlinkRefused(path);
    if (info.isDirectory()) throw new EscaleError('AlreadyExists', `'${path}' is a folder`, { path });
    if (exclusive) throw new EscaleError('AlreadyExists', `'${path}' exists`, { path });
  }

  /** lstat that refuses symlinks and translates errors. */
  private async lstatOrThrow(path: RelayPath): Promise<Stats> {
    let info: Stats;
    try {
      info = await lstat(this.abs(path));
    } catch (error) {
      throw fromSystemError(error, path);
    }
    if (info.isSymbolicLink()) throw symlinkRefused(path);
    return info;
  }

  /**
   * Checks that `dir` and each of its ancestors is a real folder (no symlink). Throws NotFound
   * for a missing component, PermissionDenied for a symlink.
   */
  private async checkDirChain(dir: RelayPath): Promise<void> {
    if (dir === '') return;
    const parts = dir.split('/');
    for (let i = 1; i <= parts.length; i += 1) {
      const sub = parts.slice(0, i).join('/') as RelayPath;
      const info = await this.lstatOrThrow(sub);
      if (!info.isDirectory()) throw new EscaleError('NotFound', `'${sub}' is not a folder`, { path: sub });
    }
  }

  /** mkdir -p that refuses symlinks on the way; records the folders it made in `created`. */
  private async ensureDirChain(dir: RelayPath, created: string[]): Promise<void> {
    if (dir === '') return;
    const parts = dir.split('/');
    for (let i = 1; i <= parts.length; i += 1) {
      const sub = parts.slice(0, i).join('/') as RelayPath;
      const abs = this.abs(sub);
      let info: Stats | undefined;
      try {
        info = await lstat(abs);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(error, sub);
      }
      if (info === undefined) {
        try {
          await mkdir(abs);
          created.push(abs);
          continue;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(error, sub);
          info = await lstat(abs).catch((e: unknown) => {
            throw fromSystemError(e, sub);
          });
        }
      }
      if (info.isSymbolicLink()) throw symlinkRefused(sub);
      if (!info.isDirectory()) throw new EscaleError('AlreadyExists', `'${sub}' is a file, not a folder`, { path: sub });
    }
  }

  /** The absolute path of a relative path, checked to stay under the root. */
  private abs(path: RelayPath): string {
    if (path === '') return this.root;
    const full = join(this.root, path);
    if (!full.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) {
      throw new EscaleError('InvalidName', `'${path}' resolves outside the relay root`, { path });
    }
    return full;
  }

  private check(path: RelayPath, options: Op): void {
    if (this.closed) throw new EscaleError('Internal', `${this.id} is closed`);
    // why: the brand is a compile-time promise only; a hostile string must not reach the file system.
    if (!isRelayPath(path)) throw new EscaleError('InvalidName', `unsafe relay path ${JSON.stringify(path)}`, { path });
    throwIfAborted(options.signal);
  }
}

function fileEntry(path: RelayPath, info: Stats): Entry {
  return { path, kind: 'file', size: info.size, mtimeMs: Math.floor(info.mtimeMs) };
}

function symlinkRefused(path: string): EscaleError {
  return new EscaleError('PermissionDenied', `'${path}' is a symbolic link on the relay; escale never follows those`, { path });
}

/**
 * Reads a file handle chunk by chunk, translating errors and closing the handle at the end.
 * `sizeHint` (the size when opened) sizes the buffers, so that a small file costs a small buffer.
 */
async function* readChunks(handle: FileHandle, path: RelayPath, signal: AbortSignal | undefined, sizeHint: number): AsyncGenerator<Buffer> {
  let remaining = sizeHint;
  try {
    for (;;) {
      throwIfAborted(signal);
      // why: a 256 KiB buffer per read made every small lock or placeholder read allocate 512 KiB
      // (data, then the end-of-file read), and garbage collection dominated many-small-file rounds.
      const length = remaining > 0 ? Math.min(READ_CHUNK, remaining) : remaining === 0 ? EOF_PROBE : READ_CHUNK;
      const buffer = Buffer.allocUnsafe(length);
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, length, null));
      } catch (error) {
        throw fromSystemError(error, path);
      }
      if (bytesRead === 0) return;
      // why: after the expected end, a file that grew is read on with full chunks (-1 = unknown).
      remaining = remaining > bytesRead ? remaining - bytesRead : remaining === 0 || remaining < 0 ? -1 : 0;
      yield bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Writes the whole body to `handle`; an abort or a body failure throws. */
async function writeBody(handle: FileHandle, body: Readable | Uint8Array, signal: AbortSignal | undefined, path: RelayPath): Promise<void> {
  if (body instanceof Uint8Array) {
    await handle.writeFile(body);
    return;
  }
  // why: destroys a stalled body when the signal fires, so the loop below wakes up with an AbortError.
  if (signal) addAbortSignal(signal, body);
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      throwIfAborted(signal);
      await handle.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    }
  } catch (error) {
    if (signal?.aborted) throw new EscaleError('Aborted', 'put aborted', { path, cause: signal.reason });
    throw error;
  }
}

/** Removes the folders a failed call created, deepest first (only while they are empty). */
async function removeCreated(created: string[]): Promise<void> {
  for (const dir of [...created].reverse()) await rmdir(dir).catch(() => undefined);
}
