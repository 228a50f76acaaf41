// In-process engine tests: the real local repository (scanner, checksum cache, atomic writer), with
// hooks that stand for what users and their programs do to files while escale reads them.
import type { Readable } from 'node:stream';
import type { Logger } from '../core/log.js';
import type { RelPath } from '../core/relpath.js';
import { AccessStore } from '../local/access.js';
import { ChecksumCache } from '../local/checksum-cache.js';
import { FileFilter } from '../local/filter.js';
import { LocalRepository } from './local-repository.js';

/** Hooks called when the engine opens or reads a local file (before the read). */
export interface LocalHooks {
  /** May replace the stream a file is read from (and may change the file meanwhile). */
  open?: (path: RelPath, stream: Readable) => Readable | void;
  /** May throw, or change the file, before a small file is read at once. */
  readSmall?: (path: RelPath) => void;
}

/** A `LocalRepository` whose reads go through `hooks`. */
export class HookedLocal extends LocalRepository {
  hooks: LocalHooks = {};

  override open(path: RelPath, sizeHint?: number): Readable {
    const stream = super.open(path, sizeHint);
    return this.hooks.open?.(path, stream) ?? stream;
  }

  override readSmall(path: RelPath, limit: number): ReturnType<LocalRepository['readSmall']> {
    this.hooks.readSmall?.(path);
    return super.readSmall(path, limit);
  }
}

/**
 * A hooked repository of `root` with no filter, in-memory stores and SHA-512 checksums; `cacheNow`
 * is the checksum cache's clock (a late one makes it cache files written a moment ago).
 */
export async function hookedLocal(root: string, logger: Logger, cacheNow?: () => number): Promise<HookedLocal> {
  const filter = new FileFilter({ extensions: [], include: [], exclude: [], includeDirs: [], excludeDirs: [] });
  const checksums = await ChecksumCache.open(null, cacheNow === undefined ? {} : { now: cacheNow });
  return new HookedLocal(root, filter, checksums, await AccessStore.open(null), 'sha512', logger);
}
