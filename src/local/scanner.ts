import { lstatSync, statSync, type Dir } from 'node:fs';
import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';
import { namesDecodingTo } from '../system/raw-names.js';
import { MAX_PATH_BYTES, relPathProblem, ROOT, type RelPath } from '../core/relpath.js';
import { identityOf, type FileIdentity } from './file-identity.js';
import type { FileFilter } from './filter.js';

/** A regular file found by the local scan. */
export interface ScannedFile {
  /** Path relative to the root, NFC-normalised. */
  readonly path: RelPath;
  readonly size: number;
  /** Modification time in milliseconds, as stat gives it. */
  readonly mtimeMs: number;
  /** Status-change time in milliseconds (the scanner always gives it; see `FileIdentity`). */
  readonly ctimeMs?: number;
  /** Inode number in decimal (the scanner always gives it; see `FileIdentity`). */
  readonly ino?: string;
  /**
   * The path relative to the root as spelled on disk, present only when it differs from `path`
   * (a name stored in another Unicode normalisation form, e.g. NFD). Open files with `localPathOf`.
   */
  readonly diskPath?: string;
}

/** Options of `scanLocal`. */
export interface ScanOptions {
  /** Stops the walk; the iterator then throws Aborted. */
  readonly signal?: AbortSignal;
  /**
   * Receives entries that are skipped because of a problem: unreadable directories, symbolic-link
   * loops (and, without `onRefused`, refused names). The walk goes on.
   */
  readonly onError?: (path: string, error: EscaleError) => void;
  /**
   * Receives files and folders skipped because escale does not sync their names: not UTF-8, control
   * characters, a backslash, too long (a full path over 4095 bytes included), or a second spelling
   * of a name in another Unicode form. `path` is the name as spelled on disk (bytes that are not
   * UTF-8 as lone surrogates, see `decodeName`); `problem` says why (`the name <problem>`).
   */
  readonly onRefused?: (path: string, problem: string) => void;
  /**
   * Receives each entry skipped because it is neither a regular file nor a folder, by its path on
   * disk and why: a symbolic link whose target does not exist, a named pipe, a socket, a device.
   */
  readonly onUnsupported?: (path: string, why: string) => void;
  /**
   * Leaves out the files and folders it accepts, by absolute path and identity (device and inode of
   * the target), whatever their names: escale's own stores inside the local root.
   */
  readonly skip?: (absPath: string, id: { readonly dev: bigint; readonly ino: bigint }) => boolean;
}

/**
 * A scanned file as one compact object. why: the local index keeps one per file; a literal holds
 * every field in the object (a spread made V8 add the fields one by one, spilling into a property array).
 */
export function scannedFile(path: RelPath, identity: FileIdentity, diskPath?: string): ScannedFile {
  const { size, mtimeMs, ctimeMs, ino } = identity;
  return diskPath === undefined ? { path, size, mtimeMs, ctimeMs, ino } : { path, size, mtimeMs, ctimeMs, ino, diskPath };
}

/** The absolute path of a scanned (or planned) local file, using its on-disk spelling when it has one. */
export function localPathOf(root: string, file: { readonly path: RelPath; readonly diskPath?: string }): string {
  return join(root, file.diskPath ?? file.path);
}

/** Directory entries fetched per read of a folder (Node's default is 32). */
const DIR_BUFFER = 256;

interface Walk {
  readonly root: string;
  readonly filter: FileFilter;
  readonly signal: AbortSignal | undefined;
  readonly report: (path: string, error: EscaleError) => void;
  readonly refuse: (path: string, problem: string) => void;
  readonly options: ScanOptions;
  /** dev:ino of the directories from the root down to the one being read. */
  readonly ancestors: Set<string>;
}

function dirKey(info: { dev: bigint; ino: bigint }): string {
  return `${info.dev}:${info.ino}`;
}

/**
 * Streams the regular files below `root`, depth first, with the filters of sync-rules.md R2.
 *
 * - Every file and directory whose name starts with `.` is ignored at every depth (this also
 *   hides escale's own temporary files).
 * - Symbolic links are followed, like the original: a link to a file lists the file (with the
 *   target's size and mtime) under the link's name; a link to a directory is crawled. Loops cannot
 *   hang the walk: a directory whose device and inode are already on the path from the root is
 *   reported through `onError` and skipped. (Two links to the same folder from different places
 *   are both listed, as in the original; only cycles are cut.) Dangling links, named pipes,
 *   sockets and devices are skipped and given to `onUnsupported`.
 * - Entries that `skip` accepts (escale's own stores) are left out, files and folders alike.
 * - Directory filters decide which folders are entered; files directly in the root are never
 *   subject to them.
 * - Unreadable directories are reported through `onError`, names escale does not sync (see
 *   `onRefused`) through `onRefused`; both are skipped and the walk continues. A name that is not
 *   UTF-8 is read again as bytes, so that it is refused by name instead of vanishing.
 * - A missing root yields nothing (it is created on the first download). A root that is not a
 *   directory throws NotFound; an unreadable root throws its error.
 *
 * Memory stays proportional to the depth of the tree: one open directory handle per level.
 */
export async function* scanLocal(root: string, filter: FileFilter, options: ScanOptions = {}): AsyncGenerator<ScannedFile> {
  throwIfAborted(options.signal);
  let rootInfo;
  try {
    rootInfo = await stat(root, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fromSystemError(error, root);
  }
  if (!rootInfo.isDirectory()) throw new EscaleError('NotFound', `local root ${root} is not a directory`, { path: root });
  let dir: Dir;
  try {
    dir = await openNames(root);
  } catch (error) {
    throw fromSystemError(error, root);
  }
  yield* walkDir(walkOf(root, filter, options, rootInfo), dir, ROOT, '');
}

/** The state of one walk below `root`. */
function walkOf(root: string, filter: FileFilter, options: ScanOptions, rootInfo: { dev: bigint; ino: bigint }): Walk {
  return {
    root,
    filter,
    signal: options.signal,
    report: options.onError ?? (() => undefined),
    refuse: options.onRefused ?? ((path, problem) => options.onError?.(path, new EscaleError('InvalidName', `skipping ${JSON.stringify(path)}: the name ${problem}`, { path }))),
    options,
    ancestors: new Set([dirKey(rootInfo)]),
  };
}

/**
 * Streams the files at or below one path of the tree, `diskRel` as spelled on disk (a file, or a
 * folder and everything below it), with exactly the rules of `scanLocal`: nothing when the path is
 * missing, refused, filtered out, hidden (a dot component) or below such a folder. The maintained
 * local index uses it to look again at what the file-system events named.
 */
export async function* scanSubtree(root: string, filter: FileFilter, diskRel: string, options: ScanOptions = {}): AsyncGenerator<ScannedFile> {
  throwIfAborted(options.signal);
  if (diskRel === '') {
    yield* scanLocal(root, filter, options);
    return;
  }
  const rootInfo = statSync(root, { bigint: true, throwIfNoEntry: false });
  if (rootInfo === undefined || !rootInfo.isDirectory()) return;
  const walk = walkOf(root, filter, options, rootInfo);
  const names = diskRel.split('/');
  let rel = ROOT;
  let parent = '';
  for (const [i, name] of names.entries()) {
    if (name === '' || name.startsWith('.') || name.includes('\ufffd')) return;
    let hint;
    try {
      hint = lstatSync(join(root, parent, name), { throwIfNoEntry: false });
    } catch (error) {
      // why: a folder on the way that cannot be searched (EACCES) fails as the full scan fails it: the folder.
      const failed = parent === '' ? name : parent;
      walk.report(failed, fromSystemError(error, failed));
      return;
    }
    if (hint === undefined) return;
    const found = visitEntry(walk, rel, parent, name, hint);
    if (found === undefined) return;
    if ('file' in found) {
      if (i === names.length - 1) yield found.file;
      return;
    }
    if (i === names.length - 1) {
      yield* descend(walk, found);
      return;
    }
    walk.ancestors.add(found.dir.key);
    rel = found.dir.rel;
    parent = found.dir.diskRel;
  }
}

/**
 * Yields the files of the open directory `dir` (relative path `rel` after normalisation, `diskRel`
 * as spelled on disk) and of the folders below it. Closes `dir`.
 */
async function* walkDir(walk: Walk, dir: Dir, rel: RelPath, diskRel: string): AsyncGenerator<ScannedFile> {
  try {
    const lossyNames = new Set<string>();
    for await (const entry of dir) {
      throwIfAborted(walk.signal);
      const name = entry.name;
      if (name.startsWith('.')) continue;
      if (name.includes('\ufffd')) {
        // why: Node decoded a name that is not UTF-8 lossily; it is refused by its bytes (once per folder read).
        if (!lossyNames.has(name)) {
          lossyNames.add(name);
          for (const spelled of namesDecodingTo(join(walk.root, diskRel), name)) {
            const refusedPath = diskRel === '' ? spelled : `${diskRel}/${spelled}`;
            walk.refuse(refusedPath, relPathProblem(refusedPath) ?? 'is not valid UTF-8');
          }
        }
        continue;
      }
      const found = visitEntry(walk, rel, diskRel, name, entry);
      if (found === undefined) continue;
      if ('file' in found) {
        yield found.file;
        continue;
      }
      yield* descend(walk, found);
    }
  } catch (error) {
    if (error instanceof EscaleError && error.code === 'Aborted') throw error;
    // why: an error while reading the listing itself (EIO, a folder removed midway) loses only this folder.
    walk.report(diskRel, fromSystemError(error, diskRel));
  } finally {
    // why: `for await` closes the handle when the loop ends or throws; a second close throws.
    await dir.close().catch(() => undefined);
  }
}

/** What `visitEntry` found: a file to yield, or a folder to walk into. */
type Visited = { readonly file: ScannedFile } | { readonly dir: { readonly absPath: string; readonly rel: RelPath; readonly diskRel: string; readonly key: string } };

/** What the walk knows of an entry's type before any stat (a directory entry, or an lstat). */
interface TypeHint {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/**
 * Applies the scan's rules to the entry `name` of the folder `rel` (`diskRel` on disk): refused
 * names, filters, symbolic links, escale's own files, NFC twins and loops. Returns the file to
 * yield, the folder to walk into, or undefined for an entry left out (reported where it must be).
 */
function visitEntry(walk: Walk, rel: RelPath, diskRel: string, name: string, hint: TypeHint): Visited | undefined {
  const diskPath = diskRel === '' ? name : `${diskRel}/${name}`;
  const nfcName = name.normalize('NFC');
  const path = (rel === ROOT ? nfcName : `${rel}/${nfcName}`) as RelPath;
  const problem = relPathProblem(path) ?? (diskPath === path ? undefined : relPathProblem(diskPath)) ?? localPathProblem(walk.root, diskPath);
  if (problem !== undefined) {
    walk.refuse(diskPath, problem);
    return undefined;
  }
  // why: when the listing tells the type (no symbolic link), filtered entries cost no stat.
  if (hint.isFile() && !walk.filter.acceptsBaseName(nfcName)) return undefined;
  if (hint.isDirectory() && !walk.filter.entersDir(path)) return undefined;
  const absPath = join(walk.root, diskPath);
  let info;
  try {
    // why: a synchronous stat costs a few µs against ~40 µs of CPU for a promise round trip
    // through the thread pool; per file that was most of an idle round (W3). The event loop
    // still turns between directory reads.
    info = statSync(absPath, { bigint: true, throwIfNoEntry: false });
    if (info === undefined) {
      if (hint.isSymbolicLink()) walk.options.onUnsupported?.(diskPath, 'it is a symbolic link whose target does not exist');
      return undefined;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // why: a file deleted since the listing, or a dangling symbolic link, is simply not there.
    if (code === 'ENOENT') return undefined;
    walk.report(diskPath, code === 'ELOOP'
      ? new EscaleError('InvalidName', `skipping ${JSON.stringify(diskPath)}: symbolic link loop`, { path: diskPath, cause: error })
      : fromSystemError(error, diskPath));
    return undefined;
  }
  if (!info.isFile() && !info.isDirectory()) {
    // why: a named pipe would block a read for ever, a device never ends: never read, but never silently left out either.
    if (walk.filter.acceptsBaseName(nfcName)) walk.options.onUnsupported?.(diskPath, `it is ${specialKind(info)}, not a regular file`);
    return undefined;
  }
  if (walk.options.skip?.(absPath, info) === true) return undefined;
  if (nfcName !== name && hasNfcTwin(walk, diskRel, name, nfcName)) {
    walk.refuse(diskPath, `has the same Unicode NFC form as ${JSON.stringify(diskRel === '' ? nfcName : `${diskRel}/${nfcName}`)} (one name spelled two ways); only that one is synchronised`);
    return undefined;
  }
  if (info.isFile()) {
    if (!walk.filter.acceptsBaseName(nfcName)) return undefined;
    // why: the identity comes from the stat the walk makes anyway: ctime and inode cost nothing more.
    return { file: scannedFile(path, identityOf(info), diskPath === path ? undefined : diskPath) };
  }
  if (!walk.filter.entersDir(path)) return undefined;
  const key = dirKey(info);
  if (walk.ancestors.has(key)) {
    walk.report(diskPath, new EscaleError('InvalidName', `skipping ${JSON.stringify(diskPath)}: symbolic link loop (the folder contains itself)`, { path: diskPath }));
    return undefined;
  }
  return { dir: { absPath, rel: path, diskRel: diskPath, key } };
}

/** Walks into a folder that `visitEntry` accepted (an unreadable one is reported and skipped). */
async function* descend(walk: Walk, found: Extract<Visited, { dir: unknown }>): AsyncGenerator<ScannedFile> {
  const { absPath, rel, diskRel, key } = found.dir;
  let child: Dir;
  try {
    child = await openNames(absPath);
  } catch (error) {
    walk.report(diskRel, fromSystemError(error, diskRel));
    return;
  }
  walk.ancestors.add(key);
  try {
    yield* walkDir(walk, child, rel, diskRel);
  } finally {
    walk.ancestors.delete(key);
  }
}

/** Opens a folder for a walk. */
async function openNames(path: string): Promise<Dir> {
  return opendir(path, { bufferSize: DIR_BUFFER });
}

/** Why a file at `diskPath` below `root` cannot be reached by the system calls (its full path is too long), or undefined. */
export function localPathProblem(root: string, diskPath: string): string | undefined {
  // why: `root/diskPath` is at most this long (join only removes); no string is built for the common case.
  if (Buffer.byteLength(root) + 1 + Buffer.byteLength(diskPath) <= MAX_PATH_BYTES) return undefined;
  return Buffer.byteLength(join(root, diskPath)) > MAX_PATH_BYTES ? `is too deep: its full path would be longer than ${MAX_PATH_BYTES} bytes` : undefined;
}

/**
 * Whether the folder `diskRel` also holds the NFC spelling of a non-NFC name as a distinct entry.
 * Asks the file system instead of remembering names, so memory stays bounded for huge folders.
 */
function hasNfcTwin(walk: Walk, diskRel: string, name: string, nfcName: string): boolean {
  try {
    const twin = lstatSync(join(walk.root, diskRel, nfcName), { bigint: true, throwIfNoEntry: false });
    if (twin === undefined) return false;
    const self = lstatSync(join(walk.root, diskRel, name), { bigint: true });
    // why: a normalisation-insensitive file system (APFS) finds the entry itself under its NFC name.
    return !(twin.dev === self.dev && twin.ino === self.ino);
  } catch {
    return false;
  }
}

/** What a special file is, for messages. */
function specialKind(info: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (info.isFIFO()) return 'a named pipe (FIFO)';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'a special file';
}
