import type { Readable } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import type { RelPath } from '../core/relpath.js';
import type { RelayClock } from './relay-clock.js';

/** One file or folder on a backend. */
export interface Entry {
  /** Path relative to the backend root. */
  readonly path: RelPath;
  readonly kind: 'file' | 'dir';
  /** Size in bytes (0 for folders; may be unknown as -1 on listings that do not give it). */
  readonly size: number;
  /** Modification time in milliseconds since the epoch, as the server reports it, if it does. */
  readonly mtimeMs?: number;
}

/** What a backend can do beyond the required contract. */
export interface Features {
  /** How many calls may run at once on this backend. */
  readonly maxConnections: number;
  /** Resolution of `Entry.mtimeMs` in milliseconds; undefined when listings give no mtimes. */
  readonly mtimePrecisionMs?: number;
  /** Whether `rename` replaces an existing target atomically. */
  readonly renameOverwrites: boolean;
  /** Whether `list` with `recursive` is served natively (one request for the whole tree). */
  readonly recursiveList: boolean;
}

/** Options every call accepts. */
export interface Op {
  /** Cancels the call; an aborted call changes nothing. */
  readonly signal?: AbortSignal;
}

/** Options for `list`. */
export interface ListOptions extends Op {
  /** List the whole tree below `dir` (files only are guaranteed; folders may be included). */
  readonly recursive?: boolean;
}

/** Options for `put`. */
export interface PutOptions extends Op {
  /** Fail with AlreadyExists instead of overwriting (best effort where the server cannot check atomically). */
  readonly exclusive?: boolean;
  /** Expected size in bytes, when known (lets some servers stream without buffering). */
  readonly size?: number;
}

/**
 * A place that stores opaque files under a root. It knows nothing of locks, placeholders,
 * indexes or encryption. Every failure is an EscaleError with a catalogue code (NotFound,
 * AlreadyExists, PermissionDenied, QuotaExceeded, InvalidName, Unsupported, Unavailable, Protocol,
 * Aborted).
 */
export interface Backend {
  /** Display form of the relay (protocol and location); never contains a secret. */
  readonly id: string;
  readonly features: Features;
  /**
   * What this connection knows of the relay's clock: learned from the mtimes its own puts return
   * (a backend feeds it from every put that answers with an mtime), and the judge of stale relay
   * files. Wrappers pass on the inner backend's.
   */
  readonly clock: RelayClock;
  /**
   * Lists the entries directly in `dir` (or the whole tree below it with `recursive`). A missing
   * `dir` yields nothing. Names the backend uses for its own temporaries are never listed.
   */
  list(dir: RelPath, options?: ListOptions): AsyncIterable<Entry>;
  /** Describes one path; throws NotFound when it does not exist. */
  stat(path: RelPath, options?: Op): Promise<Entry>;
  /** Opens a file for reading; throws NotFound when it does not exist. */
  get(path: RelPath, options?: Op): Promise<Readable>;
  /**
   * Stores a file, creating missing parent folders. All or nothing: readers see the old content
   * or the whole new content, never a part; a failed or aborted put leaves no trace.
   */
  put(path: RelPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry>;
  /** Deletes a file; throws NotFound when it does not exist. */
  delete(path: RelPath, options?: Op): Promise<void>;
  /** Renames a file, replacing the target if `features.renameOverwrites`; parents are created. */
  rename(from: RelPath, to: RelPath, options?: Op): Promise<void>;
  /** Creates a folder and its parents; succeeds if it exists already. */
  mkdir(dir: RelPath, options?: Op): Promise<void>;
  /** Releases connections; the backend is unusable afterwards. */
  close(): Promise<void>;
}

/** Reads a whole (small) relay file into memory: for records, never for user data. */
export async function readSmall(backend: Backend, path: RelPath, limitBytes: number, options?: Op): Promise<Buffer> {
  const stream = await backend.get(path, options);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limitBytes) {
      stream.destroy();
      throw new EscaleError('CorruptRecord', `relay file '${path}' is larger than ${limitBytes} bytes`, { path });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
