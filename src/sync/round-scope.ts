import type { RelPath } from '../core/relpath.js';
import type { RemoteFile } from '../relay/protocol/records.js';

/**
 * The relay paths whose description differs between two reads of the relay: added, removed, or
 * changed in data, lock, size or record (pusher, timestamp, checksum, pullers) or its problem.
 */
export function changedRemotePaths(before: ReadonlyMap<RelPath, RemoteFile>, after: ReadonlyMap<RelPath, RemoteFile>): Set<RelPath> {
  const changed = new Set<RelPath>();
  for (const [path, next] of after) {
    const previous = before.get(path);
    if (previous === undefined || !sameRemote(previous, next)) changed.add(path);
  }
  for (const path of before.keys()) if (!after.has(path)) changed.add(path);
  return changed;
}

function sameRemote(a: RemoteFile, b: RemoteFile): boolean {
  if (a === b) return true;
  if (a.hasData !== b.hasData || a.locked !== b.locked || a.size !== b.size || a.recordProblem !== b.recordProblem) return false;
  const x = a.record;
  const y = b.record;
  if (x === y) return true;
  if (x === undefined || y === undefined) return false;
  return (
    x.version === y.version &&
    x.pusher === y.pusher &&
    x.timestamp === y.timestamp &&
    x.checksum === y.checksum &&
    x.parts === y.parts &&
    x.pullers.length === y.pullers.length &&
    x.pullers.every((name, i) => name === y.pullers[i])
  );
}

/** The entries of `map` whose path is in `paths` (a fresh map the caller may change). */
export function restrictTo<V>(map: ReadonlyMap<RelPath, V>, paths: ReadonlySet<RelPath>): Map<RelPath, V> {
  const out = new Map<RelPath, V>();
  if (paths.size < map.size) {
    for (const path of paths) {
      const value = map.get(path);
      if (value !== undefined) out.set(path, value);
    }
  } else {
    for (const [path, value] of map) if (paths.has(path)) out.set(path, value);
  }
  return out;
}
