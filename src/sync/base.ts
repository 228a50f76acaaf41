import type { BaseVersion } from '../local/base-store.js';
import { sameIdentity } from '../local/file-identity.js';
import type { LocalFile } from './model.js';
import type { MetadataRecord } from '../relay/protocol/records.js';

// Pure comparisons of the local file and the relay record with the base (the version this client
// last agreed on with the relay, see `BaseStore`). No I/O, no clock: what changed is decided from
// contents and identities, never by comparing one machine's clock with another's.

/**
 * Where a path stands against its base, for both planners:
 * - `no-base`: no base, or no local file or no relay record to compare (the rules without a base apply);
 * - `in-sync`: neither side changed since the base;
 * - `local-changed`: only the local file changed (it is sent, whatever the mtimes say);
 * - `relay-changed`: only the relay record changed (it is fetched, whatever the mtimes say);
 * - `both-changed`: a concurrent edit. For now last-writer-wins by mtime decides, as without a base;
 *   issue 16 turns this cell into conflict copies.
 */
export type BaseRelation = 'no-base' | 'in-sync' | 'local-changed' | 'relay-changed' | 'both-changed';

/**
 * Whether the local file differs from the base version: an unchanged identity (size, mtime, ctime,
 * inode) means unchanged; otherwise equal checksums mean unchanged content (a touched or copied
 * file); without checksums a different size or mtime means changed (the ctime and inode alone are
 * not taken as an edit: a chmod or a hard link moves them).
 */
export function localChangedSince(local: LocalFile, base: BaseVersion): boolean {
  if (sameIdentity(local, base)) return false;
  if (local.checksum !== undefined && base.checksum !== undefined) return local.checksum !== base.checksum;
  return local.size !== base.size || local.mtimeMs !== base.mtimeMs;
}

/**
 * Whether the relay record describes another version than the base: by checksum when both have one
 * (the same content pushed again is no change), else by pusher and timestamp.
 */
export function relayChangedSince(record: MetadataRecord, base: BaseVersion): boolean {
  if (record.checksum !== undefined && base.checksum !== undefined) return record.checksum !== base.checksum;
  return record.pusher !== base.pusher || record.timestamp !== base.timestamp;
}

/** Where `local` and `record` stand against `base` (see `BaseRelation`). */
export function relationToBase(local: LocalFile | undefined, record: MetadataRecord | undefined, base: BaseVersion | undefined): BaseRelation {
  if (base === undefined || local === undefined || record === undefined) return 'no-base';
  const localChanged = localChangedSince(local, base);
  const relayChanged = relayChangedSince(record, base);
  if (localChanged) return relayChanged ? 'both-changed' : 'local-changed';
  return relayChanged ? 'relay-changed' : 'in-sync';
}

/**
 * The base to record when the local file `local` and the relay `record` hold the same content:
 * after a push, a pull, a puller registration, the consumption of a duplicate, or when found
 * identical. `checksum` is the content's checksum when known (the bytes sent or written); the
 * record's is used otherwise.
 */
export function agreedVersion(local: Pick<LocalFile, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>, record: MetadataRecord, checksum?: string): BaseVersion {
  const sum = checksum ?? record.checksum;
  return {
    ...(sum === undefined ? {} : { checksum: sum }),
    size: local.size,
    mtimeMs: local.mtimeMs,
    ...(local.ctimeMs === undefined ? {} : { ctimeMs: local.ctimeMs }),
    ...(local.ino === undefined ? {} : { ino: local.ino }),
    ...(record.pusher === undefined ? {} : { pusher: record.pusher }),
    ...(record.timestamp === undefined ? {} : { timestamp: record.timestamp }),
  };
}
