import { EscaleError } from './errors.js';

declare const relPathBrand: unique symbol;

/**
 * A safe relative path: `/`-separated, NFC-normalised, no empty, `.` or `..` segment, no leading
 * `/`, no backslash and no NUL. The empty string denotes the root. Build one with `relPath()`.
 */
export type RelPath = string & { readonly [relPathBrand]: true };

/** The root of a tree (the empty relative path). */
export const ROOT = '' as RelPath;

/** Longest name segment accepted, in UTF-8 bytes (the common file-system limit). */
export const MAX_SEGMENT_BYTES = 255;

/** Longest whole path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/** Why `text` is not a safe relative path, or undefined when it is one. */
export function relPathProblem(text: string): string | undefined {
  if (text === '') return undefined;
  if (text.includes('\0')) return 'contains a NUL character';
  if (text.includes('\\')) return 'contains a backslash';
  if (text.startsWith('/')) return 'is absolute';
  if (/^[A-Za-z]:/.test(text)) return 'starts with a drive letter';
  if (Buffer.byteLength(text) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of text.split('/')) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a '${segment}' segment`;
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
    // why: control characters (LF in particular) would corrupt line-based relay records.
    // eslint-disable-next-line no-control-regex -- why: control characters are exactly what we look for
    if (/[\x00-\x1f\x7f]/.test(segment)) return 'contains a control character';
  }
  return undefined;
}

/** Validates and NFC-normalises `text`; throws InvalidName naming the problem. */
export function relPath(text: string): RelPath {
  const normalised = text.normalize('NFC');
  const problem = relPathProblem(normalised);
  if (problem !== undefined) {
    throw new EscaleError('InvalidName', `unsafe relative path ${JSON.stringify(text)}: it ${problem}`, { path: text });
  }
  return normalised as RelPath;
}

/** Whether `text` is already a safe, NFC-normalised relative path. */
export function isRelPath(text: string): text is RelPath {
  return text === text.normalize('NFC') && relPathProblem(text) === undefined;
}

/** Joins a parent and child names into one relative path (validated). */
export function joinRel(parent: RelPath, ...children: string[]): RelPath {
  const parts = [parent, ...children].filter((p) => p !== '');
  return relPath(parts.join('/'));
}

/** The parent folder of a path (ROOT for a top-level name). */
export function dirnameRel(path: RelPath): RelPath {
  const slash = path.lastIndexOf('/');
  return (slash < 0 ? '' : path.slice(0, slash)) as RelPath;
}

/** The last segment of a path. */
export function basenameRel(path: RelPath): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
