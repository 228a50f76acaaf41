import { EscaleError } from '../../core/errors.js';
import { MAX_SEGMENT_BYTES, type RelayPath, type RelPath } from '../../core/relpath.js';
import { indexNameProblem } from './page-index.js';

/** The page of every resource on a default index relay (`index = 1`), relay-format.md P4.1. */
export const DEFAULT_PAGE = '0';

/**
 * How resources are spread over pages (relay-format.md P4.1): one page `0` (`index = 1`), or one
 * page per folder prefix of `depth` components (`index = topdir[:depth]`).
 */
export type PageScheme = { readonly kind: 'single' } | { readonly kind: 'topdir'; readonly depth: number };

/**
 * Reads the page scheme from the value of the `index` option when it names the index protocol:
 * `topdir`, `topdir:N`, `top dir…` give topdir pages (depth 1 by default); any other accepted value
 * (`1`, `true`, …, decided by the config layer) gives the single page. Throws Config for a bad depth.
 */
export function pageSchemeOf(indexOption: string): PageScheme {
  const text = indexOption.trim().toLowerCase();
  // why: the original accepts `topdir`, `top dir`, `top directory`… (relay/__init__.py:105-132).
  const match = /^top\s*dir[a-z]*\s*(?::\s*(.*))?$/.exec(text);
  if (match === null) return { kind: 'single' };
  if (match[1] === undefined) return { kind: 'topdir', depth: 1 };
  const depth = Number(match[1].trim());
  if (!/^\d+$/.test(match[1].trim()) || depth < 1 || depth > 1000) {
    throw new EscaleError('Config', `index = ${JSON.stringify(indexOption)}: the topdir depth must be a positive integer`);
  }
  return { kind: 'topdir', depth };
}

/**
 * The page name of a resource: `0` for the single scheme; for `topdir:N`, the first N folder
 * components joined with `_` and every `.` replaced by `_` when the resource has at least N
 * folders, `0` otherwise (relay-format.md P4.1; colliding folders share a page, F-28).
 */
export function pageOf(resource: RelPath, scheme: PageScheme): string {
  if (scheme.kind === 'single') return DEFAULT_PAGE;
  const folders = resource.split('/').slice(0, -1);
  if (folders.length < scheme.depth) return DEFAULT_PAGE;
  return folders.slice(0, scheme.depth).join('_').replaceAll('.', '_');
}

/** Why `page` cannot be a page name, or undefined when it can (non-empty, no `.`, `/`, `\`, NUL or control). */
export function pageNameProblem(page: string): string | undefined {
  if (page === '') return 'is empty';
  // why: `listPages` only recognises `.X.index` with no `.` in X, so such a page would be invisible.
  if (page.includes('.')) return "contains '.'";
  if (page.includes('/') || page.includes('\\')) return 'contains a path separator';
  // eslint-disable-next-line no-control-regex -- why: control characters are exactly what we look for
  if (/[\x00-\x1f\x7f]/.test(page)) return 'contains a control character';
  return undefined;
}

/** Digits of `T` reserved in the longest page file name (`.<P>.<T>.index`): whole seconds until the year 2286. */
const STAMP_DIGITS = 10;

/**
 * Why a resource cannot be listed on an index relay with `scheme` although its name is safe, or
 * undefined: a name ending with whitespace (an index line loses it), or a page (topdir: the first
 * folders) so long that its update index `.<P>.<T>.index` would pass 255 bytes.
 */
export function indexResourceProblem(resource: RelayPath, scheme: PageScheme): string | undefined {
  const nameProblem = indexNameProblem(resource);
  if (nameProblem !== undefined) return nameProblem;
  const page = pageOf(resource as RelPath, scheme);
  const longest = Buffer.byteLength(`.${page}.${'9'.repeat(STAMP_DIGITS)}.index`);
  if (longest > MAX_SEGMENT_BYTES) {
    return `is in index page '${[...page].slice(0, 40).join('')}…', whose relay file names would pass the limit of ${MAX_SEGMENT_BYTES} bytes (its top folders are too long for 'index = topdir')`;
  }
  return undefined;
}

function checkedPage(page: string): string {
  const problem = pageNameProblem(page);
  if (problem !== undefined) throw new EscaleError('InvalidName', `invalid page name ${JSON.stringify(page)}: it ${problem}`, { path: page });
  return page;
}

function checkedStamp(timestamp: number): number {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new EscaleError('Internal', `update timestamp must be a non-negative integer, got ${timestamp}`);
  }
  return timestamp;
}

/** The persistent index of a page: `.<P>.index` (relay root). */
export function persistentIndexName(page: string): RelPath {
  return `.${checkedPage(page)}.index` as RelPath;
}

/** The update index of a page's pending update: `.<P>.<T>.index` (relay root). */
export function updateIndexName(page: string, timestamp: number): RelPath {
  return `.${checkedPage(page)}.${checkedStamp(timestamp)}.index` as RelPath;
}

/** The update data (archive) of a page's pending update: `.<P>.<T>.data` (relay root). */
export function updateDataName(page: string, timestamp: number): RelPath {
  return `.${checkedPage(page)}.${checkedStamp(timestamp)}.data` as RelPath;
}

/** The page lock: `.<P>.lock` (relay root). */
export function pageLockName(page: string): RelPath {
  return `.${checkedPage(page)}.lock` as RelPath;
}

/** The kind of an index-protocol relay file (relay-format.md P4.2). */
export type PageFileKind = 'index' | 'update-index' | 'update-data' | 'lock';

/** A relay file name read back as (page, kind, update timestamp). */
export interface PageFileName {
  readonly page: string;
  readonly kind: PageFileKind;
  /** `T` of an update index or update data; undefined for the persistent index and the lock. */
  readonly timestamp?: number;
}

/**
 * Reads an index-protocol relay name back into (page, kind, T), or undefined when the name is not
 * one (nested names, other dot files, placeholder-protocol files). `T` is accepted as ASCII digits
 * with an optional `+` (Python `int()` accepts more, e.g. `_` separators; such names are left out).
 */
export function parsePageFileName(name: string): PageFileName | undefined {
  if (!name.startsWith('.') || name.includes('/')) return undefined;
  const parts = name.slice(1).split('.');
  const page = parts[0] ?? '';
  if (pageNameProblem(page) !== undefined) return undefined;
  if (parts.length === 2) {
    if (parts[1] === 'index') return { page, kind: 'index' };
    if (parts[1] === 'lock') return { page, kind: 'lock' };
    return undefined;
  }
  if (parts.length === 3) {
    const stamp = parts[1] ?? '';
    if (!/^\+?[0-9]{1,15}$/.test(stamp)) return undefined;
    const timestamp = Number(stamp);
    if (parts[2] === 'index') return { page, kind: 'update-index', timestamp };
    if (parts[2] === 'data') return { page, kind: 'update-data', timestamp };
  }
  return undefined;
}
