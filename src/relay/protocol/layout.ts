import { EscaleError } from '../../core/errors.js';
import { basenameRel, dirnameRel, joinRel, type RelPath } from '../../core/relpath.js';

/** First character of every special file's base name (relay-protocol §1.2, §3.1). */
export const SPECIAL_PREFIX = '.';

/** Suffix of a placeholder-protocol lock file: `D/.N.lock`. */
export const LOCK_SUFFIX = '.lock';

/** Suffix of a placeholder file: `D/.N.placeholder`. */
export const PLACEHOLDER_SUFFIX = '.placeholder';

/** Suffix of a message file (never written in 0.7; always ignored, relay-protocol §3.10). */
export const MESSAGE_SUFFIX = '.message';

/** What a relay file is, judged by its base name (relay-protocol §3.1). */
export type RelayNameKind = 'data' | 'lock' | 'placeholder' | 'message' | 'other';

/** A classified relay file: its kind and, for data, locks and placeholders, the resource it belongs to. */
export interface RelayName {
  readonly kind: RelayNameKind;
  /** The resource `D/N`; undefined for messages and `other`. */
  readonly resource?: RelPath;
}

/** Why `path` cannot be a resource (a synchronised file), or undefined when it can. */
export function resourceProblem(path: RelPath): string | undefined {
  if (path === '') return 'is empty';
  // why: the local scan skips every dot name, so no resource has a dot component; that is the only
  // thing that keeps user data and protocol files apart (relay-protocol §1.2).
  if (path.split('/').some((segment) => segment.startsWith(SPECIAL_PREFIX))) return "has a component starting with '.'";
  return undefined;
}

/** Returns `path` if it can be a resource; throws InvalidName otherwise. */
export function assertResource(path: RelPath): RelPath {
  const problem = resourceProblem(path);
  if (problem !== undefined) throw new EscaleError('InvalidName', `'${path}' cannot be a relay resource: it ${problem}`, { path });
  return path;
}

/** The lock file of resource `D/N`: `D/.N.lock` (throws InvalidName if the name gets too long). */
export function lockPathOf(resource: RelPath): RelPath {
  return specialPath(resource, LOCK_SUFFIX);
}

/** The placeholder file of resource `D/N`: `D/.N.placeholder` (throws InvalidName if the name gets too long). */
export function placeholderPathOf(resource: RelPath): RelPath {
  return specialPath(resource, PLACEHOLDER_SUFFIX);
}

function specialPath(resource: RelPath, suffix: string): RelPath {
  assertResource(resource);
  return joinRel(dirnameRel(resource), `${SPECIAL_PREFIX}${basenameRel(resource)}${suffix}`);
}

/**
 * Classifies a relay file by its base name: a data file has no dot component; a lock, placeholder
 * or message starts with `.` and ends with its suffix and sits in a folder without dot components;
 * anything else (index-protocol files, dot folders, `.lock` alone) is `other` and must be ignored.
 */
export function classifyRelayName(path: RelPath): RelayName {
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
    return { kind, resource: joinRel(dir, inner) };
  }
  return { kind: 'other' };
}
