import { intern, sharedList } from '../../core/intern.js';
import { metadataRecord, type MetadataRecord } from './records.js';

/** A placeholder as read, with the listing size and mtime it was read at (a change of either means reading it again). */
export interface CachedRecord {
  readonly mtimeMs: number;
  readonly size: number;
  readonly record?: MetadataRecord;
  readonly problem?: string;
}

/**
 * Where `PlaceholderRelay.describe` keeps what it read, by resource: a `Map` (one process), or a map
 * kept in the client's data folder (`PersistentMap`), so that a restarted client reads no
 * placeholder whose listing entry did not change. `durable` false keeps a value in memory only.
 */
export interface PlaceholderCache {
  get(path: string): CachedRecord | undefined;
  set(path: string, value: CachedRecord, durable?: boolean): unknown;
  delete(path: string): unknown;
  keys(): IterableIterator<string>;
}

/**
 * A cached placeholder as one compact object (a literal of its fields: grown field by field, the
 * object spilled its record into a property array, ~64 bytes more per relay file).
 */
export function cachedRecord(mtimeMs: number, size: number, record: MetadataRecord | undefined, problem: string | undefined): CachedRecord {
  if (problem === undefined) return record === undefined ? { mtimeMs, size } : { mtimeMs, size, record };
  return record === undefined ? { mtimeMs, size, problem } : { mtimeMs, size, record, problem };
}

/** Format version of persisted placeholder caches (raise it when the fields change meaning). */
export const PLACEHOLDER_CACHE_VERSION = 1;

/**
 * The JSON-lines fields of a cached placeholder: m mtime, s size, and either the record (v version,
 * u pusher, t timestamp, c checksum, n parts, l pullers) or x the problem that made it unreadable.
 */
export const PLACEHOLDER_CACHE_CODEC = {
  encode(value: CachedRecord): Record<string, unknown> {
    const r = value.record;
    return {
      m: value.mtimeMs,
      s: value.size,
      ...(value.problem === undefined ? {} : { x: value.problem }),
      ...(r === undefined
        ? {}
        : {
            l: r.pullers,
            ...(r.version === undefined ? {} : { v: r.version }),
            ...(r.pusher === undefined ? {} : { u: r.pusher }),
            ...(r.timestamp === undefined ? {} : { t: r.timestamp }),
            ...(r.checksum === undefined ? {} : { c: r.checksum }),
            ...(r.parts === undefined ? {} : { n: r.parts }),
          }),
    };
  },
  decode(o: Record<string, unknown>): CachedRecord | undefined {
    const { m, s, x, l, v, u, t, c, n } = o;
    if (typeof m !== 'number' || typeof s !== 'number' || (x !== undefined && typeof x !== 'string')) return undefined;
    if (l === undefined) return x === undefined ? undefined : { mtimeMs: m, size: s, problem: x };
    if (!Array.isArray(l) || !l.every((name) => typeof name === 'string')) return undefined;
    if ((v !== undefined && typeof v !== 'string') || (u !== undefined && typeof u !== 'string') || (c !== undefined && (typeof c !== 'string' || !/^[0-9a-f]+$/.test(c)))) return undefined;
    if ((t !== undefined && !Number.isSafeInteger(t)) || (n !== undefined && !Number.isSafeInteger(n))) return undefined;
    // why: one record per relay file, compact (see metadataRecord), its strings shared with the other stores and records.
    const record = metadataRecord(v === undefined ? undefined : intern(v as string), u === undefined ? undefined : intern(u as string), t as number | undefined, c === undefined ? undefined : intern(c as string), n as number | undefined, sharedList(l as string[]));
    return cachedRecord(m, s, record, x as string | undefined);
  },
};
