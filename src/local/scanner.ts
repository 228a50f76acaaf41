import { statSync, type Dir } from 'node:fs';
import { lstat, opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';
import { relPathProblem, ROOT, type RelPath } from '../core/relpath.js';
import { identityOf } from './file-identity.js';
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
   * Receives entries that are skipped because of a problem: unreadable directories, names that
   * are not safe relative paths, symbolic-link loops, Unicode duplicates. The walk goes on.
   */
  readonly onError?: (path: string, error: EscaleError) => void;
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
  /** dev:ino of the directories from the root down to the one being read. */
  readonly ancestors: Set<string>;
}

function dirKey(info: { dev: bigint; ino: bigint }): string {
  return `${info.dev}:${info.ino}`;
}

/**
 * Streams the regular files below `root`, depth first, with the filters of cli-and-config §5.3.
 *
 * - Every file and directory whose name starts with `.` is ignored at every depth (this also
 *   hides escale's own temporary files).
 * - Symbolic links are followed, like the original: a link to a file lists the file (with the
 *   target's size and mtime) under the link's name; a link to a directory is crawled. Loops cannot
 *   hang the walk: a directory whose device and inode are already on the path from the root is
 *   reported through `onError` and skipped. (Two links to the same folder from different places
 *   are both listed, as in the original; only cycles are cut.) Dangling links are skipped
 *   silently, like files that vanish during the walk.
 * - Directory filters decide which folders are entered; files directly in the root are never
 *   subject to them.
 * - Unreadable directories and names that are not safe relative paths are reported through
 *   `onError` and skipped; the walk continues.
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
    dir = await opendir(root, { bufferSize: DIR_BUFFER });
  } catch (error) {
    throw fromSystemError(error, root);
  }
  const walk: Walk = {
    root,
    filter,
    signal: options.signal,
    report: options.onError ?? (() => undefined),
    ancestors: new Set([dirKey(rootInfo)]),
  };
  yield* walkDir(walk, dir, ROOT, '');
}

/**
 * Yields the files of the open directory `dir` (relative path `rel` after normalisation, `diskRel`
 * as spelled on disk) and of the folders below it. Closes `dir`.
 */
async function* walkDir(walk: Walk, dir: Dir, rel: RelPath, diskRel: string): AsyncGenerator<ScannedFile> {
  try {
    for await (const entry of dir) {
      throwIfAborted(walk.signal);
      const name = entry.name;
      if (name.startsWith('.')) continue;
      const diskPath = diskRel === '' ? name : `${diskRel}/${name}`;
      const nfcName = name.normalize('NFC');
      const path = (rel === ROOT ? nfcName : `${rel}/${nfcName}`) as RelPath;
      const problem = relPathProblem(path);
      if (problem !== undefined) {
        walk.report(diskPath, new EscaleError('InvalidName', `skipping ${JSON.stringify(diskPath)}: the name ${problem}`, { path: diskPath }));
        continue;
      }
      // why: when the listing tells the type (no symbolic link), filtered entries cost no stat.
      if (entry.isFile() && !walk.filter.acceptsBaseName(nfcName)) continue;
      if (entry.isDirectory() && !walk.filter.entersDir(path)) continue;
      const absPath = join(walk.root, diskPath);
      let info;
      try {
        // why: a synchronous stat costs a few µs against ~40 µs of CPU for a promise round trip
        // through the thread pool; per file that was most of an idle round (W3). The event loop
        // still turns between directory reads.
        info = statSync(absPath, { bigint: true, throwIfNoEntry: false });
        if (info === undefined) continue;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // why: a file deleted since the listing, or a dangling symbolic link, is simply not there.
        if (code === 'ENOENT') continue;
        walk.report(diskPath, code === 'ELOOP'
          ? new EscaleError('InvalidName', `skipping ${JSON.stringify(diskPath)}: symbolic link loop`, { path: diskPath, cause: error })
          : fromSystemError(error, diskPath));
        continue;
      }
      if (!info.isFile() && !info.isDirectory()) continue;
      if (nfcName !== name && (await hasNfcTwin(walk, diskRel, name, nfcName))) {
        walk.report(diskPath, new EscaleError('InvalidName', `skipping ${JSON.stringify(diskPath)}: another entry has the same name in Unicode NFC form`, { path: diskPath }));
        continue;
      }
      if (info.isFile()) {
        if (!walk.filter.acceptsBaseName(nfcName)) continue;
        // why: the identity comes from the stat the walk makes anyway: ctime and inode cost nothing more.
        const file: ScannedFile = diskPath === path ? { path, ...identityOf(info) } : { path, ...identityOf(info), diskPath };
        yield file;
        continue;
      }
      if (!walk.filter.entersDir(path)) continue;
      const key = dirKey(info);
      if (walk.ancestors.has(key)) {
        walk.report(diskPath, new EscaleError('InvalidName', `skipping ${JSON.stringify(diskPath)}: symbolic link loop (the folder contains itself)`, { path: diskPath }));
        continue;
      }
      let child: Dir;
      try {
        child = await opendir(absPath, { bufferSize: DIR_BUFFER });
      } catch (error) {
        walk.report(diskPath, fromSystemError(error, diskPath));
        continue;
      }
      walk.ancestors.add(key);
      try {
        yield* walkDir(walk, child, path, diskPath);
      } finally {
        walk.ancestors.delete(key);
      }
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

/**
 * Whether the folder `diskRel` also holds the NFC spelling of a non-NFC name as a distinct entry.
 * Asks the file system instead of remembering names, so memory stays bounded for huge folders.
 */
async function hasNfcTwin(walk: Walk, diskRel: string, name: string, nfcName: string): Promise<boolean> {
  try {
    const twin = await lstat(join(walk.root, diskRel, nfcName), { bigint: true });
    const self = await lstat(join(walk.root, diskRel, name), { bigint: true });
    // why: a normalisation-insensitive file system (APFS) finds the entry itself under its NFC name.
    return !(twin.dev === self.dev && twin.ino === self.ino);
  } catch {
    return false;
  }
}
