import * as fs from 'node:fs';
import type { Stats } from 'node:fs';

/*
 * The system calls of the `file` backend, made either synchronously or through libuv's thread pool.
 *
 * why: on a local disk a metadata call (lstat, open, rename, unlink) costs 1-10 µs of CPU made
 * synchronously and 30-70 µs through the thread pool (a promise, a work request, a wake-up of the
 * main thread); a transfer of a small file makes ~10 of them. On a network or FUSE mount (NFS, SMB,
 * sshfs, a cloud folder) a call may wait a network round trip, and a synchronous one would stop
 * the process for that time: there the calls go through the thread pool, several at once.
 */

/** A system call's result, returned directly (synchronous calls) or as a promise (thread pool). */
export type Maybe<T> = T | Promise<T>;

/** The calls the backend makes on names and small files, in one of two forms (see `fileCallsFor`). */
export interface FileCalls {
  /** Whether the calls are synchronous (local disk). */
  readonly synchronous: boolean;
  lstat(path: string): Maybe<Stats>;
  /** lstat, or undefined when nothing has that name (without the cost of an error). */
  lstatIfAny(path: string): Maybe<Stats | undefined>;
  open(path: string, flags: number, mode?: number): Maybe<number>;
  fstat(fd: number): Maybe<Stats>;
  read(fd: number, buffer: Buffer, offset: number, length: number): Maybe<number>;
  write(fd: number, buffer: Uint8Array, offset: number, length: number): Maybe<number>;
  close(fd: number): Maybe<void>;
  mkdir(path: string): Maybe<void>;
  rmdir(path: string): Maybe<void>;
  rename(from: string, to: string): Maybe<void>;
  link(existing: string, created: string): Maybe<void>;
  unlink(path: string): Maybe<void>;
}

const SYNC_CALLS: FileCalls = {
  synchronous: true,
  lstat: (path) => fs.lstatSync(path),
  lstatIfAny: (path) => fs.lstatSync(path, { throwIfNoEntry: false }),
  open: (path, flags, mode) => fs.openSync(path, flags, mode),
  fstat: (fd) => fs.fstatSync(fd),
  read: (fd, buffer, offset, length) => fs.readSync(fd, buffer, offset, length, null),
  write: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  close: (fd) => fs.closeSync(fd),
  mkdir: (path) => fs.mkdirSync(path),
  rmdir: (path) => fs.rmdirSync(path),
  rename: (from, to) => fs.renameSync(from, to),
  link: (existing, created) => fs.linkSync(existing, created),
  unlink: (path) => fs.unlinkSync(path),
};

const fsp = fs.promises;

/** The thread-pool calls (also used for the bulk reads and writes of large files on any disk). */
export const POOLED_CALLS: FileCalls = {
  synchronous: false,
  lstat: (path) => fsp.lstat(path),
  lstatIfAny: (path) =>
    fsp.lstat(path).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }),
  open: (path, flags, mode) => promised<number>((done) => fs.open(path, flags, mode, done)),
  fstat: (fd) => promised<Stats>((done) => fs.fstat(fd, done)),
  read: (fd, buffer, offset, length) => promised<number>((done) => fs.read(fd, buffer, offset, length, null, done)),
  write: (fd, buffer, offset, length) => promised<number>((done) => fs.write(fd, buffer, offset, length, done)),
  close: (fd) => promised<void>((done) => fs.close(fd, done)),
  mkdir: (path) => fsp.mkdir(path),
  rmdir: (path) => fsp.rmdir(path),
  rename: (from, to) => fsp.rename(from, to),
  link: (existing, created) => fsp.link(existing, created),
  unlink: (path) => fsp.unlink(path),
};

/** Flushes a file's content (and the size needed to read it back) to stable storage, always through the thread pool. */
export function datasync(fd: number): Promise<void> {
  return promised<void>((done) => fs.fdatasync(fd, done));
}

function promised<T>(call: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value as T))));
}

/**
 * Linux `statfs` magic numbers of file systems on local block devices or in memory, where a
 * synchronous call never waits for a network: ext2/3/4, XFS, Btrfs, tmpfs, ramfs, F2FS, ZFS,
 * overlayfs, bcachefs, FAT, exFAT.
 */
const LOCAL_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x858458f6, 0xf2f52010, 0x2fc12fc1, 0x794c7630, 0xca451a4e, 0x4d44, 0x2011bab0]);

/**
 * The calls for a relay folder: synchronous on Linux when the folder is on a local file system
 * (see above), through the thread pool otherwise (other systems, network and FUSE mounts, a file
 * system that cannot be told).
 */
export function fileCallsFor(root: string): FileCalls {
  if (process.platform !== 'linux') return POOLED_CALLS;
  try {
    return LOCAL_FILE_SYSTEMS.has(fs.statfsSync(root).type) ? SYNC_CALLS : POOLED_CALLS;
  } catch {
    // why: a folder whose file system cannot be told is treated as remote: slower, never blocking.
    return POOLED_CALLS;
  }
}

/** The calls of the given kind (tests pin one). */
export function fileCalls(synchronous: boolean): FileCalls {
  return synchronous ? SYNC_CALLS : POOLED_CALLS;
}

/** Where the kernel shows the path of an open file descriptor (Linux procfs), or undefined elsewhere. */
const FD_LINKS = process.platform === 'linux' && fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined;

/** What procfs appends to the path of an open file that was removed since. */
const DELETED_SUFFIX = ' (deleted)';

/** Whether `openedPath` can be checked (`openedPath` knows where an open file descriptor leads). */
export const CAN_LOCATE_OPEN_FILES = FD_LINKS !== undefined;

/**
 * The absolute path the kernel resolved for an open file descriptor (procfs), without the mark of
 * a file removed since; undefined when it cannot be told (no procfs).
 */
export function openedPath(fd: number): string | undefined {
  if (FD_LINKS === undefined) return undefined;
  let target: string;
  try {
    target = fs.readlinkSync(`${FD_LINKS}/${fd}`);
  } catch {
    return undefined;
  }
  return target.endsWith(DELETED_SUFFIX) ? target.slice(0, -DELETED_SUFFIX.length) : target;
}
