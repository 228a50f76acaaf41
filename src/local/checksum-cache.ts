import { stat } from 'node:fs/promises';
import type { RelPath } from '../core/relpath.js';
import { hashFile } from './checksum.js';
import { JsonLog } from './json-log.js';
import { localPathOf, type ScannedFile } from './scanner.js';

/** Header name of checksum-cache files. */
const KIND = 'escale-checksum-cache';
/** Rewrite the file when it holds this many more lines than there are entries. */
const SLACK_LINES = 1000;

/** One cached checksum. */
export interface CachedChecksum {
  /** Integer POSIX seconds: the mtime of the file the checksum belongs to. */
  readonly mtimeSec: number;
  /** Lowercase hex digest. */
  readonly checksum: string;
  /** Algorithm of the digest; undefined when it was recorded without one (trusted for any). */
  readonly algorithm?: string;
}

/** Options of `ChecksumCache.open`. */
export interface ChecksumCacheOptions {
  /** Algorithm assumed by `record` calls that do not name one. */
  readonly algorithm?: string;
}

// why: one small object per entry; the algorithm string is shared (interned), not copied per entry.
class Entry implements CachedChecksum {
  constructor(
    readonly mtimeSec: number,
    readonly checksum: string,
    readonly algorithm: string | undefined,
  ) {}
}

/** The integer seconds of an mtime in milliseconds, truncated toward zero (relay-protocol §7.2). */
export function mtimeSeconds(mtimeMs: number): number {
  return Math.trunc(mtimeMs / 1000);
}

/**
 * The local checksum cache (cli-and-config §5.4.1, relay-protocol §6.2): relative path → (mtime in
 * integer seconds, checksum). Lookup rules: a cached mtime older than the file's → recompute; newer
 * → keep the checksum and store the file's (older) mtime; equal → reuse. So a content change that
 * does not advance the mtime is not detected, as in the original.
 *
 * Persistent in a crash-safe JSON-lines file (`JsonLog`) unless opened with `null`
 * (`checksum cache = no`: memory only). Changes are buffered and reach the disk on `flush`/`close`
 * or when the buffer fills; losing recent changes in a crash only costs re-hashing.
 */
export class ChecksumCache {
  readonly #entries = new Map<string, Entry>();
  readonly #algorithms = new Map<string, string>();
  #log: JsonLog | undefined;
  readonly #defaultAlgorithm: string | undefined;

  private constructor(log: JsonLog | undefined, options: ChecksumCacheOptions) {
    this.#log = log;
    this.#defaultAlgorithm = options.algorithm;
  }

  /**
   * Opens the cache stored in `file` (created on the first change; a foreign file there is moved
   * to `<file>.foreign`), or an in-memory cache for `null`.
   */
  static async open(file: string | null, options: ChecksumCacheOptions = {}): Promise<ChecksumCache> {
    if (file === null) return new ChecksumCache(undefined, options);
    const cache = new ChecksumCache(undefined, options);
    cache.#log = await JsonLog.open(file, { kind: KIND, onForeign: 'move-aside', onRecord: (record) => cache.#apply(record) });
    cache.#compactIfWorthIt();
    return cache;
  }

  #intern(algorithm: string | undefined): string | undefined {
    if (algorithm === undefined) return undefined;
    let shared = this.#algorithms.get(algorithm);
    if (shared === undefined) {
      shared = algorithm;
      this.#algorithms.set(algorithm, shared);
    }
    return shared;
  }

  #apply(record: Record<string, unknown>): void {
    const { p, m, c, a, d } = record;
    // why: keys are only ever looked up with scanned paths, never opened, so a damaged key is dead
    // weight, not a danger; validating 100,000 paths would double the load time.
    if (typeof p !== 'string') return;
    if (d === 1) {
      this.#entries.delete(p);
      return;
    }
    if (typeof m !== 'number' || !Number.isSafeInteger(m) || typeof c !== 'string') return;
    if (a !== undefined && typeof a !== 'string') return;
    this.#entries.set(p, new Entry(m, c, this.#intern(a)));
  }

  #compactIfWorthIt(): void {
    const log = this.#log;
    if (log === undefined) return;
    if (log.needsRewrite || log.lines > 2 * this.#entries.size + SLACK_LINES) log.rewrite(this.#records());
  }

  *#records(): Generator<Record<string, unknown>> {
    for (const [p, e] of this.#entries) {
      yield e.algorithm === undefined ? { p, m: e.mtimeSec, c: e.checksum } : { p, m: e.mtimeSec, c: e.checksum, a: e.algorithm };
    }
  }

  /** Number of cached paths. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached entry for `path`, without any rule applied. */
  get(path: RelPath): CachedChecksum | undefined {
    return this.#entries.get(path);
  }

  /** The cached checksum of a scanned file when it is valid as it is (same mtime and algorithm), without any I/O. */
  // why: an idle round asks for every file; this synchronous hit skips two promise hops per file.
  cachedChecksum(file: ScannedFile, algorithm: string): string | undefined {
    const cached = this.#entries.get(file.path);
    if (cached === undefined || (cached.algorithm !== undefined && cached.algorithm !== algorithm)) return undefined;
    return cached.mtimeSec === mtimeSeconds(file.mtimeMs) ? cached.checksum : undefined;
  }

  /**
   * The checksum of a scanned file, from the cache when the rules allow it, else by hashing the
   * file (and caching the result). An entry recorded with another algorithm is not reused. If the
   * file changes (size or mtime) while it is hashed, the checksum is returned but not cached, so
   * the next round hashes again. Throws what `hashFile` throws.
   */
  async checksumOf(root: string, file: ScannedFile, algorithm: string, signal?: AbortSignal): Promise<string> {
    const mtimeSec = mtimeSeconds(file.mtimeMs);
    const cached = this.#entries.get(file.path);
    if (cached !== undefined && (cached.algorithm === undefined || cached.algorithm === algorithm)) {
      if (cached.mtimeSec === mtimeSec) return cached.checksum;
      if (cached.mtimeSec > mtimeSec) {
        // why: §5.4.1 — a file whose mtime went back (e.g. reset after a download) keeps its checksum.
        this.record(file.path, mtimeSec, cached.checksum, cached.algorithm);
        return cached.checksum;
      }
    }
    const absPath = localPathOf(root, file);
    const checksum = await hashFile(absPath, algorithm, signal);
    let unchanged = false;
    try {
      const after = await stat(absPath);
      unchanged = after.size === file.size && after.mtimeMs === file.mtimeMs;
    } catch {
      unchanged = false;
    }
    if (unchanged) this.record(file.path, mtimeSec, checksum, algorithm);
    return checksum;
  }

  /**
   * Stores the checksum of `path` for the given mtime (integer seconds), e.g. after a download
   * that wrote the file with a known checksum. `algorithm` defaults to the one given at `open`.
   */
  record(path: RelPath, mtimeSec: number, checksum: string, algorithm: string | undefined = this.#defaultAlgorithm): void {
    const entry = new Entry(mtimeSec, checksum.toLowerCase(), this.#intern(algorithm));
    this.#entries.set(path, entry);
    this.#log?.append(entry.algorithm === undefined ? { p: path, m: mtimeSec, c: entry.checksum } : { p: path, m: mtimeSec, c: entry.checksum, a: entry.algorithm });
  }

  /** Drops the entry of `path` (a file that disappeared). Does nothing when there is none. */
  forget(path: RelPath): void {
    if (!this.#entries.delete(path)) return;
    this.#log?.append({ p: path, d: 1 });
  }

  /** Drops every entry (`escalectl clear-cache`). */
  clear(): void {
    this.#entries.clear();
    this.#log?.rewrite([]);
  }

  /** Writes pending changes to disk, compacting the file when it has grown much larger than the cache. */
  async flush(): Promise<void> {
    this.#compactIfWorthIt();
    this.#log?.flush();
  }

  /** Flushes and closes the file; the cache must not be used afterwards. */
  async close(): Promise<void> {
    this.#compactIfWorthIt();
    this.#log?.close();
  }
}
