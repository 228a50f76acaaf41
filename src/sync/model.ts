import type { RelPath } from '../core/relpath.js';
import type { MetadataRecord } from '../relay/protocol/records.js';

/** The effective synchronization mode of a client (configuration.md C8). */
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

/** Per-file access modifiers (sync-rules.md R7): undefined means "not set" (allowed). */
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
       * Record access modifiers for a local file (sync-rules.md R7.2: conservative mode records `w-`
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
       * timestamp (a side effect on user files, sync-rules.md B-4). Never set in upload mode; the engine may ignore it.
       */
      readonly resetLocalMtimeTo?: number;
    };
