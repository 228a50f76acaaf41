import { EscaleError } from './errors.js';

declare const relayPathBrand: unique symbol;
declare const relPathBrand: unique symbol;

/**
 * A name as a relay or a disk spells it: a safe relative path (see `relPathProblem`) in any Unicode
 * normalisation form. Backends are called with these, so that a name another client wrote in NFD is
 * addressed exactly as it is stored. Build one with `relayPath()`.
 */
export type RelayPath = string & { readonly [relayPathBrand]: true };

/**
 * A safe relative path in Unicode NFC: the key under which escale matches a file on every side
 * (local folder, relay, indexes), whatever form each side spells it in. `/`-separated, no empty,
 * `.` or `..` segment, no leading `/` (see `relPathProblem`). The empty string denotes the root.
 * Build one with `relPath()`. Every RelPath is also a valid RelayPath.
 */
export type RelPath = RelayPath & { readonly [relPathBrand]: true };

/** The root of a tree (the empty relative path). */
export const ROOT = '' as RelPath;

/** Longest name segment accepted, in UTF-8 bytes (the common file-system limit). */
export const MAX_SEGMENT_BYTES = 255;

/** Longest whole path accepted, in UTF-8 bytes (Linux PATH_MAX less its NUL). */
export const MAX_PATH_BYTES = 4095;

/**
 * Why `text` can never name a file inside a folder, or undefined: a NUL, an absolute path, an empty,
 * `.` or `..` segment. No honest client has such a name; a relay that lists one is hostile or broken.
 */
export function hostilePathProblem(text: string): string | undefined {
  if (text === '') return undefined;
  if (text.includes('\0')) return 'contains a NUL character';
  if (text.startsWith('/')) return 'is absolute';
  for (const segment of text.split('/')) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a '${segment}' segment`;
  }
  return undefined;
}

// eslint-disable-next-line no-control-regex -- why: control characters are exactly what we look for
const CONTROL = /[\x00-\x1f\x7f]/;
// why: a lone surrogate is how `decodeName` spells a byte that is not UTF-8 (Python's surrogateescape).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why escale does not synchronise a name that an honest client may well have, or undefined:
 * - bytes that are not UTF-8 (and U+FFFD, which is what a lossy decoding left of them): such a
 *   name cannot be written into the UTF-8 relay records, nor be addressed back on most servers;
 * - control characters (tab, LF, CR, ESC…): line-based relay records cannot carry LF and CR, and
 *   the others are invisible in logs and listings;
 * - a backslash: the folder separator of Windows clients, which would read another path;
 * - a segment longer than 255 bytes or a path longer than 4095 bytes: no local file system holds it.
 * A colon is an ordinary character on POSIX systems, and `C:` an ordinary name.
 */
export function unsupportedNameProblem(text: string): string | undefined {
  if (LONE_SURROGATE.test(text)) return 'is not valid UTF-8';
  if (text.includes('\ufffd')) return 'is not valid UTF-8 (it holds U+FFFD, the mark a lossy decoding leaves)';
  if (CONTROL.test(text)) return 'contains a control character';
  if (text.includes('\\')) return 'contains a backslash';
  if (Buffer.byteLength(text) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of text.split('/')) {
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/** Why `text` is not a safe relay path, or undefined when it is one (any normalisation form). */
export function relPathProblem(text: string): string | undefined {
  if (isPlainSafePath(text)) return undefined;
  return hostilePathProblem(text) ?? unsupportedNameProblem(text);
}

/**
 * Whether `text` is a safe path made of printable ASCII only, checked in one pass: no control
 * character, backslash, empty, `.` or `..` segment, within the length limits. why: every name of
 * every listing and call is checked; the general checks (regular expressions, UTF-8 lengths of each
 * segment) cost several times more, and most names are plain ASCII. False says nothing: the
 * general checks decide.
 */
function isPlainSafePath(text: string): boolean {
  const length = text.length;
  if (length === 0 || length > MAX_PATH_BYTES) return false;
  let start = 0;
  for (let i = 0; i <= length; i += 1) {
    const code = i < length ? text.charCodeAt(i) : 0x2f;
    if (code === 0x2f) {
      const size = i - start;
      if (size === 0 || size > MAX_SEGMENT_BYTES) return false;
      if (text.charCodeAt(start) === 0x2e && (size === 1 || (size === 2 && text.charCodeAt(start + 1) === 0x2e))) return false;
      start = i + 1;
    } else if (code < 0x20 || code > 0x7e || code === 0x5c) return false;
  }
  return true;
}

/** Whether `text` is a safe relay path (any normalisation form). */
export function isRelayPath(text: string): text is RelayPath {
  return relPathProblem(text) === undefined;
}

/** Validates `text` without changing its spelling; throws InvalidName naming the problem. */
export function relayPath(text: string): RelayPath {
  const problem = relPathProblem(text);
  if (problem !== undefined) {
    throw new EscaleError('InvalidName', `unsafe relative path ${JSON.stringify(text)}: it ${problem}`, { path: text });
  }
  return text as RelayPath;
}

/** Validates and NFC-normalises `text`; throws InvalidName naming the problem. */
export function relPath(text: string): RelPath {
  return relayPath(text.normalize('NFC')) as RelPath;
}

/** Whether `text` is already a safe, NFC-normalised relative path. */
export function isRelPath(text: string): text is RelPath {
  return text === text.normalize('NFC') && relPathProblem(text) === undefined;
}

/** Joins a parent and child names into one relative path (validated, NFC). */
export function joinRel(parent: RelPath, ...children: string[]): RelPath {
  const parts = [parent, ...children].filter((p) => p !== '');
  return relPath(parts.join('/'));
}

/** Joins a parent and child names into one relay path, keeping their spelling (validated). */
export function joinRelay(parent: RelayPath, ...children: string[]): RelayPath {
  const parts = [parent, ...children].filter((p) => p !== '');
  return relayPath(parts.join('/'));
}

/** The parent folder of a path (the root for a top-level name), in the same spelling. */
export function dirnameRel<P extends RelayPath>(path: P): P {
  const slash = path.lastIndexOf('/');
  return (slash < 0 ? '' : path.slice(0, slash)) as P;
}

/** The last segment of a path. */
export function basenameRel(path: RelayPath): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * The folders that `spellings` (name → its spelling, for names not spelled in NFC) spell otherwise
 * than in NFC, each with its spelling: `cafe\u0301/a.txt` gives `café` → `cafe\u0301`.
 */
export function folderSpellings(spellings: ReadonlyMap<RelPath, RelayPath>): Map<RelPath, RelayPath> {
  const folders = new Map<RelPath, RelayPath>();
  for (const [key, spelled] of spellings) {
    const keyParts = key.split('/');
    const spelledParts = spelled.split('/');
    // why: normalisation never adds or removes a '/', but a hostile map could; such an entry says nothing of folders.
    if (keyParts.length !== spelledParts.length) continue;
    for (let depth = keyParts.length - 1; depth > 0; depth -= 1) {
      const folderKey = keyParts.slice(0, depth).join('/') as RelPath;
      const folder = spelledParts.slice(0, depth).join('/') as RelayPath;
      if (folder !== folderKey && !folders.has(folderKey)) folders.set(folderKey, folder);
    }
  }
  return folders;
}

/**
 * How a side that spells some names otherwise than in NFC spells `key`: its own spelling when it
 * has one, else `key` under the longest folder it spells otherwise (a new file in a folder another
 * client named in NFD goes into that folder, not into an NFC twin of it), else `key` itself.
 */
export function spellAs(key: RelPath, spellings: ReadonlyMap<RelPath, RelayPath>, folders: ReadonlyMap<RelPath, RelayPath>): RelayPath {
  const own = spellings.get(key);
  if (own !== undefined || folders.size === 0) return own ?? key;
  for (let slash = key.lastIndexOf('/'); slash > 0; slash = key.lastIndexOf('/', slash - 1)) {
    const folder = folders.get(key.slice(0, slash) as RelPath);
    if (folder !== undefined) return `${folder}${key.slice(slash)}` as RelayPath;
  }
  return key;
}

/**
 * Decodes a file name read as bytes: UTF-8 where it is valid, and each byte that is not as a lone
 * surrogate U+DC80–U+DCFF (Python's surrogateescape), so that such a name stays distinct, is refused
 * by `unsupportedNameProblem`, and shows in `JSON.stringify` as `\udcXX` escapes.
 */
export function decodeName(bytes: Uint8Array): string {
  const fast = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (!fast.includes('\ufffd')) return fast;
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) {
      out += String.fromCharCode(0xdc00 + (bytes[i] as number));
      i += 1;
    } else {
      out += Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      i += length;
    }
  }
  return out;
}

/** Length of the well-formed UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i] as number;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const b = bytes[i + k];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const [lo, hi] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const [lo, hi] = b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}
