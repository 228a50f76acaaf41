import type { Readable } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import { relPathProblem, type RelayPath } from '../core/relpath.js';
import { takeWhole } from '../core/whole-file.js';
import type { RelayClock } from './relay-clock.js';

/** One file or folder on a backend. */
export interface Entry {
  /** Path relative to the backend root, spelled exactly as the backend stores it (any Unicode form). */
  readonly path: RelayPath;
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
  /**
   * Receives each listed name that the backend cannot hand out as a RelayPath (not valid UTF-8, a
   * backslash, a control character, too long, `..`…), with the reason (`relPathProblem`'s words).
   * Such names are never yielded; a refused folder is reported once and not descended into.
   */
  readonly onRefused?: (name: string, problem: string) => void;
  /**
   * Receives each entry the backend found but cannot describe (it could not be stat'ed, for a
   * reason other than its removal since the folder was read), with the error; the listing goes on
   * without it. Without a receiver such an entry is left out silently.
   */
  readonly onUnreadable?: (path: string, error: EscaleError) => void;
}

/** Options for `put`. */
export interface PutOptions extends Op {
  /** Fail with AlreadyExists instead of overwriting (best effort where the server cannot check atomically). */
  readonly exclusive?: boolean;
  /** Expected size in bytes, when known (lets some servers stream without buffering). */
  readonly size?: number;
  /**
   * False when the caller can live with a crash of the relay's machine losing or emptying this file
   * once it is stored (the lock of an upload: see the crash argument of the `file` backend): a
   * backend that flushes each put to stable storage (the `file` backend) may then skip the flush.
   * Default true. Readers still see all or nothing.
   */
  readonly durable?: boolean;
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
   * Lists the entries directly in `dir` (or the whole tree below it with `recursive`), each named as
   * the backend stores it (no Unicode normalisation). A missing `dir` yields nothing. Names the
   * backend uses for its own temporaries are never listed; names it cannot address go to `onRefused`.
   */
  list(dir: RelayPath, options?: ListOptions): AsyncIterable<Entry>;
  /** Describes one path; throws NotFound when it does not exist. */
  stat(path: RelayPath, options?: Op): Promise<Entry>;
  /** Opens a file for reading; throws NotFound when it does not exist. */
  get(path: RelayPath, options?: Op): Promise<Readable>;
  /**
   * Stores a file, creating missing parent folders. All or nothing: readers see the old content
   * or the whole new content, never a part; a failed or aborted put leaves no trace.
   */
  put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry>;
  /** Deletes a file; throws NotFound when it does not exist. */
  delete(path: RelayPath, options?: Op): Promise<void>;
  /** Renames a file, replacing the target if `features.renameOverwrites`; parents are created. */
  rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void>;
  /** Creates a folder and its parents; succeeds if it exists already. */
  mkdir(dir: RelayPath, options?: Op): Promise<void>;
  /** Releases connections; the backend is unusable afterwards. */
  close(): Promise<void>;
}

/**
 * A Backend that passes every call to `inner`: the base of wrappers, which override only the calls
 * they watch or change (identity, features and clock are the inner backend's).
 */
export class ForwardingBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;

  constructor(protected readonly inner: Backend) {
    this.id = inner.id;
    this.features = inner.features;
    this.clock = inner.clock;
  }

  list(dir: RelayPath, options?: ListOptions): AsyncIterable<Entry> {
    return this.inner.list(dir, options);
  }

  stat(path: RelayPath, options?: Op): Promise<Entry> {
    return this.inner.stat(path, options);
  }

  get(path: RelayPath, options?: Op): Promise<Readable> {
    return this.inner.get(path, options);
  }

  put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    return this.inner.put(path, body, options);
  }

  delete(path: RelayPath, options?: Op): Promise<void> {
    return this.inner.delete(path, options);
  }

  rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    return this.inner.rename(from, to, options);
  }

  mkdir(dir: RelayPath, options?: Op): Promise<void> {
    return this.inner.mkdir(dir, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Reads a whole (small) relay file into memory: for records, never for user data. */
export async function readSmall(backend: Backend, path: RelayPath, limitBytes: number, options?: Op): Promise<Buffer> {
  const stream = await backend.get(path, options);
  const whole = takeWhole(stream);
  if (whole !== undefined) {
    if (whole.length > limitBytes) throw new EscaleError('CorruptRecord', `relay file '${path}' is larger than ${limitBytes} bytes`, { path });
    return whole;
  }
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

/**
 * The path of a listed `name` below `dir` when it is a safe RelayPath (spelling kept); otherwise the
 * name is passed to `options.onRefused` with its problem and undefined is returned. Every backend's
 * listing goes through here, so that all of them refuse the same names in the same words.
 */
export function listedPath(dir: RelayPath, name: string, options: ListOptions): RelayPath | undefined {
  const path = dir === '' ? name : `${dir}/${name}`;
  const problem = relPathProblem(path);
  if (problem === undefined) return path as RelayPath;
  options.onRefused?.(path, problem);
  return undefined;
}
