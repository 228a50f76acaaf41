import { spawn } from 'node:child_process';
import { chmodSync, closeSync, createReadStream, fchmodSync, fsync, futimesSync, lstatSync, mkdirSync, openSync, readdirSync, realpathSync, renameSync, statSync, utimesSync, writeSync, writev, fdatasync, type Stats } from 'node:fs';
import { lstat, opendir, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';
import { randomHex16 } from '../core/random-names.js';
import { takeWhole } from '../core/whole-file.js';
import { basenameRel, dirnameRel, type RelayPath, type RelPath } from '../core/relpath.js';
import { createChecksum, hashFile, LOCAL_READ_BUFFER, nodeHashName } from './checksum.js';
import { identityOf, type FileIdentity } from './file-identity.js';

/** Prefix of the temporary files written next to their target (hidden from the scanner by the dot). */
export const TEMPORARY_PREFIX = '.escale-';

const TEMPORARY_NAME = /^\.escale-[0-9a-f]{16}\.tmp$/;

/** Whether `name` is the name of one of the writer's temporary files. */
export function isTemporaryName(name: string): boolean {
  return TEMPORARY_NAME.test(name);
}

/** The state of the target file when it was scanned: its size and mtime, or null when it did not exist. */
export type ExpectedPrior = { readonly size: number; readonly mtimeMs: number } | null;

/** Options of `writeFileAtomically`. */
export interface WriteFileOptions {
  /** Absolute path of the local root (created when missing, unless `createRoot` is false). */
  readonly root: string;
  /**
   * The real path of `root` when the caller resolved it already (once per round, instead of once
   * per file); the folders below it are checked all the same.
   */
  readonly resolvedRoot?: string;
  /**
   * False: a missing root is NotFound instead of being created (the daemon's local root guard
   * creates it once; a root that vanished later, e.g. an unmounted disk, must not be recreated).
   */
  readonly createRoot?: boolean;
  /** Where the file goes, relative to the root. */
  readonly path: RelPath;
  /**
   * The path as the target is spelled on disk, when it differs from `path` (a name stored in NFD):
   * the file is written there, so that the user's spelling stays and no second file appears.
   */
  readonly diskPath?: string;
  /** The content (plaintext). */
  readonly source: Readable | AsyncIterable<Uint8Array>;
  /** Hash to compute while writing (Python or Node name); null or absent: none. */
  readonly algorithm?: string | null;
  /** Lowercase hex digest the content must have (needs `algorithm`). */
  readonly expectedChecksum?: string;
  /** Modification time to give the file, in integer POSIX seconds (atime becomes now). */
  readonly mtimeSec?: number;
  /** The target as it was scanned; the write is refused (Conflict) if it changed since. */
  readonly expectedPrior: ExpectedPrior;
  readonly signal?: AbortSignal;
}

/**
 * What `writeFileAtomically` wrote: the identity of the file now in place (stat taken after its
 * mtime was set and it was renamed), and its checksum.
 */
export interface WriteFileResult extends FileIdentity {
  /** Lowercase hex digest of the content, when an algorithm was given. */
  readonly checksum?: string;
}

function isInside(realRoot: string, realPath: string): boolean {
  return realPath === realRoot || realPath.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

/**
 * Creates the folders of `relDir` below `root` one by one and returns the real path of the last.
 * A symbolic link on the way is followed only when it resolves inside the root (PermissionDenied
 * otherwise), so a download never creates or writes anything outside the local root.
 */
// why: synchronous calls (as in the scanner): a pull of 10,000 small files made one thread-pool
// round trip per folder level and file; each costs more than the local system call it wraps.
function ensureFolder(root: string, realRoot: string, relDir: string): string {
  let current = realRoot;
  if (relDir === '') return current;
  for (const segment of relDir.split('/')) {
    let next = join(current, segment);
    let info: Stats;
    try {
      info = lstatSync(next);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(error, next);
      // why: a folder the user has in another Unicode form (NFD) receives the file; no NFC twin folder is made.
      const twin = otherSpelling(current, segment);
      if (twin !== undefined) next = join(current, twin);
      else {
        try {
          mkdirSync(next);
        } catch (mkdirError) {
          if ((mkdirError as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(mkdirError, next);
        }
      }
      info = lstatSync(next);
    }
    if (info.isSymbolicLink()) {
      let resolved: string;
      try {
        resolved = realpathSync.native(next);
      } catch (error) {
        throw fromSystemError(error, next);
      }
      if (!isInside(realRoot, resolved)) {
        throw new EscaleError('PermissionDenied', `refusing to write through ${next}: it is a symbolic link leading outside the local root ${root}`, { path: next });
      }
      info = statSync(resolved);
      current = resolved;
    } else {
      current = next;
    }
    if (!info.isDirectory()) {
      throw new EscaleError('AlreadyExists', `cannot create folder ${next}: a file of that name is in the way`, { path: next });
    }
  }
  return current;
}

/** The name of an entry of `folder` that is `name` in another Unicode form, or undefined (also when `name` is ASCII). */
function otherSpelling(folder: string, name: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- why: an ASCII name has a single spelling
  if (/^[\x00-\x7f]*$/.test(name)) return undefined;
  const key = name.normalize('NFC');
  try {
    return readdirSync(folder).find((entry) => entry !== name && entry.normalize('NFC') === key);
  } catch {
    return undefined;
  }
}

/** Up to this many bytes of a download are written with synchronous calls; the rest of a larger file through the thread pool. */
const SYNC_WRITE_BYTES = 256 * 1024;

/** Writes all of `chunk` at the current position, synchronously (write(2) may write less than asked). */
function writeAllSync(fd: number, chunk: Uint8Array): void {
  for (let offset = 0; offset < chunk.length; ) offset += writeSync(fd, chunk, offset, chunk.length - offset);
}

/** Writes the buffers one after the other at `position` through the thread pool (pwritev(2) may write less than asked). */
async function writeAllAt(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let at = position;
  while (rest.length > 0) {
    const bytesWritten = await new Promise<number>((resolve, reject) => writev(fd, rest, at, (error, written) => (error ? reject(error) : resolve(written))));
    at += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) skip -= (rest.shift() as Buffer).length;
    if (skip > 0) rest = [(rest[0] as Buffer).subarray(skip), ...rest.slice(1)];
  }
}

/** Writes in flight at most: the next chunks are hashed (and decrypted upstream) while these run. */
const WRITES_IN_FLIGHT = 4;
/** Chunks are gathered into one write of about this size (a write through the thread pool costs). */
const WRITE_BYTES = 1024 * 1024;
/** Bytes written between two early `fdatasync`s of a big file (see `PooledWriter`). */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * Writes the bulk of a large download at increasing offsets of `fd`: chunks are gathered into
 * writes of WRITE_BYTES, and up to WRITES_IN_FLIGHT writes run on the thread pool while the caller
 * hashes the next chunks; a failed write fails the next `add` or the `end`. A big file is also
 * `fdatasync`ed every EARLY_SYNC_BYTES in the background, so that the disk works during the
 * transfer instead of all at the final `fsync` (which stays: the file is renamed into place only
 * after it, so crash safety is unchanged).
 */
class PooledWriter {
  private readonly writes: Array<Promise<void>> = [];
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private failure: unknown;
  private early: Promise<void> | undefined;
  private syncedUpTo = 0;

  constructor(
    private readonly fd: number,
    private written: number,
  ) {}

  /** Takes the next chunk; resolves once there is room for more. */
  async add(chunk: Buffer): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.gathered.push(chunk);
    this.gatheredBytes += chunk.length;
    if (this.gatheredBytes < WRITE_BYTES) return;
    this.issue();
    if (this.writes.length >= WRITES_IN_FLIGHT) await this.writes.shift();
  }

  /** Writes what is gathered and waits for every write; throws the first failure. */
  async end(): Promise<void> {
    if (this.failure === undefined) this.issue();
    await this.settled();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for every write and sync still running (the caller closes and removes the file next). */
  settled(): Promise<unknown> {
    return Promise.allSettled(this.early === undefined ? this.writes : [...this.writes, this.early]);
  }

  private issue(): void {
    if (this.gathered.length === 0) return;
    const write = writeAllAt(this.fd, this.gathered, this.written);
    write.catch((error: unknown) => (this.failure ??= error));
    this.writes.push(write);
    this.written += this.gatheredBytes;
    this.gathered = [];
    this.gatheredBytes = 0;
    if (this.early === undefined && this.written - this.syncedUpTo >= EARLY_SYNC_BYTES) {
      this.syncedUpTo = this.written;
      // why: best effort: only the final fsync's success counts.
      this.early = new Promise<void>((resolve) => fdatasync(this.fd, () => resolve())).finally(() => (this.early = undefined));
    }
  }
}

/** Flushes a file (content, size, mtime and mode) to stable storage through the thread pool. */
function fsyncFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
}

/** Why the target no longer matches its scanned state, or undefined when it does. */
function priorMismatch(target: string, expected: ExpectedPrior): string | undefined {
  let info: Stats;
  try {
    info = statSync(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(error, target);
    return expected === null ? undefined : 'it was deleted';
  }
  // why: a folder (or a pipe) in the way is no passing change: a failure of this file, tracked and retried, never a silent deferral each round.
  if (!info.isFile()) throw new EscaleError('AlreadyExists', `cannot write file ${target}: a ${info.isDirectory() ? 'folder' : 'special file'} of that name is in the way`, { path: target });
  if (expected === null) return 'it was created';
  if (info.size !== expected.size || info.mtimeMs !== expected.mtimeMs) return 'it was modified';
  return undefined;
}

/**
 * Creates the local root (with `createRoot`) and the folders leading to `path` (never through a
 * symlink that leaves the root); returns the folder and the full target path. `path` is the disk
 * spelling (safe: a RelPath or a name the scanner read from the disk).
 */
function targetFolder(root: string, path: string, createRoot: boolean, resolvedRoot: string | undefined): { folder: string; target: string } {
  let realRoot: string;
  try {
    if (createRoot) mkdirSync(root, { recursive: true });
    realRoot = resolvedRoot ?? realpathSync.native(root);
  } catch (error) {
    throw fromSystemError(error, root);
  }
  const folder = ensureFolder(root, realRoot, dirnameRel(path as RelayPath));
  const target = join(folder, basenameRel(path as RelayPath));
  let info: Stats | undefined;
  try {
    info = lstatSync(target, { throwIfNoEntry: false });
  } catch (error) {
    throw fromSystemError(error, target);
  }
  if (info === undefined || !info.isSymbolicLink()) return { folder, target };
  // why: a symbolic link to a file is followed, as the scanner follows it: the download replaces
  // its target, and the link stays. Like a link to a folder, only when it leads inside the root.
  let resolved: string;
  try {
    resolved = realpathSync.native(target);
  } catch (error) {
    // why: a dangling link has no target to write: the download takes its place, as a new file would.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { folder, target };
    throw fromSystemError(error, target);
  }
  if (!isInside(realRoot, resolved)) {
    throw new EscaleError('PermissionDenied', `refusing to write through ${target}: it is a symbolic link leading outside the local root ${root}`, { path: target });
  }
  return { folder: dirname(resolved), target: resolved };
}

/**
 * Writes a downloaded file into place atomically: the content goes to a hidden temporary file
 * (`.escale-<random>.tmp`) in the target's folder while it is hashed; it is synced, its mtime set,
 * and then renamed over the target, so readers see the old file or the complete new one.
 *
 * Crash safety (the machine loses power): the content, mtime and mode of the temporary are flushed
 * (fsync) before the rename, so that after a crash the name shows the old file or the complete new
 * one, never an empty or partial file (a new name's blocks may otherwise be written after the
 * rename is); the folder is flushed after the rename before this returns (one flush shared by the
 * downloads into a folder that wait at the same time), so that the caller may then give up the
 * relay copy, perhaps the last one elsewhere, knowing the file survives a crash. Small files are
 * written with synchronous calls, and only the two flushes go through the thread pool.
 *
 * Refused without touching the target:
 * - Integrity: the content's checksum differs from `expectedChecksum`;
 * - Conflict: the target changed since it was scanned (`expectedPrior`); a change between this
 *   check and the rename (microseconds) cannot be detected;
 * - PermissionDenied: a folder on the way is a symbolic link leading outside the root;
 * - DiskFull (ENOSPC), Aborted (signal), and the source's own errors.
 * In every failure case the temporary file is removed. Folders are created as needed (they stay).
 * A replaced file's permission bits are kept.
 */
export async function writeFileAtomically(options: WriteFileOptions): Promise<WriteFileResult> {
  // why: the source may already flow (a download) and fail while the folder and the temporary file
  // are prepared; its error is held for us instead of escaping as an uncaught exception.
  const stream = options.source instanceof Readable ? options.source : undefined;
  let heldError: unknown;
  const hold = (error: unknown): void => {
    heldError ??= error;
  };
  stream?.on('error', hold);
  try {
    return await writeHeldSource(options, () => heldError);
  } catch (error) {
    stream?.destroy(); // why: a source we never read must not keep its connection open.
    throw error;
  } finally {
    stream?.off('error', hold);
  }
}

async function writeHeldSource(options: WriteFileOptions, sourceFailure: () => unknown): Promise<WriteFileResult> {
  const { root, path, signal } = options;
  throwIfAborted(signal);
  if (options.expectedChecksum !== undefined && !options.algorithm) {
    throw new EscaleError('Internal', 'an expected checksum needs an algorithm', { path });
  }
  const hash = options.algorithm ? createChecksum(options.algorithm) : undefined;
  const { folder, target } = targetFolder(root, options.diskPath ?? path, options.createRoot ?? true, options.resolvedRoot);
  const temp = join(folder, `${TEMPORARY_PREFIX}${randomHex16()}.tmp`);
  let fd: number | undefined;
  let pooled: PooledWriter | undefined;
  try {
    // why: private until complete: the content may be a secret (a configuration with a password)
    // and must not be readable by others while it is written; the final mode is set before the rename.
    fd = openSync(temp, 'wx', 0o600);
    if (sourceFailure() !== undefined) throw sourceFailure();
    const whole = takeWhole(options.source);
    if (whole !== undefined) {
      // why: content read in full by the relay (a small file) is written in one go.
      hash?.update(whole);
      writeAllSync(fd, whole);
    } else {
      // why: a source that stalls is woken up by the abort (its iteration then fails).
      if (signal !== undefined && options.source instanceof Readable) addAbortSignal(signal, options.source);
      let written = 0;
      for await (const chunk of options.source as AsyncIterable<Buffer>) {
        throwIfAborted(signal);
        hash?.update(chunk);
        // why: a small file costs a few synchronous calls; the thread pool is for the bulk of large ones.
        if (pooled === undefined && written + chunk.length <= SYNC_WRITE_BYTES) writeAllSync(fd, chunk);
        else await (pooled ??= new PooledWriter(fd, written)).add(chunk);
        written += chunk.length;
      }
      await pooled?.end();
    }
    throwIfAborted(signal);
    const checksum = hash?.digest('hex');
    if (options.expectedChecksum !== undefined && checksum !== options.expectedChecksum.toLowerCase()) {
      throw new EscaleError('Integrity', `downloaded content of ${path} does not match its checksum (expected ${options.expectedChecksum}, got ${checksum})`, { path });
    }
    if (options.mtimeSec !== undefined) futimesSync(fd, new Date(), options.mtimeSec);
    // why: a replaced file keeps its permissions (an executable script stays executable); a new one gets the usual mode.
    fchmodSync(fd, options.expectedPrior !== null ? modeOf(target) : 0o666 & ~process.umask());
    // why: content, mtime and mode are on disk before the name shows the file (see the crash argument above).
    await fsyncFile(fd);
    closeSync(fd);
    fd = undefined;
    throwIfAborted(signal);
    const mismatch = priorMismatch(target, options.expectedPrior);
    if (mismatch !== undefined) {
      throw new EscaleError('Conflict', `${path} changed locally since it was scanned (${mismatch}); not overwritten`, { path });
    }
    renameSync(temp, target);
    await folderSyncs.sync(folder);
    const placed = identityOf(statSync(target, { bigint: true }));
    return checksum === undefined ? placed : { ...placed, checksum };
  } catch (error) {
    // why: no write may still be running when the file is closed and removed.
    await pooled?.settled();
    if (fd !== undefined) closeQuietly(fd);
    await unlink(temp).catch(() => undefined);
    if (signal?.aborted && !(error instanceof EscaleError && error.code === 'Aborted')) throw new EscaleError('Aborted', 'download aborted', { path, cause: error });
    throw fromSystemError(error, path);
  }
}

/** The permission bits of the file a download replaces (0666 minus umask when it is gone meanwhile). */
function modeOf(target: string): number {
  try {
    return statSync(target).mode & 0o7777;
  } catch {
    return 0o666 & ~process.umask();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // why: a close failing after a failed write adds nothing to the error reported.
  }
}

/**
 * Makes renames in a folder durable (fsync of the folder), one flush for many: a caller waits for
 * a flush that started after its call, so that concurrent downloads into one folder share one
 * (best effort: some file systems refuse to sync a folder).
 */
class FolderSyncs {
  private readonly folders = new Map<string, { running: Promise<void>; waiting?: Promise<void> }>();

  /** Resolves once a flush of `folder` that started after this call has finished. */
  sync(folder: string): Promise<void> {
    const entry = this.folders.get(folder);
    if (entry === undefined) return this.start(folder);
    // why: the flush running now may have started before the caller's rename: it waits for the next one.
    entry.waiting ??= entry.running.then(() => this.start(folder));
    return entry.waiting;
  }

  private start(folder: string): Promise<void> {
    const running = syncFolder(folder).finally(() => {
      const entry = this.folders.get(folder);
      if (entry?.running === running && entry.waiting === undefined) this.folders.delete(folder);
    });
    this.folders.set(folder, { running });
    return running;
  }
}

const folderSyncs = new FolderSyncs();

/** Makes a rename durable by syncing its folder (best effort: some file systems refuse). */
async function syncFolder(folder: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(folder, 'r');
  } catch {
    return;
  }
  try {
    await fsyncFile(fd);
  } catch {
    // why: the rename already happened; only its durability across a power cut is in question.
  } finally {
    closeQuietly(fd);
  }
}

/** Options of `cleanStaleTemporaries`. */
export interface CleanOptions {
  /** Remove only temporaries last modified at least this long ago (milliseconds); 0 (default) removes all. */
  readonly olderThanMs?: number;
  /** Clock for the age test (tests). */
  readonly now?: number;
  readonly signal?: AbortSignal;
  /** Receives folders that cannot be read and files that cannot be removed; the cleaning goes on. */
  readonly onError?: (path: string, error: EscaleError) => void;
}

/**
 * Removes the writer's temporary files (`.escale-<16 hex>.tmp`) left below `root` by a crash and
 * returns how many were removed. Use `olderThanMs: 0` at startup (no write is running) and an age
 * while downloads may be in progress. Does not follow symbolic links nor enter dot folders
 * (the writer never creates temporaries there). A missing root removes nothing.
 */
export async function cleanStaleTemporaries(root: string, options: CleanOptions = {}): Promise<number> {
  const limit = (options.now ?? Date.now()) - (options.olderThanMs ?? 0);
  const report = options.onError ?? (() => undefined);
  let removed = 0;
  const visit = async (folder: string): Promise<void> => {
    throwIfAborted(options.signal);
    let dir;
    try {
      dir = await opendir(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') report(folder, fromSystemError(error, folder));
      return;
    }
    try {
      for await (const entry of dir) {
        throwIfAborted(options.signal);
        const full = join(folder, entry.name);
        if (entry.isFile() && isTemporaryName(entry.name)) {
          try {
            const info = await lstat(full);
            if ((options.olderThanMs ?? 0) > 0 && info.mtimeMs > limit) continue;
            await unlink(full);
            removed++;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOENT') report(full, fromSystemError(error, full));
          }
        } else if (entry.isDirectory() && !entry.name.startsWith('.')) {
          await visit(full);
        }
      }
    } catch (error) {
      if (error instanceof EscaleError && error.code === 'Aborted') throw error;
      report(folder, fromSystemError(error, folder));
    }
  };
  await visit(root);
  return removed;
}

/** Options of `adoptFileAtomically`. */
export interface AdoptFileOptions {
  /** Absolute path of the local root. */
  readonly root: string;
  /** As in WriteFileOptions. */
  readonly resolvedRoot?: string;
  /** As in WriteFileOptions. */
  readonly createRoot?: boolean;
  /** Where the file goes, relative to the root. */
  readonly path: RelPath;
  /** The path as the target is spelled on disk, when it differs from `path` (see `WriteFileOptions.diskPath`). */
  readonly diskPath?: string;
  /** Absolute path of a finished private file on the same file system (it is renamed, not copied). */
  readonly tempFile: string;
  /** Hash to compute over the file (Python or Node name); null or absent: none. */
  readonly algorithm?: string | null;
  /** Lowercase hex digest the content must have (needs `algorithm`). */
  readonly expectedChecksum?: string;
  /**
   * The digest of `tempFile` when the caller computed it while writing that private file (e.g. while
   * extracting it); used instead of reading the file again when its algorithm is `algorithm`.
   */
  readonly contentChecksum?: { readonly algorithm: string; readonly digest: string };
  /** Modification time to give the file, in integer POSIX seconds. */
  readonly mtimeSec?: number;
  /** The target as it was scanned; the move is refused (Conflict) if it changed since. */
  readonly expectedPrior: ExpectedPrior;
  readonly signal?: AbortSignal;
}

/**
 * Moves a finished private file (an extracted archive member) into place with the checks of
 * `writeFileAtomically` (checksum, unchanged target, no symbolic link leading out of the root),
 * by rename instead of a copy, and without syncing: the caller makes a batch durable at once
 * (`syncFileSystem`). Falls back to `writeFileAtomically` when the rename crosses file systems.
 * On refusal the private file is left where it was.
 */
export async function adoptFileAtomically(options: AdoptFileOptions): Promise<WriteFileResult> {
  const { root, path, tempFile, signal } = options;
  throwIfAborted(signal);
  if (options.expectedChecksum !== undefined && !options.algorithm) {
    throw new EscaleError('Internal', 'an expected checksum needs an algorithm', { path });
  }
  const known = options.contentChecksum;
  const checksum = !options.algorithm ? undefined : known !== undefined && sameAlgorithm(known.algorithm, options.algorithm) ? known.digest.toLowerCase() : await hashFile(tempFile, options.algorithm, signal);
  if (options.expectedChecksum !== undefined && checksum !== options.expectedChecksum.toLowerCase()) {
    throw new EscaleError('Integrity', `downloaded content of ${path} does not match its checksum (expected ${options.expectedChecksum}, got ${checksum})`, { path });
  }
  // why: synchronous metadata calls (see ensureFolder): ~6 per file, each cheaper than a thread-pool hop.
  try {
    const { target } = targetFolder(root, options.diskPath ?? path, options.createRoot ?? true, options.resolvedRoot);
    if (options.mtimeSec !== undefined) utimesSync(tempFile, new Date(), options.mtimeSec);
    throwIfAborted(signal);
    const mismatch = priorMismatch(target, options.expectedPrior);
    if (mismatch !== undefined) {
      throw new EscaleError('Conflict', `${path} changed locally since it was scanned (${mismatch}); not overwritten`, { path });
    }
    // why: a replaced file keeps its permissions; a new one gets the usual 0666 minus umask.
    const mode = options.expectedPrior !== null ? statSync(target).mode & 0o7777 : 0o666 & ~process.umask();
    chmodSync(tempFile, mode);
    try {
      renameSync(tempFile, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      return await writeFileAtomically({ root, ...(options.resolvedRoot === undefined ? {} : { resolvedRoot: options.resolvedRoot }), ...(options.createRoot === undefined ? {} : { createRoot: options.createRoot }), path, ...(options.diskPath === undefined ? {} : { diskPath: options.diskPath }), source: createReadStream(tempFile, { highWaterMark: LOCAL_READ_BUFFER }), algorithm: options.algorithm ?? null, ...(options.mtimeSec === undefined ? {} : { mtimeSec: options.mtimeSec }), expectedPrior: options.expectedPrior, ...(signal ? { signal } : {}) });
    }
    const placed = identityOf(statSync(target, { bigint: true }));
    return checksum === undefined ? placed : { ...placed, checksum };
  } catch (error) {
    throw fromSystemError(error, path);
  }
}

function sameAlgorithm(a: string, b: string): boolean {
  const name = nodeHashName(a);
  return name !== undefined && name === nodeHashName(b);
}

/**
 * Makes everything written so far on the file system holding `path` durable with one `syncfs`
 * (coreutils `sync -f`), instead of one fsync per file; best effort (a failure is returned, not thrown).
 */
export async function syncFileSystem(path: string): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const child = spawn('sync', ['-f', path], { stdio: 'ignore' });
    child.on('error', (error) => resolve(error));
    child.on('close', (code) => resolve(code === 0 ? undefined : new Error(`sync -f exited with status ${code}`)));
  });
}
