import { statSync } from 'node:fs';
import { intern } from '../core/intern.js';
import type { RelPath } from '../core/relpath.js';
import { hashFile } from './checksum.js';
import { JsonLog } from './json-log.js';
import { identityOf, RACY_MS, sameIdentity, type FileIdentity } from './file-identity.js';
import { localPathOf, type ScannedFile } from './scanner.js';

/** Header name of checksum-cache files. */
const KIND = 'escale-checksum-cache';
/** Rewrite the file when it holds this many more lines than there are entries. */
const SLACK_LINES = 1000;

/** One cached checksum: the identity of the file version it belongs to, and its digest. */
export interface CachedChecksum extends FileIdentity {
  /** Lowercase hex digest. */
  readonly checksum: string;
  /** Algorithm of the digest; undefined when it was recorded without one (trusted for any). */
  readonly algorithm?: string;
}

/** Options of `ChecksumCache.open`. */
export interface ChecksumCacheOptions {
  /** Algorithm assumed by `record` calls that do not name one. */
  readonly algorithm?: string;
  /** Clock in milliseconds for the racy-entry rule (tests). */
  readonly now?: () => number;
}

// why: one small object per entry; the algorithm string is shared (interned), not copied per entry.
class Entry implements CachedChecksum {
  constructor(
    readonly size: number,
    readonly mtimeMs: number,
    readonly ctimeMs: number,
    readonly ino: string,
    readonly checksum: string,
    readonly algorithm: string | undefined,
  ) {}
}

/**
 * The local checksum cache: relative path → (identity of the file version, checksum). An entry is
 * used only while the file keeps the same size, mtime, ctime and inode (`sameIdentity`); any change,
 * an mtime that went back included, means hashing again. (0.7 kept the checksum of a file whose
 * mtime went back, so an edit that restored an older mtime was never sent.)
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
  readonly #now: () => number;
  /** Records of an older format (or damaged) seen while loading: the file is rewritten without them. */
  #dropped = 0;

  private constructor(log: JsonLog | undefined, options: ChecksumCacheOptions) {
    this.#log = log;
    this.#defaultAlgorithm = options.algorithm;
    this.#now = options.now ?? Date.now;
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
    const { p, s, m, t, i, c, a, d } = record;
    // why: keys are only ever looked up with scanned paths, never opened, so a damaged key is dead
    // weight, not a danger; validating 100,000 paths would double the load time.
    if (typeof p !== 'string') return;
    if (d === 1) {
      this.#entries.delete(p);
      return;
    }
    // why: entries of the older format (integer-second mtime only) cannot tell a changed file: dropped.
    if (typeof s !== 'number' || typeof m !== 'number' || typeof t !== 'number' || typeof i !== 'string' || typeof c !== 'string' || (a !== undefined && typeof a !== 'string')) {
      this.#entries.delete(p);
      this.#dropped++;
      return;
    }
    this.#entries.set(intern(p), new Entry(s, m, t, intern(i), intern(c), this.#intern(a)));
  }

  #compactIfWorthIt(): void {
    const log = this.#log;
    if (log === undefined) return;
    if (log.needsRewrite || this.#dropped > 0 || log.lines > 2 * this.#entries.size + SLACK_LINES) {
      log.rewrite(this.#records());
      this.#dropped = 0;
    }
  }

  *#records(): Generator<Record<string, unknown>> {
    for (const [p, e] of this.#entries) yield recordOf(p, e);
  }

  /** Number of cached paths. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached entry for `path`, without any rule applied. */
  get(path: RelPath): CachedChecksum | undefined {
    return this.#entries.get(path);
  }

  /** The cached checksum of a scanned file when it is valid as it is (same identity and algorithm), without any I/O. */
  // why: an idle round asks for every file; this synchronous hit skips two promise hops per file.
  cachedChecksum(file: ScannedFile, algorithm: string): string | undefined {
    const cached = this.#entries.get(file.path);
    if (cached === undefined || (cached.algorithm !== undefined && cached.algorithm !== algorithm)) return undefined;
    return sameIdentity(file, cached) ? cached.checksum : undefined;
  }

  /**
   * The checksum of a scanned file, from the cache when its entry is valid (`cachedChecksum`), else
   * by hashing the file and caching the result. The result is cached only when the file kept the
   * identity it was scanned with while it was hashed and is not racy (`RACY_MS`); otherwise it is
   * returned but the next call hashes again. Throws what `hashFile` throws.
   */
  async checksumOf(root: string, file: ScannedFile, algorithm: string, signal?: AbortSignal): Promise<string> {
    const cached = this.cachedChecksum(file, algorithm);
    if (cached !== undefined) return cached;
    const absPath = localPathOf(root, file);
    const started = this.#now();
    const checksum = await hashFile(absPath, algorithm, signal);
    let after: FileIdentity | undefined;
    try {
      after = identityOf(statSync(absPath, { bigint: true }));
    } catch {
      after = undefined;
    }
    if (after !== undefined && sameIdentity(file, after) && Math.abs(started - after.ctimeMs) >= RACY_MS) this.record(file.path, after, checksum, algorithm);
    return checksum;
  }

  /**
   * Stores the checksum of the version of `path` that has `identity`, e.g. after a download that
   * wrote the file with a known checksum (the identity is then the stat taken after its mtime was
   * set and it was renamed into place). `algorithm` defaults to the one given at `open`.
   */
  record(path: RelPath, identity: FileIdentity, checksum: string, algorithm: string | undefined = this.#defaultAlgorithm): void {
    const entry = new Entry(identity.size, identity.mtimeMs, identity.ctimeMs, identity.ino, checksum.toLowerCase(), this.#intern(algorithm));
    this.#entries.set(path, entry);
    this.#log?.append(recordOf(path, entry));
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

/** The JSON-lines record of one entry: p path, s size, m mtime (ms), t ctime (ms), i inode, c checksum, a algorithm. */
function recordOf(p: string, e: Entry): Record<string, unknown> {
  const base = { p, s: e.size, m: e.mtimeMs, t: e.ctimeMs, i: e.ino, c: e.checksum };
  return e.algorithm === undefined ? base : { ...base, a: e.algorithm };
}
