import type { Hash } from 'node:crypto';
import { closeSync, constants as fsConstants, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { EscaleError, fromSystemError } from '../../core/errors.js';
import { relayPath, type RelayPath, type RelPath } from '../../core/relpath.js';
import { createChecksum } from '../../local/checksum.js';
import { bzip2CompressParallel, bzip2DecompressParallel, type Bzip2Options, type Bzip2ParallelOptions } from './bzip2.js';
import { BLOCK, MAX_META_BYTES, TarParser, TarWriter, type ReadTarOptions, type TarEntry, type TarHandlers } from './tar.js';

export type { ReadTarOptions } from './tar.js';

// why: the tar code is our own rather than the `tar` package. The format is a fixed 512-byte header
// plus PAX or GNU long-name records, about 250 lines; writing it ourselves gives a reader that
// *refuses* hostile members with a clear error (node-tar sanitises: it strips `..` and leading `/`
// with a warning and extracts anyway), enforces our own size/entry limits while streaming, never
// creates links, and adds no dependency. Both dialects Python writes are read: PAX (`x` headers,
// Python >= 3.8, what the 0.7 fixtures contain) and GNU (`././@LongLink` `L` entries, Python <= 3.7),
// plus plain ustar. The codec itself is in tar.ts.

/**
 * The content of an archive member: its bytes (a small file read whole; copied before the next
 * member is opened, so the caller may reuse the buffer), a stream, or undefined to leave the file out.
 */
export type ArchiveContent = Uint8Array | Readable | undefined;

/** One file to put into an update archive. */
export interface ArchiveSource {
  /** The member name exactly as written (a resource keeps the spelling its index entry has). */
  readonly path: RelayPath;
  /** Size in bytes; the content from `open()` must have exactly this size. */
  readonly size: number;
  /** Integer POSIX seconds written as the member mtime (Python pullers ignore it). */
  readonly mtimeSec: number;
  /**
   * Opens the file's content; undefined leaves the file out of the archive (nothing of it is
   * written). A synchronous answer (bytes read at once) costs the writer no promise hop.
   */
  open(): ArchiveContent | Promise<ArchiveContent>;
}

/** Limits and cancellation of `unpackUpdate`. */
export interface UnpackOptions {
  /** Largest total size of the regular-file members, in bytes (also bounds the decompressor). */
  readonly maxBytes: number;
  /** Largest number of members (files and folders). */
  readonly maxEntries: number;
  readonly signal?: AbortSignal;
  /** Passed to the bzip2 decompressor (executable). */
  readonly bzip2?: Omit<Bzip2Options, 'signal'>;
  /** Hash algorithm (Python or Node name) of the members' checksums, computed while they are written; null or absent: none. */
  readonly algorithm?: string | null;
  /** Receives members skipped for a name escale does not sync (see `ReadTarOptions.onRefused`). */
  readonly onRefused?: (name: string, problem: string) => void;
}

/** A regular file extracted by `unpackUpdate`. */
export interface UnpackedFile {
  /** The member name in NFC: the file is at this path below the target folder. */
  readonly path: RelPath;
  readonly size: number;
  /** Lowercase hex digest of the extracted content, when `algorithm` was given. */
  readonly checksum?: string;
}

/** Decompressed bytes allowed per member on top of file contents: headers, a long name, padding. */
const OVERHEAD_PER_ENTRY = 3 * BLOCK + 2 * MAX_META_BYTES;
/**
 * Tar bytes gathered before one write to the compressor. why: each write is a stream hop and a
 * pipe write; 10,000 small files written piece by piece made 30,000 of them.
 */
const BATCH_BYTES = 256 * 1024;

/**
 * Builds an update archive `.<P>.<T>.data` before encryption (relay-format.md P4.6): a ustar tar, with
 * a PAX `path` record for names that are not ASCII or do not fit the ustar fields (what Python 3.8+
 * reads and writes), piped through bzip2: several streams compressed in parallel (see
 * `bzip2CompressParallel`), which Python's tarfile `r:bz2` reads as one. Only regular-file members,
 * named exactly by their paths; no folder members (Python's extractall creates parents). Streams one
 * file at a time. A file whose content is not `size` bytes makes the stream fail with Conflict.
 */
export function packUpdate(files: Iterable<ArchiveSource> | AsyncIterable<ArchiveSource>, options: Bzip2ParallelOptions = {}): Readable {
  const compressor = bzip2CompressParallel(options);
  pipeline(packTar(files), compressor, () => undefined);
  return compressor;
}

/**
 * Streams an uncompressed tar of `files`, one at a time, written as `packUpdate` writes its members
 * (ustar, PAX names and sizes where needed, regular files only), in writes of about 256 KiB. Files
 * given synchronously with synchronous content cost no promise hop each. A file whose content is
 * not `size` bytes makes the stream fail with Conflict.
 */
export function packTar(files: Iterable<ArchiveSource> | AsyncIterable<ArchiveSource>): Readable {
  return Readable.from(tarBatches(files), { objectMode: false, highWaterMark: BATCH_BYTES });
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

async function* tarBatches(files: Iterable<ArchiveSource> | AsyncIterable<ArchiveSource>): AsyncGenerator<Buffer> {
  const tar = new TarWriter(BATCH_BYTES);
  const iterator: Iterator<ArchiveSource> | AsyncIterator<ArchiveSource> = Symbol.asyncIterator in files ? files[Symbol.asyncIterator]() : files[Symbol.iterator]();
  for (;;) {
    const step = iterator.next();
    const next = isThenable(step) ? await step : step;
    if (next.done === true) break;
    const file = next.value;
    const name = relayPath(file.path);
    if (name === '') throw new EscaleError('InvalidName', 'an archive member needs a name');
    if (!Number.isSafeInteger(file.size) || file.size < 0) throw new EscaleError('Internal', `bad size ${file.size}`, { path: name });
    // why: opened before its header is written, so that a file that cannot be read leaves no member behind.
    const opened = file.open();
    const content = isThenable(opened) ? await opened : opened;
    if (content === undefined) continue;
    tar.fileHeader(name, file.size, file.mtimeSec);
    let written = 0;
    if (content instanceof Uint8Array) {
      written = content.length;
      if (written === file.size) tar.bytes(content);
    } else {
      for await (const chunk of content as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > file.size) break;
        tar.bytes(chunk);
        if (tar.hasFullBatch) yield* tar.take();
      }
      if (written !== file.size) content.destroy();
    }
    if (written !== file.size) {
      throw new EscaleError('Conflict', `${name} changed while it was archived (expected ${file.size} bytes, read ${written > file.size ? 'more' : written})`, { path: name });
    }
    tar.endMember(file.size);
    if (tar.hasFullBatch) yield* tar.take();
  }
  tar.finish();
  yield* tar.take(true);
}

/** One member of a tar, as `readTarMembers` yields it. */
export interface TarMember extends TarEntry {
  /**
   * The member's bytes (empty for folders). Read it before asking for the next member; what is
   * left unread is skipped then. Fails with CorruptRecord when the archive ends inside the member.
   */
  readonly content: AsyncIterable<Buffer>;
}

/** What the parser announced and `readTarMembers` has not handed on yet: a member, a part of its content, or the end of a file's content (null). */
type Announced = TarEntry | Buffer | null;

/**
 * Reads an uncompressed tar stream member by member, with the rules and limits of `TarParser`
 * (tar.ts): refused member types and names fail the read, with CorruptRecord or InvalidName
 * naming the member. Nothing is written anywhere: the caller decides where content goes.
 */
export async function* readTarMembers(source: AsyncIterable<Buffer>, options: ReadTarOptions): AsyncGenerator<TarMember> {
  const { signal } = options;
  const announced: Announced[] = [];
  const parser = new TarParser(options, { member: (entry) => announced.push(entry), content: (part) => announced.push(part), end: () => announced.push(null) });
  const input = source[Symbol.asyncIterator]();
  let feeding: Promise<boolean> | undefined;
  /** Parses one more chunk of the input; false when no more will come. why serialised: a consumer that gave up a member may still have a read under way. */
  const feed = (): Promise<boolean> => {
    feeding ??= (async () => {
      if (parser.finished) return false;
      const next = await input.next();
      if (next.done === true) {
        parser.end();
        return false;
      }
      parser.write(next.value);
      return true;
    })().finally(() => {
      feeding = undefined;
    });
    return feeding;
  };
  for (;;) {
    throwIfAborted(signal);
    if (announced.length === 0) {
      if (!(await feed())) return;
      continue;
    }
    const item = announced.shift();
    // why: content left unread by the consumer of the previous member is skipped.
    if (item === null || item === undefined || Buffer.isBuffer(item)) continue;
    if (item.kind === 'dir') {
      yield { ...item, content: emptyContent() };
      continue;
    }
    let current = true;
    const content = async function* (): AsyncGenerator<Buffer> {
      while (current) {
        throwIfAborted(signal);
        if (announced.length === 0) {
          // why: the parser throws "truncated" itself when the input ends inside the member.
          if (!(await feed())) return;
          continue;
        }
        const part = announced[0];
        if (!Buffer.isBuffer(part)) {
          if (part === null) announced.shift();
          return;
        }
        announced.shift();
        yield part;
      }
    };
    yield { ...item, content: content() };
    current = false;
  }
}

async function* emptyContent(): AsyncGenerator<Buffer> {
  // a folder member has no content.
}

/**
 * Extracts an update archive (bzip2 tar, already decrypted) into `targetDir`, a private folder the
 * caller owns (created if missing) and removes after use. The members are read and refused as
 * `TarParser` says (bad names, links, devices, limits); on top of that the decompressed stream is
 * bounded as a bzip2-bomb guard. Nothing is ever written outside `targetDir`, and no link is
 * created. A repeated member replaces the earlier one, as with Python. Returns the regular files
 * extracted. On failure, files already extracted stay in `targetDir`.
 */
export async function unpackUpdate(source: Readable, targetDir: string, options: UnpackOptions): Promise<UnpackedFile[]> {
  const { maxBytes, maxEntries, signal } = options;
  const maxTarBytes = maxBytes + (maxEntries + 1) * OVERHEAD_PER_ENTRY + 20 * BLOCK;
  try {
    mkdirSync(targetDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    source.destroy();
    throw fromSystemError(error, targetDir);
  }
  const decompressor = bzip2DecompressParallel({ ...options.bzip2, maxOutputBytes: maxTarBytes, signal });
  // why: pipeline destroys both ends on any error (no lingering bzip2 process).
  pipeline(source, decompressor, () => undefined);
  const tree = new ExtractedTree(targetDir, options.algorithm ?? null);
  const parser = new TarParser({ maxBytes, maxEntries, label: 'update archive', ...(options.onRefused === undefined ? {} : { onRefused: options.onRefused }) }, tree);
  try {
    // why: one synchronous pass per decompressed chunk (about 14 members of 4 KiB): each member is
    // written with synchronous calls, where three thread-pool hops per file cost more than the calls.
    for await (const chunk of decompressor) {
      throwIfAborted(signal);
      parser.write(chunk as Buffer);
      if (parser.finished) break;
    }
    throwIfAborted(signal);
    parser.end();
    return tree.files();
  } catch (error) {
    throw error instanceof EscaleError ? error : fromSystemError(error, targetDir);
  } finally {
    tree.close();
    decompressor.destroy();
  }
}

/** The file being extracted. */
interface OpenMember {
  readonly entry: TarEntry;
  readonly fd: number;
  readonly hash: Hash | undefined;
}

/** Writes the members `TarParser` announces below `root` with synchronous calls, hashing each file on the way. */
class ExtractedTree implements TarHandlers {
  private readonly extracted = new Map<RelPath, UnpackedFile>();
  private readonly folders = new Set<string>();
  private current: OpenMember | undefined;

  constructor(
    private readonly root: string,
    private readonly algorithm: string | null,
  ) {
    this.folders.add(root);
  }

  member(entry: TarEntry): void {
    const target = join(this.root, ...entry.path.split('/'));
    if (entry.kind === 'dir') {
      this.folder(target);
      return;
    }
    this.folder(dirname(target));
    const fd = openMember(target, entry.rawName);
    this.current = { entry, fd, hash: this.algorithm === null ? undefined : createChecksum(this.algorithm) };
  }

  content(part: Buffer): void {
    const member = this.current as OpenMember;
    member.hash?.update(part);
    let offset = 0;
    while (offset < part.length) offset += writeSync(member.fd, part, offset, part.length - offset);
  }

  end(): void {
    const member = this.current as OpenMember;
    this.current = undefined;
    closeSync(member.fd);
    const { path, size } = member.entry;
    // why: a repeated member replaces the earlier one, in the order of its last occurrence.
    this.extracted.delete(path);
    this.extracted.set(path, member.hash === undefined ? { path, size } : { path, size, checksum: member.hash.digest('hex') });
  }

  /** The regular files extracted, in archive order. */
  files(): UnpackedFile[] {
    return [...this.extracted.values()];
  }

  /** Closes the file left open by a failure. */
  close(): void {
    if (this.current !== undefined) closeSync(this.current.fd);
    this.current = undefined;
  }

  private folder(dir: string): void {
    if (this.folders.has(dir)) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.folders.add(dir);
  }
}

/** Opens a member's file for writing. why: O_NOFOLLOW so that even a planted link in the private folder is never written through. */
function openMember(target: string, name: string): number {
  try {
    return openSync(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw new EscaleError('CorruptRecord', `update archive: cannot extract member ${JSON.stringify(name)}: ${(error as Error).message}`, { path: name, cause: error });
  }
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new EscaleError('Aborted', 'unpacking aborted', { cause: signal.reason });
}
