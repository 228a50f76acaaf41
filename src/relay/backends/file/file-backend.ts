import { constants as fsConstants, lstatSync } from 'node:fs';
import type { Dir, Dirent, Stats } from 'node:fs';
import { lstat, mkdir, opendir, realpath, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, sep } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { EscaleError, fromSystemError, throwIfAborted } from '../../../core/errors.js';
import { randomHex16 } from '../../../core/random-names.js';
import { WholeFile } from '../../../core/whole-file.js';
import type { Logger } from '../../../core/log.js';
import { namesDecodingTo } from '../../../system/raw-names.js';
import { dirnameRel, isRelayPath, type RelayPath } from '../../../core/relpath.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { RelayClock } from '../../relay-clock.js';
import { removeLeftoverTemps, type ListedName } from '../upload-temp.js';
import { CAN_LOCATE_OPEN_FILES, datasync, fileCalls, fileCallsFor, openedPath, POOLED_CALLS, type FileCalls } from './file-calls.js';

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
  /** Overrides `features.maxConnections` (default 16: calls wait for the disk, not for a server). */
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
  /**
   * Makes the calls on names and small files synchronously (true) or through the thread pool
   * (false); default: synchronous on a local file system of Linux (see `fileCallsFor`).
   */
  readonly synchronous?: boolean;
}

/** Files up to this size are read and written in one go (relay records, small data files). */
const SMALL_FILE_BYTES = 256 * 1024;
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
 * fdatasync, rename). Symlinks inside the relay are never followed: they are skipped in listings
 * and refused (PermissionDenied) by every call naming them or a path through them, so a hostile
 * relay cannot make escale read or write outside the root.
 *
 * Speed (issue 13): names and small files are handled with synchronous calls on a local disk
 * (`fileCallsFor`); files up to SMALL_FILE_BYTES are read and written in one go; the folders of a
 * path found real are remembered until the next listing (each round starts with one), and a get or
 * a put then locates the file it opened (`confine`), so that a folder replaced by a symlink within
 * the round is caught all the same; deletes and renames check every folder every time.
 *
 * Crash safety (the relay's machine loses power, or the file system is unmounted uncleanly): every
 * put writes a hidden temporary, flushes its content (fdatasync), then renames (or links) it into
 * place, so a name never shows a truncated or empty file after a crash: it shows the old content,
 * the new one, or (a new name) nothing. This holds for each kind of relay file:
 * - lock: an empty lock would read as one without owner, and a lock without owner is repaired
 *   after the lock timeout as an interrupted upload (its data and placeholder deleted); a lock of
 *   ours that survives a crash complete is repaired by us at the next start instead, without
 *   deleting a relay copy that a pull was reading;
 * - placeholder: an empty one would be junk (never downloaded), and the data beside it orphaned;
 * - data: it must be the bytes its placeholder describes once the lock goes; a reader never sees
 *   a partial file (0.7 clients read without checking sizes).
 * The metadata of later calls (the unlock after the data) is ordered after the earlier ones by the
 * file system's journal, so an unlock that survives a crash implies the data and placeholder did.
 */
export class FileBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;
  private readonly staleTempMs: number;
  private readonly logger: Logger | undefined;
  private readonly calls: FileCalls;
  /** Folders (relative) found to be real folders, not symlinks, since the last listing (see `checkDirChain`). */
  private readonly realFolders = new Set<string>();
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
    this.features = { maxConnections: options.maxConnections ?? 16, mtimePrecisionMs: 1, renameOverwrites: true, recursiveList: true };
    this.staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS;
    this.clock = options.clock ?? new RelayClock();
    this.logger = options.logger;
    this.calls = options.synchronous === undefined ? fileCallsFor(root) : fileCalls(options.synchronous);
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
    // why: a listing starts a round; the folders remembered in the last one are looked at again.
    this.realFolders.clear();
    try {
      await this.checkDirChain(dir, false);
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
    await this.checkDirChain(dirnameRel(path), true);
    const info = await this.lstatOrThrow(path);
    if (info.isFile()) return fileEntry(path, info);
    if (info.isDirectory()) return { path, kind: 'dir', size: 0, mtimeMs: Math.floor(info.mtimeMs) };
    throw new EscaleError('NotFound', `'${path}' is neither a file nor a folder`, { path });
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    this.check(path, options);
    const dir = dirnameRel(path);
    await this.checkDirChain(dir, true);
    const { calls } = this;
    let fd: number;
    try {
      // why: O_NOFOLLOW makes the kernel refuse a symlink as the last component (ELOOP), race-free;
      // O_NONBLOCK keeps a FIFO put there from blocking the open.
      fd = await calls.open(this.abs(path), READ_FLAGS);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(path);
      throw this.forgetOnMissing(fromSystemError(error, path), dir);
    }
    let size: number;
    let whole: { data: Buffer; complete: boolean } | undefined;
    try {
      await this.confine(fd, path, dir);
      const info = await calls.fstat(fd);
      if (!info.isFile()) throw new EscaleError('NotFound', `'${path}' is not a file`, { path });
      throwIfAborted(options.signal);
      size = info.size;
      // why: a record or a small file is read in one go: no stream of chunks, one read (and one to see the end).
      if (size <= SMALL_FILE_BYTES) whole = await readWhole(calls, fd, size);
    } catch (error) {
      await closeQuietly(calls, fd);
      throw fromSystemError(error, path);
    }
    if (whole !== undefined && whole.complete) {
      await closeQuietly(calls, fd);
      return new WholeFile(whole.data);
    }
    const signal = options.signal;
    const stream = Readable.from(readChunks(fd, path, signal, size, whole?.data), { objectMode: false });
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

  /** The put itself: hidden temporary, fdatasync, rename (or link for `exclusive`); see the class comment. */
  private async write(path: RelayPath, body: Readable | Uint8Array, options: PutOptions): Promise<Entry> {
    this.check(path, options);
    if (path === '') throw new EscaleError('InvalidName', 'cannot put the relay root', { path });
    const { calls } = this;
    const dir = dirnameRel(path);
    const created: string[] = [];
    const temp = join(this.abs(dir), `.escale-put-${randomHex16()}.tmp`);
    let fd: number | undefined;
    let tempExists = false;
    try {
      await this.ensureDirChain(dir, created);
      // why: an exclusive put links, which refuses any existing entry (a symlink or a folder too) by itself.
      if (options.exclusive !== true) await this.refuseSpecialTarget(path, false);
      fd = await calls.open(temp, WRITE_NEW_FLAGS, 0o666);
      tempExists = true;
      await this.confine(fd, temp, dir);
      await writeBody(calls, fd, body, options.signal, path);
      if (options.durable !== false) await datasync(fd);
      // why: the size and mtime of what was written; a rename or link changes neither.
      const info = await calls.fstat(fd);
      const closing = fd;
      fd = undefined;
      await calls.close(closing);
      throwIfAborted(options.signal);
      if (options.exclusive) await this.commitExclusive(temp, path);
      else await calls.rename(temp, this.abs(path));
      tempExists = false;
      return fileEntry(path, info);
    } catch (error) {
      if (fd !== undefined) await closeQuietly(calls, fd);
      if (tempExists) await unlinkQuietly(calls, temp);
      await this.removeCreated(created);
      throw fromSystemError(error, path);
    }
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    this.check(path, options);
    // why: a removal is never made through a folder only remembered as checked (see `checkDirChain`).
    await this.checkDirChain(dirnameRel(path), false);
    const info = await this.lstatOrThrow(path);
    if (!info.isFile()) throw new EscaleError('NotFound', `'${path}' is not a file`, { path });
    try {
      await this.calls.unlink(this.abs(path));
    } catch (error) {
      throw fromSystemError(error, path);
    }
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    this.check(from, options);
    this.check(to, options);
    await this.checkDirChain(dirnameRel(from), false);
    const info = await this.lstatOrThrow(from);
    if (!info.isFile()) throw new EscaleError('NotFound', `'${from}' is not a file`, { path: from });
    const created: string[] = [];
    try {
      await this.ensureDirChain(dirnameRel(to), created, false);
      await this.refuseSpecialTarget(to, false);
      throwIfAborted(options.signal);
      await this.calls.rename(this.abs(from), this.abs(to));
    } catch (error) {
      await this.removeCreated(created);
      throw fromSystemError(error, to);
    }
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    this.check(dir, options);
    await this.ensureDirChain(dir, [], false);
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
    const { calls } = this;
    try {
      await calls.link(temp, this.abs(path));
      await calls.unlink(temp);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new EscaleError('AlreadyExists', `'${path}' exists`, { path, cause: error });
      // why: FAT, some SMB and FUSE mounts have no hard links (EPERM/ENOTSUP/EXDEV): best effort instead.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw error;
    }
    await this.refuseSpecialTarget(path, true);
    await calls.rename(temp, this.abs(path));
  }

  /** Refuses a symlink or folder at `path`, and with `exclusive` any existing entry. */
  private async refuseSpecialTarget(path: RelayPath, exclusive: boolean): Promise<void> {
    let info: Stats | undefined;
    try {
      info = await this.calls.lstatIfAny(this.abs(path));
    } catch (error) {
      throw fromSystemError(error, path);
    }
    if (info === undefined) return;
    if (info.isSymbolicLink()) throw symlinkRefused(path);
    if (info.isDirectory()) throw new EscaleError('AlreadyExists', `'${path}' is a folder`, { path });
    if (exclusive) throw new EscaleError('AlreadyExists', `'${path}' exists`, { path });
  }

  /** lstat that refuses symlinks and translates errors. */
  private async lstatOrThrow(path: RelayPath): Promise<Stats> {
    let info: Stats;
    try {
      info = await this.calls.lstat(this.abs(path));
    } catch (error) {
      throw fromSystemError(error, path);
    }
    if (info.isSymbolicLink()) throw symlinkRefused(path);
    return info;
  }

  /**
   * Checks that `dir` and each of its ancestors is a real folder (no symlink). Throws NotFound
   * for a missing component, PermissionDenied for a symlink. With `remembered`, folders found real
   * earlier in this round (since the last listing) are not looked at again: only for calls whose
   * opened file is located afterwards (`confine`), so that a folder replaced by a symlink since
   * is still caught; where open files cannot be located, every call looks at every folder.
   */
  private async checkDirChain(dir: RelayPath, remembered: boolean): Promise<void> {
    if (dir === '') return;
    const useMemory = remembered && CAN_LOCATE_OPEN_FILES;
    if (useMemory && this.realFolders.has(dir)) return;
    let sub = '';
    for (const part of dir.split('/')) {
      sub = sub === '' ? part : `${sub}/${part}`;
      if (useMemory && this.realFolders.has(sub)) continue;
      const info = await this.lstatOrThrow(sub as RelayPath);
      if (!info.isDirectory()) throw new EscaleError('NotFound', `'${sub}' is not a folder`, { path: sub });
      this.realFolders.add(sub);
    }
  }

  /** mkdir -p that refuses symlinks on the way; records the folders it made in `created` (see `checkDirChain` for `remembered`). */
  private async ensureDirChain(dir: RelayPath, created: string[], remembered = true): Promise<void> {
    if (dir === '') return;
    const useMemory = remembered && CAN_LOCATE_OPEN_FILES;
    if (useMemory && this.realFolders.has(dir)) return;
    const { calls } = this;
    let sub = '';
    for (const part of dir.split('/')) {
      sub = sub === '' ? part : `${sub}/${part}`;
      if (useMemory && this.realFolders.has(sub)) continue;
      const abs = this.abs(sub as RelayPath);
      let info: Stats | undefined;
      try {
        info = await calls.lstat(abs);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(error, sub);
      }
      if (info === undefined) {
        try {
          await calls.mkdir(abs);
          created.push(abs);
          this.realFolders.add(sub);
          continue;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(error, sub);
          try {
            info = await calls.lstat(abs);
          } catch (again) {
            throw fromSystemError(again, sub);
          }
        }
      }
      if (info.isSymbolicLink()) throw symlinkRefused(sub);
      if (!info.isDirectory()) throw new EscaleError('AlreadyExists', `'${sub}' is a file, not a folder`, { path: sub });
      this.realFolders.add(sub);
    }
  }

  /**
   * Makes sure the file just opened as `path` (relative, or the absolute path of a temporary) in
   * folder `dir` is where its name says: the kernel's path of the open descriptor must be that
   * path. Otherwise a folder on the way was replaced by a symlink after it was checked: the
   * remembered folders are forgotten and the chain is checked again (PermissionDenied for a
   * symlink); a file found outside the root is refused even when the chain looks right by then.
   * Where open files cannot be located, the chain was checked in full just before.
   */
  private async confine(fd: number, path: string, dir: RelayPath): Promise<void> {
    const expected = isAbsolute(path) ? path : this.abs(path as RelayPath);
    const actual = openedPath(fd);
    if (actual === undefined || actual === expected) return;
    this.realFolders.clear();
    await this.checkDirChain(dir, false);
    if (!actual.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) {
      if (isAbsolute(path)) await unlinkQuietly(this.calls, actual);
      throw new EscaleError('PermissionDenied', `'${isAbsolute(path) ? dir : path}' led outside the relay folder when it was opened (a folder was replaced by a symbolic link); escale never follows those`, { path: dir });
    }
  }

  /** A NotFound for a path means its folders may have changed: they are looked at again next time. */
  private forgetOnMissing(error: EscaleError, dir: RelayPath): EscaleError {
    if (error.code === 'NotFound' && dir !== '') this.realFolders.clear();
    return error;
  }

  /** Removes the folders a failed call created, deepest first (only while they are empty). */
  private async removeCreated(created: readonly string[]): Promise<void> {
    if (created.length > 0) this.realFolders.clear();
    for (const dir of [...created].reverse()) {
      try {
        await this.calls.rmdir(dir);
      } catch {
        // why: a folder another call filled meanwhile stays; it is a folder of the relay like any other.
      }
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

/** Open flags of a get: read only, never through a symlink, never blocking on a FIFO. */
const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/** Open flags of an upload temporary: a new file (O_EXCL also refuses a symlink of that name). */
const WRITE_NEW_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL;

/**
 * Reads an open file of `size` bytes in one go. `complete` is false when it had grown past what
 * was read (the rest is then streamed after `data`).
 */
async function readWhole(calls: FileCalls, fd: number, size: number): Promise<{ data: Buffer; complete: boolean }> {
  // why: the probe past the size finds the end in the same read, and a file that grew is noticed.
  const buffer = Buffer.allocUnsafe(size + EOF_PROBE);
  let filled = 0;
  for (;;) {
    const got = await calls.read(fd, buffer, filled, buffer.length - filled);
    if (got === 0) return { data: buffer.subarray(0, filled), complete: true };
    filled += got;
    if (filled === buffer.length) return { data: buffer, complete: false };
  }
}

/**
 * Reads an open file chunk by chunk through the thread pool (after `first`, already read),
 * translating errors and closing the descriptor at the end. `sizeHint` (the size when opened)
 * sizes the buffers, so that a small file costs a small buffer.
 */
async function* readChunks(fd: number, path: RelayPath, signal: AbortSignal | undefined, sizeHint: number, first?: Buffer): AsyncGenerator<Buffer> {
  let remaining = first === undefined ? sizeHint : -1;
  try {
    if (first !== undefined) yield first;
    for (;;) {
      throwIfAborted(signal);
      // why: a 256 KiB buffer per read made every small lock or placeholder read allocate 512 KiB
      // (data, then the end-of-file read), and garbage collection dominated many-small-file rounds.
      const length = remaining > 0 ? Math.min(READ_CHUNK, remaining) : remaining === 0 ? EOF_PROBE : READ_CHUNK;
      const buffer = Buffer.allocUnsafe(length);
      let bytesRead: number;
      try {
        bytesRead = await POOLED_CALLS.read(fd, buffer, 0, length);
      } catch (error) {
        throw fromSystemError(error, path);
      }
      if (bytesRead === 0) return;
      // why: after the expected end, a file that grew is read on with full chunks (-1 = unknown).
      remaining = remaining > bytesRead ? remaining - bytesRead : remaining === 0 || remaining < 0 ? -1 : 0;
      yield bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await closeQuietly(POOLED_CALLS, fd);
  }
}

/**
 * Writes the whole body to `fd`; an abort or a body failure throws. A buffer is written with the
 * backend's calls (synchronous on a local disk); a stream through the thread pool, so that writing
 * overlaps with whatever produces it (encryption).
 */
async function writeBody(calls: FileCalls, fd: number, body: Readable | Uint8Array, signal: AbortSignal | undefined, path: RelayPath): Promise<void> {
  if (body instanceof Uint8Array) {
    await writeAll(body.byteLength > SMALL_FILE_BYTES ? POOLED_CALLS : calls, fd, body);
    return;
  }
  // why: destroys a stalled body when the signal fires, so the loop below wakes up with an AbortError.
  if (signal) addAbortSignal(signal, body);
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      throwIfAborted(signal);
      await writeAll(POOLED_CALLS, fd, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    }
  } catch (error) {
    if (signal?.aborted) throw new EscaleError('Aborted', 'put aborted', { path, cause: signal.reason });
    throw error;
  }
}

/** Writes all of `data` (write(2) may write less than asked). */
async function writeAll(calls: FileCalls, fd: number, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength; ) offset += await calls.write(fd, data, offset, data.byteLength - offset);
}

async function closeQuietly(calls: FileCalls, fd: number): Promise<void> {
  try {
    await calls.close(fd);
  } catch {
    // why: a close that fails after a failed call adds nothing to the error being reported.
  }
}

async function unlinkQuietly(calls: FileCalls, path: string): Promise<void> {
  try {
    await calls.unlink(path);
  } catch {
    // why: a temporary that cannot be removed is hidden from listings and removed once stale.
  }
}
