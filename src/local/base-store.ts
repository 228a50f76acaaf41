import { createHash } from 'node:crypto';
import { intern } from '../core/intern.js';
import type { RelPath } from '../core/relpath.js';
import { RACY_MS } from './file-identity.js';
import { JsonLog } from './json-log.js';

/** Header name of base-state files. */
const KIND = 'escale-base-state';
/** Format version of base-state files; a file of another version is moved aside (no base). */
const VERSION = 1;
/** Rewrite the file when it holds this many more lines than there are entries. */
const SLACK_LINES = 1000;

/**
 * The version of one path that this client last agreed on with the relay: the local file as it was
 * then, and the relay record that described the same content. Decisions compare the local file and
 * the relay record with it ("what changed since we last agreed?") instead of comparing the two
 * machines' clocks.
 */
export interface BaseVersion {
  /** Lowercase hex plaintext checksum of the agreed content (absent when neither side had one). */
  readonly checksum?: string;
  /** The local file when agreement was reached: size, mtime and, when known, ctime and inode (see `FileIdentity`). */
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs?: number;
  readonly ino?: string;
  /** The relay record's pusher and timestamp (integer POSIX seconds) for that content. */
  readonly pusher?: string;
  readonly timestamp?: number;
}

/** Options of `BaseStore.open`. */
export interface BaseStoreOptions {
  /**
   * What the entries are relative to (client name, relay, protocol, checksum algorithm...), in any
   * text form: a file written for another context holds no base for this one and is emptied.
   */
  readonly context: string;
  /** Never write the file (dry runs): entries are loaded, changes stay in memory. */
  readonly readOnly?: boolean;
  /** Clock in milliseconds for the racy-identity rule (tests). */
  readonly now?: () => number;
}

/** The path field of a record as written by `recordOf` (first key), read from a damaged line. */
const DAMAGED_PATH = /^\{"p":("(?:[^"\\]|\\.)*")/;

/**
 * The per-path base state of one client section, kept in its data folder. Written as a crash-safe
 * JSON-lines file (`JsonLog`: appends, torn last line ignored, rewrites by temporary file, fsync and
 * rename) with a format version and a context record; whatever raises a doubt counts as "no base"
 * for the paths concerned, never as a base: a damaged line drops the base of the path it names (of
 * every path when the name cannot be read), a record that does not validate drops its path, and a
 * file of another version, kind or context holds no base at all. A lost or older base only sends
 * the planner back to the rules it applies without one; it never invents an agreement.
 *
 * Each change is written at once (it survives a kill -9); `flush` syncs the file (the engines call
 * it once per round), so a power cut before that may lose the most recent agreements, which only
 * sends their paths back to the rules without a base.
 */
export class BaseStore {
  readonly #entries = new Map<RelPath, BaseVersion>();
  readonly #context: string;
  readonly #readOnly: boolean;
  readonly #now: () => number;
  #log: JsonLog | undefined;
  #dirty = false;
  /** Context record read from the file, if any (set while loading). */
  #fileContext: string | undefined;
  /** Whether a record came before the context record, or the file named another context. */
  #contextDoubt = false;

  private constructor(context: string, readOnly: boolean, now: () => number) {
    this.#context = contextDigest(context);
    this.#readOnly = readOnly;
    this.#now = now;
  }

  /** An empty store kept in memory only (tests, engines opened without a data folder). */
  static inMemory(now: () => number = Date.now): BaseStore {
    return new BaseStore('', true, now);
  }

  /**
   * Opens the store kept in `file` (a missing file is an empty store; a file of another kind or
   * version is moved to `<file>.foreign`), or an in-memory store for `null`.
   */
  static async open(file: string | null, options: BaseStoreOptions): Promise<BaseStore> {
    const store = new BaseStore(options.context, options.readOnly === true || file === null, options.now ?? Date.now);
    if (file === null) return store;
    store.#log = await JsonLog.open(file, {
      kind: KIND,
      version: VERSION,
      onForeign: 'move-aside',
      onRecord: (record) => store.#apply(record),
      onDamaged: (line) => store.#damaged(line),
    });
    if (store.#contextDoubt || (store.#fileContext !== undefined && store.#fileContext !== store.#context)) store.#entries.clear();
    // why: a new file starts with its context record, so that every entry appended later follows it.
    store.#compactIfWorthIt(store.#fileContext !== store.#context || store.#contextDoubt);
    return store;
  }

  #apply(record: Record<string, unknown>): void {
    if ('context' in record) {
      if (this.#fileContext !== undefined || typeof record['context'] !== 'string') this.#contextDoubt = true;
      else this.#fileContext = record['context'];
      return;
    }
    // why: an entry must follow the context record that says what it is relative to.
    if (this.#fileContext === undefined) this.#contextDoubt = true;
    const { p } = record;
    if (typeof p !== 'string') {
      this.#entries.clear();
      return;
    }
    const path = p as RelPath;
    if (record['d'] === 1) {
      this.#entries.delete(path);
      return;
    }
    const version = versionOf(record);
    if (version === undefined) this.#entries.delete(path);
    else this.#entries.set(intern(path) as RelPath, version);
  }

  #damaged(line: string): void {
    const match = DAMAGED_PATH.exec(line);
    let path: unknown;
    try {
      path = match?.[1] === undefined ? undefined : JSON.parse(match[1]);
    } catch {
      path = undefined;
    }
    // why: a record cut short may have been a newer agreement for its path: the older one is not trusted either.
    if (typeof path === 'string') this.#entries.delete(path as RelPath);
    else this.#entries.clear();
  }

  #compactIfWorthIt(force = false): void {
    const log = this.#log;
    if (log === undefined || this.#readOnly) return;
    if (force || log.needsRewrite || log.lines > 2 * this.#entries.size + SLACK_LINES) {
      const context = this.#context;
      const entries = this.#entries;
      log.rewrite(
        (function* () {
          yield { context };
          for (const [p, version] of entries) yield recordOf(p, version);
        })(),
      );
      this.#fileContext = context;
      this.#contextDoubt = false;
      this.#dirty = false;
    }
  }

  /** Every path's base, live (the planners read it as their `base` input). */
  get versions(): ReadonlyMap<RelPath, BaseVersion> {
    return this.#entries;
  }

  /** The base of `path`, or undefined when there is none. */
  get(path: RelPath): BaseVersion | undefined {
    return this.#entries.get(path);
  }

  /**
   * Records that this client and the relay now agree on `version` of `path` (after a transfer, or
   * when found identical). A racy identity (mtime and ctime both within `RACY_MS` of now: the file
   * was just written) keeps only its size and mtime, so that the local file is compared by checksum
   * later rather than taken as unchanged by its identity. why: a downloaded file is not racy although
   * its ctime is recent (its rename): its mtime was set to the record's, so a write after it moves the mtime.
   */
  agree(path: RelPath, version: BaseVersion): void {
    const { ctimeMs, ino, checksum, ...rest } = version;
    const now = this.#now();
    const racy = ctimeMs !== undefined && Math.abs(now - ctimeMs) < RACY_MS && Math.abs(now - rest.mtimeMs) < RACY_MS;
    const trusted = ctimeMs !== undefined && ino !== undefined && !racy;
    const clean = baseVersion(checksum?.toLowerCase(), rest.size, rest.mtimeMs, trusted ? ctimeMs : undefined, trusted ? ino : undefined, rest.pusher, rest.timestamp);
    this.#entries.set(path, clean);
    this.#append(recordOf(path, clean));
  }

  /** Drops the base of `path` (decisions about it go back to the rules without a base). */
  forget(path: RelPath): void {
    if (!this.#entries.delete(path)) return;
    this.#append({ p: path, d: 1 });
  }

  #append(record: Record<string, unknown>): void {
    const log = this.#log;
    if (log === undefined || this.#readOnly) return;
    log.append(record);
    this.#dirty = true;
    try {
      // why: written at once (one write, no sync): an agreement lost to a kill -9 made a version this
      // client had just downloaded look like a local edit (both sides changed), and last-writer-wins
      // then sent it back over the newer version its owner had stamped with an older mtime.
      log.write();
    } catch {
      // why: the record stays queued; `flush` at the end of the round meets the same cause and reports it (saveBase).
    }
  }

  /** Writes buffered changes and syncs the file; does nothing when nothing changed. */
  flush(): void {
    if (!this.#dirty) return;
    this.#compactIfWorthIt();
    this.#log?.flush();
    this.#dirty = false;
  }

  /** Flushes and closes the file; the store must not be used afterwards. */
  close(): void {
    this.flush();
    if (!this.#readOnly) this.#log?.close();
  }
}

/** The context as stored: a digest, so that the file does not spell out the relay address. */
function contextDigest(context: string): string {
  return createHash('sha256').update(context, 'utf8').digest('hex');
}

/** The JSON-lines record of one base: p path, c checksum, s size, m mtime, t ctime, i inode, u pusher, ts timestamp. */
function recordOf(p: string, v: BaseVersion): Record<string, unknown> {
  return {
    p,
    ...(v.checksum === undefined ? {} : { c: v.checksum }),
    s: v.size,
    m: v.mtimeMs,
    ...(v.ctimeMs === undefined ? {} : { t: v.ctimeMs }),
    ...(v.ino === undefined ? {} : { i: v.ino }),
    ...(v.pusher === undefined ? {} : { u: v.pusher }),
    ...(v.timestamp === undefined ? {} : { ts: v.timestamp }),
  };
}

/** The base a record describes, or undefined when any field is missing or of the wrong type. */
function versionOf(r: Record<string, unknown>): BaseVersion | undefined {
  const { c, s, m, t, i, u, ts } = r;
  if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0 || typeof m !== 'number' || !Number.isFinite(m)) return undefined;
  if (c !== undefined && (typeof c !== 'string' || !/^[0-9a-f]+$/.test(c))) return undefined;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t))) return undefined;
  if (i !== undefined && (typeof i !== 'string' || !/^[0-9]+$/.test(i))) return undefined;
  if (u !== undefined && typeof u !== 'string') return undefined;
  if (ts !== undefined && (typeof ts !== 'number' || !Number.isSafeInteger(ts))) return undefined;
  if (c === undefined && u === undefined && ts === undefined) return undefined;
  return baseVersion(c === undefined ? undefined : intern(c), s, m, t, i === undefined ? undefined : intern(i), u === undefined ? undefined : intern(u), ts);
}

/**
 * A base with only its defined fields. why: a client keeps one per file; spreading optional fields
 * into a literal made V8 keep each one in dictionary mode (~400 bytes instead of ~140, measured).
 */
function baseVersion(checksum: string | undefined, size: number, mtimeMs: number, ctimeMs: number | undefined, ino: string | undefined, pusher: string | undefined, timestamp: number | undefined): BaseVersion {
  // why: the usual shape as one literal, every field in the object (grown field by field, five fields spilled into a property array).
  if (checksum !== undefined && ctimeMs !== undefined && ino !== undefined && pusher !== undefined && timestamp !== undefined) return { size, mtimeMs, checksum, ctimeMs, ino, pusher, timestamp };
  const version: { -readonly [K in keyof BaseVersion]: BaseVersion[K] } = { size, mtimeMs };
  if (checksum !== undefined) version.checksum = checksum;
  if (ctimeMs !== undefined) version.ctimeMs = ctimeMs;
  if (ino !== undefined) version.ino = ino;
  if (pusher !== undefined) version.pusher = pusher;
  if (timestamp !== undefined) version.timestamp = timestamp;
  return version;
}
