import { EscaleError } from '../../core/errors.js';
import { basenameRel, dirnameRel, joinRelay, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, type RelayPath } from '../../core/relpath.js';

/** First character of every special file's base name (relay-format.md P1.2, P3.1). */
export const SPECIAL_PREFIX = '.';

/** Suffix of a placeholder-protocol lock file: `D/.N.lock`. */
export const LOCK_SUFFIX = '.lock';

/** Suffix of a placeholder file: `D/.N.placeholder`. */
export const PLACEHOLDER_SUFFIX = '.placeholder';

/** Suffix of a message file (never written in 0.7; always ignored, relay-format.md P1.4). */
export const MESSAGE_SUFFIX = '.message';

/** What a relay file is, judged by its base name (relay-format.md P3.1). */
export type RelayNameKind = 'data' | 'lock' | 'placeholder' | 'message' | 'other';

/** A classified relay file: its kind and, for data, locks and placeholders, the resource it belongs to. */
export interface RelayName {
  readonly kind: RelayNameKind;
  /** The resource `D/N`, spelled as the relay name; undefined for messages and `other`. */
  readonly resource?: RelayPath;
}

/** Why `path` cannot be a resource (a synchronised file), or undefined when it can. */
export function resourceProblem(path: RelayPath): string | undefined {
  if (path === '') return 'is empty';
  // why: the local scan skips every dot name, so no resource has a dot component; that is the only
  // thing that keeps user data and protocol files apart (relay-format.md P1.2).
  if (path.split('/').some((segment) => segment.startsWith(SPECIAL_PREFIX))) return "has a component starting with '.'";
  return undefined;
}

/** Returns `path` if it can be a resource; throws InvalidName otherwise. */
export function assertResource<P extends RelayPath>(path: P): P {
  const problem = resourceProblem(path);
  if (problem !== undefined) throw new EscaleError('InvalidName', `'${path}' cannot be a relay resource: it ${problem}`, { path });
  return path;
}

/** The lock file of resource `D/N`: `D/.N.lock`, in the resource's spelling (throws InvalidName if the name gets too long). */
export function lockPathOf(resource: RelayPath): RelayPath {
  return specialPath(resource, LOCK_SUFFIX);
}

/** The placeholder file of resource `D/N`: `D/.N.placeholder`, in the resource's spelling (throws InvalidName if the name gets too long). */
export function placeholderPathOf(resource: RelayPath): RelayPath {
  return specialPath(resource, PLACEHOLDER_SUFFIX);
}

function specialPath(resource: RelayPath, suffix: string): RelayPath {
  assertResource(resource);
  return joinRelay(dirnameRel(resource), `${SPECIAL_PREFIX}${basenameRel(resource)}${suffix}`);
}

/**
 * Why a resource cannot live on a placeholder relay although its name is safe, or undefined: its
 * placeholder `D/.N.placeholder` (the longest of its relay names) would pass the relay name limits
 * (255 bytes per name, 4095 per path), so its base name may have at most 242 bytes.
 */
export function placeholderNameProblem(resource: RelayPath): string | undefined {
  const extra = Buffer.byteLength(SPECIAL_PREFIX + PLACEHOLDER_SUFFIX);
  if (Buffer.byteLength(basenameRel(resource)) + extra > MAX_SEGMENT_BYTES) {
    return `is longer than ${MAX_SEGMENT_BYTES - extra} bytes, so its placeholder name '.<name>${PLACEHOLDER_SUFFIX}' would pass the limit of ${MAX_SEGMENT_BYTES} bytes of a relay name`;
  }
  if (Buffer.byteLength(resource) + extra > MAX_PATH_BYTES) {
    return `is longer than ${MAX_PATH_BYTES - extra} bytes, so the path of its placeholder would pass the limit of ${MAX_PATH_BYTES} bytes`;
  }
  return undefined;
}

/**
 * The name of the resource a relay file belongs to, read from the text alone (no validation, so it
 * also serves names that are refused): `D/.N.lock` and `D/.N.placeholder` give `D/N`; any other
 * name is returned unchanged.
 */
export function resourceNameOf(name: string): string {
  const slash = name.lastIndexOf('/');
  const base = name.slice(slash + 1);
  if (!base.startsWith(SPECIAL_PREFIX)) return name;
  for (const suffix of [LOCK_SUFFIX, PLACEHOLDER_SUFFIX]) {
    if (base.endsWith(suffix) && base.length > SPECIAL_PREFIX.length + suffix.length) {
      return name.slice(0, slash + 1) + base.slice(SPECIAL_PREFIX.length, base.length - suffix.length);
    }
  }
  return name;
}

/**
 * Classifies a relay file by its base name: a data file has no dot component; a lock, placeholder
 * or message starts with `.` and ends with its suffix and sits in a folder without dot components;
 * anything else (index-protocol files, dot folders, `.lock` alone) is `other` and must be ignored.
 */
export function classifyRelayName(path: RelayPath): RelayName {
  if (path === '') return { kind: 'other' };
  const dir = dirnameRel(path);
  if (dir !== '' && resourceProblem(dir) !== undefined) return { kind: 'other' };
  const base = basenameRel(path);
  if (!base.startsWith(SPECIAL_PREFIX)) return { kind: 'data', resource: path };
  if (base.endsWith(MESSAGE_SUFFIX)) return { kind: 'message' };
  for (const [kind, suffix] of [['lock', LOCK_SUFFIX], ['placeholder', PLACEHOLDER_SUFFIX]] as const) {
    if (!base.endsWith(suffix)) continue;
    const inner = base.slice(SPECIAL_PREFIX.length, base.length - suffix.length);
    if (inner === '' || inner.startsWith(SPECIAL_PREFIX)) return { kind: 'other' };
    return { kind, resource: joinRelay(dir, inner) };
  }
  return { kind: 'other' };
}
