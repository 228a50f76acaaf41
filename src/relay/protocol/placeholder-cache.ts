import { intern } from '../../core/intern.js';
import type { MetadataRecord } from './records.js';

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
    // why: built field by field: a spread of optional fields makes V8 keep each object in dictionary mode (~400 bytes), one per relay file.
    const record: { -readonly [K in keyof MetadataRecord]: MetadataRecord[K] } = { pullers: l as string[] };
    if (v !== undefined) record.version = v as string;
    if (u !== undefined) record.pusher = u as string;
    if (t !== undefined) record.timestamp = t as number;
    if (c !== undefined) record.checksum = intern(c as string);
    if (n !== undefined) record.parts = n as number;
    const cached: { -readonly [K in keyof CachedRecord]: CachedRecord[K] } = { mtimeMs: m, size: s, record };
    if (x !== undefined) cached.problem = x as string;
    return cached;
  },
};
