import { EscaleError } from '../core/errors.js';
import { isRelPath, type RelPath } from '../core/relpath.js';
import { JsonLog } from './json-log.js';

/** Header name of access-modifier files. */
const KIND = 'escale-access-modifiers';

/**
 * The access flags of one file (sync-rules.md R7): undefined = unset (allowed). The same shape as
 * `AccessRule` of src/sync/model.ts (restated here because src/local may import only src/core).
 */
export interface AccessFlags {
  /** `r+`/`r-`: whether the file may be uploaded. */
  readonly read?: boolean;
  /** `w+`/`w-`: whether the file may be written by a download. */
  readonly write?: boolean;
}

/**
 * A change to the flags of a file, as parsed from a modifier string: `true` (`+`), `false` (`-`),
 * `null` (`?`, unset), or undefined when the letter was not given (left as it is).
 */
export interface AccessChange {
  readonly read?: boolean | null;
  readonly write?: boolean | null;
}

/**
 * Parses modifiers such as `r-w+`, `w?`, `r`, or several words (`['r+', 'w-']`, joined without
 * separator) with the grammar `(('r'|'w') ('+'|'-'|'?')?)+` (sync-rules.md R7.1); a letter without
 * sign means `+`. Throws Usage for anything else, or a letter given twice.
 */
export function parseModifiers(text: string | readonly string[]): AccessChange {
  const joined = typeof text === 'string' ? text : text.join('');
  const compact = joined.replace(/\s+/g, '');
  if (compact === '') throw new EscaleError('Usage', 'no access modifier given (expected e.g. r+, w-, r-w+, w?)');
  const change: { read?: boolean | null; write?: boolean | null } = {};
  let i = 0;
  while (i < compact.length) {
    const letter = compact[i];
    if (letter !== 'r' && letter !== 'w') {
      throw new EscaleError('Usage', `bad access modifier ${JSON.stringify(joined)}: expected 'r' or 'w' at ${JSON.stringify(compact.slice(i))} (e.g. r+, w-, r-w+, w?)`);
    }
    const key = letter === 'r' ? 'read' : 'write';
    if (key in change) throw new EscaleError('Usage', `bad access modifier ${JSON.stringify(joined)}: '${letter}' given twice`);
    const sign = compact[i + 1];
    if (sign === '+' || sign === '-' || sign === '?') {
      change[key] = sign === '+' ? true : sign === '-' ? false : null;
      i += 2;
    } else {
      change[key] = true;
      i += 1;
    }
  }
  return change;
}

function flagChar(flag: boolean | undefined): string {
  return flag === undefined ? '?' : flag ? '+' : '-';
}

/** Formats flags as `escalectl access` prints them: `r<R>w<W>` with `+`, `-` or `?`, e.g. `r+w?`. */
export function formatFlags(flags: AccessFlags): string {
  return `r${flagChar(flags.read)}w${flagChar(flags.write)}`;
}

/** The stored form of one flag: true, false or null (unset). */
function stored(flag: boolean | undefined): boolean | null {
  return flag === undefined ? null : flag;
}

/** Frozen flags without keys for unset values (so they compare equal to `{}` and `{ read: true }`). */
function makeFlags(read: unknown, write: unknown): AccessFlags {
  const flags: { read?: boolean; write?: boolean } = {};
  if (typeof read === 'boolean') flags.read = read;
  if (typeof write === 'boolean') flags.write = write;
  return Object.freeze(flags);
}

/** A shared frozen value for files without record, so lookups allocate nothing. */
const UNSET: AccessFlags = Object.freeze({});

/**
 * The per-section access-modifier store (sync-rules.md R7.1): relative path → flags. A record,
 * once made, is never removed (unsetting both flags keeps a record with both unset, as in the
 * original), so `has` tells whether the file has ever been given modifiers.
 *
 * Persistent in a crash-safe JSON-lines file (`JsonLog`), created on the first `set` (a missing
 * file reads as empty), or in memory only when opened with `null`. Every `set` is written and
 * synced to disk at once. A file at the path that is not an
 * access-modifier file is an error (CorruptRecord), never overwritten.
 */
export class AccessStore {
  readonly #rules = new Map<string, AccessFlags>();
  #log: JsonLog | undefined;

  private constructor(log: JsonLog | undefined) {
    this.#log = log;
  }

  /** Opens the store in `file`, or an in-memory store for `null`. */
  static async open(file: string | null): Promise<AccessStore> {
    if (file === null) return new AccessStore(undefined);
    const store = new AccessStore(undefined);
    const log = await JsonLog.open(file, {
      kind: KIND,
      onForeign: 'throw',
      onRecord: ({ p, r, w }) => {
        if (typeof p === 'string' && isRelPath(p)) store.#rules.set(p, makeFlags(r, w));
      },
    });
    store.#log = log;
    if (log.needsRewrite || log.lines > 2 * store.#rules.size + 1000) log.rewrite(store.#records());
    return store;
  }

  *#records(): Generator<Record<string, unknown>> {
    for (const [p, flags] of this.#rules) yield { p, r: stored(flags.read), w: stored(flags.write) };
  }

  /** The flags of `path` (both unset when it has no record). */
  get(path: RelPath): AccessFlags {
    return this.#rules.get(path) ?? UNSET;
  }

  /** Whether `path` has a record (even one with both flags unset). */
  has(path: RelPath): boolean {
    return this.#rules.has(path);
  }

  /**
   * Applies modifiers (a string such as `r-w+`, or a parsed change) to `path` and returns the new
   * flags; letters not given keep their value. Throws Usage for a bad modifier string.
   */
  set(path: RelPath, modifiers: string | AccessChange): AccessFlags {
    const change = typeof modifiers === 'string' ? parseModifiers(modifiers) : modifiers;
    const before = this.get(path);
    const read = change.read === undefined ? before.read : (change.read ?? undefined);
    const write = change.write === undefined ? before.write : (change.write ?? undefined);
    const flags = makeFlags(read, write);
    this.#rules.set(path, flags);
    if (this.#log !== undefined) {
      this.#log.append({ p: path, r: stored(read), w: stored(write) });
      // why: modifiers protect files (conservative mode's w-); they go to the file at once, not at the end of a round.
      this.#log.flush();
    }
    return flags;
  }

  /** Every path with a record and its flags, in the order first recorded. */
  *entries(): IterableIterator<[RelPath, AccessFlags]> {
    for (const [path, flags] of this.#rules) yield [path as RelPath, flags];
  }

  /** The plain lookup function the planner takes: path → flags. */
  reader(): (path: RelPath) => AccessFlags {
    return (path) => this.get(path);
  }

  /** Forces recorded changes to disk. */
  async flush(): Promise<void> {
    this.#log?.flush();
  }

  /** Flushes and closes the file; the store must not be used afterwards. */
  async close(): Promise<void> {
    this.#log?.close();
  }
}
