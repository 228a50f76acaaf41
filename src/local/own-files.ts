import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';

/** A file or folder that escale itself writes (a store, a log, the PID file), and what it is, for messages. */
export interface OwnFile {
  readonly path: string;
  readonly what: string;
  /** Written only in some cases (a set-aside copy, a rotated log): mentioned to the user only when it exists. */
  readonly optional?: boolean;
}

/**
 * The own files that lie inside `root` (the root itself excluded), wherever symbolic links on the
 * way lead: each one's real location is compared with the root's.
 */
export function ownFilesInside(root: string, files: readonly OwnFile[]): OwnFile[] {
  const realRoot = realLocation(root);
  return files.filter((file) => {
    const rel = relative(realRoot, realLocation(file.path));
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  });
}

/** The real path of `path`, or of its nearest existing folder with the rest appended. */
function realLocation(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    // why: a store not written yet lies where its folder leads; a missing folder, where its parent does.
    const parent = dirname(path);
    return parent === path ? path : join(realLocation(parent), basename(path));
  }
}
