import { pipeline, Readable } from 'node:stream';
import { EscaleError } from '../../core/errors.js';
import { relayPath, type RelayPath } from '../../core/relpath.js';
import { bzip2CompressParallel, type Bzip2ParallelOptions } from '../../system/bzip2.js';
import { TarParser, TarWriter, type ReadTarOptions, type TarEntry } from './tar.js';

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
    throwIfUnpackAborted(signal);
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
        throwIfUnpackAborted(signal);
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

/** Throws Aborted when `signal` has fired (the tar reader's and the extractor's check between chunks). */
export function throwIfUnpackAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new EscaleError('Aborted', 'unpacking aborted', { cause: signal.reason });
}
