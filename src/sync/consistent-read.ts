import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import type { RelPath } from '../core/relpath.js';
import { createChecksum } from '../local/checksum.js';
import { sameIdentity } from '../local/file-identity.js';

/** The local file as stat saw it, before or after a read (size, mtime and, when known, ctime and inode). */
export interface ReadState {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs?: number;
  readonly ino?: string;
}

/**
 * Why the bytes read from a file may not be one version of it, or undefined when they are: the
 * number of bytes read differs from the size it had before, or its size, mtime, ctime or inode
 * (those known before the read) changed by the end of the read, or it vanished.
 */
export function readProblem(before: ReadState, after: ReadState | undefined, bytesRead: number): string | undefined {
  if (after === undefined) return 'it vanished while it was read';
  if (bytesRead !== before.size) return `its size changed while it was read (${bytesRead} bytes read, ${before.size} expected)`;
  const unchanged = before.ctimeMs !== undefined && before.ino !== undefined ? sameIdentity(before, after) : before.size === after.size && before.mtimeMs === after.mtimeMs;
  return unchanged ? undefined : 'it was modified while it was read';
}

/** Options of `ConsistentRead`. */
export interface ConsistentReadOptions {
  /** Hash algorithm of the checksums (Python or Node name); null or absent: the bytes are not hashed. */
  readonly algorithm?: string | null;
  /** The checksum announced for these bytes (in the relay record) before they were read, if any. */
  readonly announced?: string;
  /** Stats the file again once everything was read (undefined when it is gone). */
  readonly stat: () => Promise<ReadState | undefined>;
}

/**
 * Watches the plaintext of one local file while it is sent, and tells whether what was sent is one
 * consistent version: the version that `before` describes, whose checksum is the one announced.
 * `transform()` passes the bytes through, hashing and counting them; at the end it stats the file
 * again and fails the stream with Conflict when the bytes read are not that version (`readProblem`,
 * or a digest other than the announced checksum), so that an atomic put of the stream stores
 * nothing. A file that grows past its size fails the stream at once. `confirm()` gives the verdict
 * to a caller whose put succeeded (it must not publish unless it passes).
 */
export class ConsistentRead {
  #bytes = 0;
  #hash: Hash | undefined;
  #digest: string | undefined;
  #problem: string | undefined;
  #verdict: Promise<string | undefined> | undefined;

  constructor(
    private readonly path: RelPath,
    private readonly before: ReadState,
    private readonly options: ConsistentReadOptions,
  ) {
    this.#hash = options.algorithm ? createChecksum(options.algorithm) : undefined;
  }

  /** Why the bytes sent are not one consistent version, once known. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** The lowercase hex digest of the bytes read, once the read is complete and consistent. */
  get checksum(): string | undefined {
    return this.#problem === undefined ? this.#digest : undefined;
  }

  /** The pass-through stream to put between the file and the relay (before any encryption). */
  transform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) => {
        this.#bytes += chunk.length;
        if (this.#bytes > this.before.size) {
          callback(this.#fail(`it grew while it was read (more than ${this.before.size} bytes)`));
          return;
        }
        this.#hash?.update(chunk);
        callback(null, chunk);
      },
      flush: (callback: TransformCallback) => {
        this.#check().then(
          (problem) => callback(problem === undefined ? null : this.#fail(problem)),
          (error: unknown) => callback(this.#fail(`it could not be checked after it was read (${(error as Error).message})`)),
        );
      },
    });
  }

  /**
   * Judges a file read whole at once (`data`, then stat'ed: `after`, undefined when it vanished or
   * is no regular file), as the stream would have; throws Conflict when it is not one consistent
   * version. `confirm()` gives the same verdict afterwards.
   */
  whole(data: Uint8Array, after: ReadState | undefined): void {
    this.#bytes = data.byteLength;
    this.#hash?.update(data);
    this.#digest = this.#hash?.digest('hex');
    const problem = readProblem(this.before, after, this.#bytes) ?? this.#announcedMismatch();
    this.#verdict = Promise.resolve(problem);
    if (problem !== undefined) throw this.#fail(problem);
  }

  /**
   * Throws Conflict unless the whole file was read and found consistent. why: a consumer that knows
   * the size (an HTTP put with Content-Length) may stop reading once it has all the bytes, before the
   * stream's end runs the check: the check then runs here.
   */
  async confirm(): Promise<void> {
    if (this.#problem === undefined && this.#verdict === undefined && this.#bytes !== this.before.size) this.#problem = 'its read did not finish';
    if (this.#problem === undefined) {
      const problem = await this.#check();
      if (problem !== undefined) this.#problem ??= problem;
    }
    if (this.#problem !== undefined) throw this.#error(this.#problem);
  }

  /** The verdict on the bytes read so far, computed once (at the stream's end or by `confirm`). */
  #check(): Promise<string | undefined> {
    this.#verdict ??= this.#verify();
    return this.#verdict;
  }

  async #verify(): Promise<string | undefined> {
    const after = await this.options.stat();
    this.#digest = this.#hash?.digest('hex');
    return readProblem(this.before, after, this.#bytes) ?? this.#announcedMismatch();
  }

  /** Why the digest of the bytes read is not the checksum announced, or undefined. */
  #announcedMismatch(): string | undefined {
    const announced = this.options.announced?.toLowerCase();
    if (announced !== undefined && this.#digest !== undefined && this.#digest !== announced) return 'its content does not match the checksum computed before it was read';
    return undefined;
  }

  #fail(problem: string): EscaleError {
    this.#problem ??= problem;
    return this.#error(problem);
  }

  #error(problem: string): EscaleError {
    return new EscaleError('Conflict', `file '${this.path}' changed while it was sent: ${problem}`, { path: this.path });
  }
}
