/**
 * A pool of shared strings for loading the stores of a client: the same path and the same checksum
 * are read from several files (checksum cache, base state, placeholder cache), and each read makes
 * a new string; passed through `intern`, each value is kept once (a sha512 checksum in hex is 144
 * bytes, a path ~60, per file and per store). The pool itself is emptied with `releaseInterned`
 * once the stores are open: the strings stay shared by the stores that hold them.
 */
const pool = new Map<string, string>();

/** The pooled string equal to `text` (`text` itself the first time). */
export function intern(text: string): string {
  const found = pool.get(text);
  if (found !== undefined) return found;
  pool.set(text, text);
  return text;
}

/** Empties the pool (after the stores are loaded). */
export function releaseInterned(): void {
  pool.clear();
}

/**
 * A copy of `text` that keeps no other string alive. why: V8 makes a substring of 13 characters or
 * more a view of the string it was cut from, so a checksum cut from a placeholder's text kept the
 * whole text (~270 bytes per relay file) for as long as the record lived. The JSON round trip
 * copies any string exactly (lone surrogates included).
 */
export function detached(text: string): string {
  return text.length < 13 ? text : (JSON.parse(JSON.stringify(text)) as string);
}

/** Most distinct lists `sharedList` keeps. */
const MAX_SHARED_LISTS = 1024;
/** Longest list `sharedList` shares. */
const MAX_SHARED_LENGTH = 8;
const lists = new Map<string, readonly string[]>();

/**
 * A copy of a list of strings exactly as long as it is, shared (and frozen) when short: the puller
 * lists of a relay's records name the same few clients, and a client keeps one record per relay
 * file (an array built by `push` keeps room for 17 entries, ~190 bytes). The pool is bounded,
 * whatever a relay holds.
 */
export function sharedList(list: readonly string[]): readonly string[] {
  if (list.length > MAX_SHARED_LENGTH) return list.map(detached);
  const key = JSON.stringify(list);
  const known = lists.get(key);
  if (known !== undefined) return known;
  const shared = Object.freeze(list.map(detached));
  if (lists.size < MAX_SHARED_LISTS) lists.set(key, shared);
  return shared;
}
