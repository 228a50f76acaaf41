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
