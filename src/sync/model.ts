import type { RelPath } from '../core/relpath.js';
import { mtimeSecOf } from './compare.js';

/** The effective synchronization mode of a client (cli-and-config §5.1). */
export type SyncMode = 'upload' | 'download' | 'shared' | 'conservative';

/** A local file as the scanner saw it. */
export interface LocalFile {
  readonly path: RelPath;
  readonly size: number;
  /** Modification time in milliseconds, as stat gives it. */
  readonly mtimeMs: number;
  /** Status-change time in milliseconds and inode number, as the scanner gives them (see `FileIdentity`). */
  readonly ctimeMs?: number;
  readonly ino?: string;
  /** Lowercase hex checksum of the plaintext, when computed (absent when checksums are off). */
  readonly checksum?: string;
}

/**
 * The metadata record of one resource (relay-protocol §2.2): the content of a placeholder file,
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
 * The record a client writes for a file it pushes (relay-protocol §2.2, §4.3): itself as pusher,
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

/** A lock record (relay-protocol §2.1). */
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

/** Per-file access modifiers (cli-and-config §6): undefined means "not set" (allowed). */
export interface AccessRule {
  /** `r+`/`r-`: whether the file may be uploaded. */
  readonly read?: boolean;
  /** `w+`/`w-`: whether the file may be written by a download. */
  readonly write?: boolean;
}

/** One step the engine must carry out; produced by the pure planner. */
export type Action =
  | {
      readonly kind: 'download';
      readonly path: RelPath;
      readonly reason: 'new' | 'update';
      /** The relay record the downloaded content must match (checksum, timestamp). */
      readonly record?: MetadataRecord;
      /** Leave the data on the relay after the pull (other pullers still need it). */
      readonly keepOnRelay: boolean;
      /** The local file this download replaces, as scanned; undefined when there is none. */
      readonly replaces?: LocalFile;
    }
  | {
      readonly kind: 'upload';
      readonly path: RelPath;
      readonly reason: 'new' | 'update' | 'refresh-metadata';
      readonly local: LocalFile;
      /** The relay held data at this path when planned: the push removes it before writing the new record. */
      readonly replacesData?: boolean;
    }
  | {
      /** Remove the relay copy and record this client as a puller (it already has the content). */
      readonly kind: 'consume';
      readonly path: RelPath;
      readonly reason: 'duplicate' | 'outdated';
      /** For a duplicate: the local file and the relay record found identical (recorded as the base once consumed). */
      readonly local?: LocalFile;
      readonly record?: MetadataRecord;
    }
  | {
      /**
       * Record this client as a puller of the relay copy without downloading it: the local file has
       * the record's checksum (`puller count` ≥ 2). The data leaves the relay when this makes N pullers.
       */
      readonly kind: 'register-puller';
      readonly path: RelPath;
      readonly reason: 'identical';
      /** The relay record planned from; registering is refused if the relay holds another version by then. */
      readonly record: MetadataRecord & { readonly checksum: string };
      /** The local file found identical (recorded as the base once registered). */
      readonly local: LocalFile;
    }
  | {
      /**
       * The local file and the relay record hold the same content (equal checksums) while the base
       * says otherwise or is missing: record them as the base. Touches neither the relay nor the file,
       * and is not shown by dry runs.
       */
      readonly kind: 'record-base';
      readonly path: RelPath;
      readonly reason: 'identical';
      readonly local: LocalFile;
      readonly record: MetadataRecord;
    }
  | {
      /**
       * Ask the pusher to send a version again (row resend-missing): its data left the relay before
       * `puller count` distinct pullers had it, and not to this client. The placeholder is deleted
       * under the lock, which the record protocol reads as "send it again".
       */
      readonly kind: 'request-resend';
      readonly path: RelPath;
      readonly reason: 'pulled-too-early';
      /** The relay record planned from; nothing is deleted if the relay holds another version by then. */
      readonly record: MetadataRecord;
    }
  | {
      /**
       * Record access modifiers for a local file (cli-and-config §6.3: conservative mode records `w-`
       * for a pre-existing local file when a download of it is refused).
       */
      readonly kind: 'set-access';
      readonly path: RelPath;
      /** Modifiers in the `escalectl access` syntax, e.g. `w-`. */
      readonly modifiers: string;
      readonly reason: 'protect-pre-existing';
    }
  | {
      /** Nothing to do, but worth a log line (skips, anomalies, warnings). */
      readonly kind: 'note';
      readonly path: RelPath;
      readonly level: 'debug' | 'info' | 'warning';
      readonly message: string;
      /**
       * Identical content with a different mtime: the original resets the local mtime to this relay
       * timestamp (a side effect on user files, D-36). Never set in upload mode; the engine may ignore it.
       */
      readonly resetLocalMtimeTo?: number;
    };
