import type { RelPath } from '../../core/relpath.js';

/** Integer POSIX seconds of a millisecond mtime, truncated toward zero like Python's `int()`. */
export function mtimeSecOf(mtimeMs: number): number {
  return Math.trunc(mtimeMs / 1000);
}

/**
 * The metadata record of one resource (relay-format.md P2.2): the content of a placeholder file,
 * or the value stored for a resource in an index.
 */
export interface MetadataRecord {
  /** Version after the `%` of the header, e.g. `1.0`; undefined for legacy records. */
  readonly version?: string;
  readonly pusher?: string;
  /** Integer POSIX seconds of the pushed file's mtime. */
  readonly timestamp?: number;
  /** Lowercase hex checksum of the plaintext. */
  readonly checksum?: string;
  readonly parts?: number;
  /** Names of the clients that pulled this version, in the order written (may repeat). */
  readonly pullers: readonly string[];
}

/**
 * A metadata record with only the fields that are defined, in insertion order version, pusher,
 * timestamp, checksum, parts, pullers. why: a client keeps one per relay file; V8 gives an object
 * literal room for exactly its own fields, so a record spread from optional fields became a
 * dictionary with a hidden class of its own (~500 bytes), and one grown field by field past four
 * fields spills into a property array: the usual shape is one literal, every field in the object.
 */
export function metadataRecord(version: string | undefined, pusher: string | undefined, timestamp: number | undefined, checksum: string | undefined, parts: number | undefined, pullers: readonly string[]): MetadataRecord {
  if (version !== undefined && pusher !== undefined && timestamp !== undefined && checksum !== undefined && parts === undefined) return { version, pusher, timestamp, checksum, pullers };
  const record = {} as { -readonly [K in keyof MetadataRecord]: MetadataRecord[K] };
  if (version !== undefined) record.version = version;
  if (pusher !== undefined) record.pusher = pusher;
  if (timestamp !== undefined) record.timestamp = timestamp;
  if (checksum !== undefined) record.checksum = checksum;
  if (parts !== undefined) record.parts = parts;
  record.pullers = pullers;
  return record;
}

/**
 * The record a client writes for a file it pushes (relay-format.md P2.2, P4.3): itself as pusher,
 * the integer mtime, the plaintext checksum (when checksums are on), and no puller yet. The
 * placeholder and index engines and `escalectl fix` all write exactly this.
 */
export function pushedRecord(client: string, mtimeMs: number, checksum: string | undefined): MetadataRecord {
  return { version: '1.0', pusher: client, timestamp: mtimeSecOf(mtimeMs), ...(checksum === undefined ? {} : { checksum }), pullers: [] };
}

/** Whether two records describe the same pushed version (pusher, timestamp and checksum; pullers aside). */
export function sameVersion(a: MetadataRecord, b: MetadataRecord): boolean {
  return a.pusher === b.pusher && a.timestamp === b.timestamp && a.checksum === b.checksum;
}

/** Options of `RelayPort.push`. */
export interface PushOptions {
  /** Size of the data in bytes, when known in advance (no encryption). */
  readonly size?: number;
  readonly signal?: AbortSignal;
  /** The relay held data at this path when planned: it is removed before the new record is written. */
  readonly replacesData?: boolean;
  /**
   * Called once the data is stored, before the resource is unlocked: throwing rolls the upload back
   * (data and record removed) instead of publishing it.
   */
  readonly confirm?: () => Promise<void>;
}

/** A lock record (relay-format.md P2.1). */
export interface LockRecord {
  readonly version?: string;
  /** Undefined for an unclaimed (empty) lock. */
  readonly owner?: string;
  readonly mode?: 'r' | 'w';
}

/** What the relay holds for one resource of the placeholder protocol. */
export interface RemoteFile {
  readonly path: RelPath;
  /** The regular (data) file is on the relay. */
  readonly hasData: boolean;
  /** A lock file exists for the resource (its content is read only by repair). */
  readonly locked: boolean;
  /** The parsed placeholder; undefined when there is none. */
  readonly record?: MetadataRecord;
  /** Set when a placeholder exists but could not be read or parsed. */
  readonly recordProblem?: string;
  /** Size of the data file on the relay in bytes, when listed. */
  readonly size?: number;
}
