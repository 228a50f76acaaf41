import type { RelPath } from '../core/relpath.js';
import { sameIdentity, type FileIdentity } from './file-identity.js';
import { scannedFile, type ScannedFile } from './scanner.js';

/**
 * The maintained local index: every file the last full scan found, kept up to date with the
 * paths that file-system events named and with the files escale wrote itself, and the set of paths
 * that changed (appeared, vanished, or took another identity) since the engine last looked. The
 * engine plans only those, so that an idle round costs nothing per file.
 */
export class LocalIndex {
  private readonly entries = new Map<RelPath, ScannedFile>();
  private changedPaths = new Set<RelPath>();
  /** Whether a full scan filled the index (before that, it knows nothing). */
  private filled = false;

  /** The files, by NFC path (live: changes as the index does). */
  get files(): ReadonlyMap<RelPath, ScannedFile> {
    return this.entries;
  }

  /** Whether a full scan filled the index. */
  get ready(): boolean {
    return this.filled;
  }

  /** The file at `path`, if indexed. */
  get(path: RelPath): ScannedFile | undefined {
    return this.entries.get(path);
  }

  /** Replaces the whole index with a full scan's result; what differs from before is marked changed. */
  replaceAll(files: Iterable<ScannedFile>): void {
    const before = this.entries;
    const seen = new Set<RelPath>();
    const next = new Map<RelPath, ScannedFile>();
    for (const file of files) {
      next.set(file.path, file);
      seen.add(file.path);
      if (!sameFile(before.get(file.path), file)) this.changedPaths.add(file.path);
    }
    for (const path of before.keys()) if (!seen.has(path)) this.changedPaths.add(path);
    before.clear();
    for (const [path, file] of next) before.set(path, file);
    this.filled = true;
  }

  /**
   * Takes a fresh look at one path (`nfcPath`): `found` are the files now at or below it. The files
   * indexed at that path (and below it, when `folder`: a folder was removed, renamed or replaced)
   * that are no longer found are dropped.
   */
  refresh(nfcPath: RelPath, found: readonly ScannedFile[], folder: boolean): void {
    const now = new Map(found.map((file) => [file.path, file]));
    const drop = (path: RelPath): void => {
      if (now.has(path)) return;
      if (this.entries.delete(path)) this.changedPaths.add(path);
    };
    drop(nfcPath);
    if (folder) {
      const prefix = nfcPath === '' ? '' : `${nfcPath}/`;
      for (const path of this.entries.keys()) if (path.startsWith(prefix)) drop(path);
    }
    for (const file of found) this.set(file);
  }

  /** Records a file as it is now (escale wrote it, or looked at it again). */
  set(file: ScannedFile): void {
    if (sameFile(this.entries.get(file.path), file)) return;
    this.entries.set(file.path, file);
    this.changedPaths.add(file.path);
  }

  /** Records the identity a file has after escale wrote it, keeping its spelling on disk. */
  written(path: RelPath, identity: FileIdentity, diskPath?: string): void {
    const spelled = diskPath ?? this.entries.get(path)?.diskPath;
    this.set(scannedFile(path, identity, spelled === path ? undefined : spelled));
  }

  /** The paths that changed since the last call (and forgets them). */
  takeChanged(): Set<RelPath> {
    const changed = this.changedPaths;
    this.changedPaths = new Set();
    return changed;
  }
}

/** Whether two index entries describe the same version at the same spelling. */
function sameFile(a: ScannedFile | undefined, b: ScannedFile): boolean {
  return a !== undefined && a.diskPath === b.diskPath && (sameIdentity(a, b) || (a.ctimeMs === undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino));
}
