import { spawn } from 'node:child_process';
import { randomBytes, type Hash } from 'node:crypto';
import { chmodSync, createReadStream, lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, statSync, utimesSync, type Stats } from 'node:fs';
import { chmod, lstat, open, opendir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';
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

/** Writes the buffers one after the other at `position` (pwritev(2) may write less than asked). */
async function writeAllAt(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
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
/** Bytes written between two early `fdatasync`s of a big file (see `fileSink`). */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * A sink that hashes, counts and writes every chunk to `handle` at its offset: chunks are gathered
 * into writes of WRITE_BYTES, and up to WRITES_IN_FLIGHT writes run on the thread pool while this
 * thread hashes; a failed write fails the next chunk or the end. A big file is also `fdatasync`ed
 * every EARLY_SYNC_BYTES in the background, so that the disk works during the transfer instead of
 * all at the final `fsync` (which stays: the file is renamed into place only after it, so crash
 * safety is unchanged).
 */
function fileSink(handle: FileHandle, hash: Hash | undefined, counter: { bytes: number }): Writable {
  const writes: Array<Promise<void>> = [];
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  let written = 0;
  let failure: unknown;
  let early: Promise<void> | undefined;
  let syncedUpTo = 0;
  const issue = (): void => {
    if (gathered.length === 0) return;
    const write = writeAllAt(handle, gathered, written);
    write.catch((error: unknown) => (failure ??= error));
    writes.push(write);
    written += gatheredBytes;
    gathered = [];
    gatheredBytes = 0;
    if (early === undefined && written - syncedUpTo >= EARLY_SYNC_BYTES) {
      syncedUpTo = written;
      // why: best effort: only the final fsync's success counts.
      early = handle.datasync().catch(() => undefined).finally(() => (early = undefined));
    }
  };
  const settled = (): Promise<unknown> => Promise.allSettled(early === undefined ? writes : [...writes, early]);
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (failure !== undefined) return callback(failure as Error);
      counter.bytes += chunk.length;
      hash?.update(chunk);
      gathered.push(chunk);
      gatheredBytes += chunk.length;
      if (gatheredBytes < WRITE_BYTES) return callback();
      issue();
      if (writes.length < WRITES_IN_FLIGHT) return callback();
      (writes.shift() as Promise<void>).then(() => callback(), callback);
    },
    final(callback) {
      if (failure === undefined) issue();
      settled().then(() => callback(failure as Error | undefined), callback);
    },
    destroy(error, callback) {
      // why: the caller closes and removes the file next; no write may still be running then.
      settled().then(() => callback(error), () => callback(error));
    },
  });
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
function targetFolder(root: string, path: string, createRoot: boolean): { folder: string; target: string } {
  let realRoot: string;
  try {
    if (createRoot) mkdirSync(root, { recursive: true });
    realRoot = realpathSync.native(root);
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
  const { folder, target } = targetFolder(root, options.diskPath ?? path, options.createRoot ?? true);
  const temp = join(folder, `${TEMPORARY_PREFIX}${randomBytes(8).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    // why: private until complete: the content may be a secret (a configuration with a password)
    // and must not be readable by others while it is written; the final mode is set before the rename.
    handle = await open(temp, 'wx', 0o600);
    const counter = { bytes: 0 };
    if (sourceFailure() !== undefined) throw sourceFailure();
    await pipeline(options.source, fileSink(handle, hash, counter), signal === undefined ? {} : { signal });
    if (options.mtimeSec !== undefined) await handle.utimes(new Date(), options.mtimeSec);
    await handle.sync();
    await handle.close();
    handle = undefined;
    const checksum = hash?.digest('hex');
    if (options.expectedChecksum !== undefined && checksum !== options.expectedChecksum.toLowerCase()) {
      throw new EscaleError('Integrity', `downloaded content of ${path} does not match its checksum (expected ${options.expectedChecksum}, got ${checksum})`, { path });
    }
    throwIfAborted(signal);
    const mismatch = priorMismatch(target, options.expectedPrior);
    if (mismatch !== undefined) {
      throw new EscaleError('Conflict', `${path} changed locally since it was scanned (${mismatch}); not overwritten`, { path });
    }
    // why: a replaced file keeps its permissions (an executable script stays executable); a new one gets the usual mode.
    await chmod(temp, options.expectedPrior !== null ? (await stat(target)).mode & 0o7777 : 0o666 & ~process.umask());
    await rename(temp, target);
    await syncFolder(folder);
    const placed = identityOf(await stat(target, { bigint: true }));
    return checksum === undefined ? placed : { ...placed, checksum };
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw fromSystemError(error, path);
  }
}

/** Makes a rename durable by syncing its folder (best effort: some file systems refuse). */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // why: the rename already happened; only its durability across a power cut is in question.
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
    const { target } = targetFolder(root, options.diskPath ?? path, options.createRoot ?? true);
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
      return await writeFileAtomically({ root, ...(options.createRoot === undefined ? {} : { createRoot: options.createRoot }), path, ...(options.diskPath === undefined ? {} : { diskPath: options.diskPath }), source: createReadStream(tempFile, { highWaterMark: LOCAL_READ_BUFFER }), algorithm: options.algorithm ?? null, ...(options.mtimeSec === undefined ? {} : { mtimeSec: options.mtimeSec }), expectedPrior: options.expectedPrior, ...(signal ? { signal } : {}) });
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
