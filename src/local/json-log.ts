import { closeSync, createReadStream, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { EscaleError, fromSystemError } from '../core/errors.js';

/** How many bytes of appended records may wait in memory before they are written. */
const WRITE_BUFFER_BYTES = 64 * 1024;
/** Size of the pieces a rewrite is written in. */
const REWRITE_CHUNK_BYTES = 1024 * 1024;

/** What to do when the file exists but is not a log of the expected kind. */
export type ForeignFilePolicy = 'throw' | 'move-aside';

/** Options of `JsonLog.open`. */
export interface JsonLogOptions {
  /** Name written in the header line; a file with another header is foreign. */
  readonly kind: string;
  /** Receives every intact record, oldest first, while the file loads. */
  readonly onRecord: (record: Record<string, unknown>) => void;
  /** `throw` (CorruptRecord) or `move-aside` (rename to `<file>.foreign` and start empty). */
  readonly onForeign: ForeignFilePolicy;
  /** Format version written in the header (default 1); a file with another version is foreign. */
  readonly version?: number;
  /**
   * Receives each line that could not be used (torn by a crash, or malformed), in file order among
   * the records, so that an owner that must not trust older state for it can drop that state.
   */
  readonly onDamaged?: (line: string) => void;
}

function headerLine(kind: string, version = 1): string {
  return `${JSON.stringify({ format: kind, version })}\n`;
}

/**
 * A crash-safe key-value persistence file: a header line, then one JSON object per line, appended
 * as changes happen. A torn or malformed line (a crash during an append) is ignored on load, and
 * the owner rewrites the file with its current state (`rewrite`: a temporary file, fsync, then an
 * atomic rename) when it is torn or has grown much larger than the state it describes.
 *
 * The file and its folder are created on the first write, with modes 0600 and 0700. One process
 * at a time may use a file (the daemon's PID file ensures it). Methods other than `open` are
 * synchronous: appends are small and buffered, and a rewrite of 100,000 records takes
 * milliseconds.
 */
export class JsonLog {
  readonly file: string;
  readonly #header: string;
  #fd: number | undefined;
  #pending: string[] = [];
  #pendingBytes = 0;
  #lines = 0;
  #needsRewrite = false;
  /** Whether the file on disk starts with its header (false while it is missing or empty). */
  #hasHeader = false;

  private constructor(file: string, kind: string, version: number | undefined) {
    this.file = file;
    this.#header = headerLine(kind, version);
  }

  /** Loads `file` (missing = empty), giving every intact record to `onRecord`. */
  static async open(file: string, options: JsonLogOptions): Promise<JsonLog> {
    const log = new JsonLog(file, options.kind, options.version);
    await log.#load(options);
    return log;
  }

  /** Records in the file (after the header), counting those appended since; the owner compares it with its state size. */
  get lines(): number {
    return this.#lines;
  }

  /** Whether the file held a torn or malformed line, or a torn header, and should be rewritten. */
  get needsRewrite(): boolean {
    return this.#needsRewrite;
  }

  async #load(options: JsonLogOptions): Promise<void> {
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fromSystemError(error, this.file);
    }
    let size: number;
    let lastByte = 0;
    let start: Buffer;
    try {
      size = (await handle.stat()).size;
      start = Buffer.alloc(Math.min(size, this.#header.length));
      await handle.read(start, 0, start.length, 0);
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        lastByte = last[0] ?? 0;
      }
    } catch (error) {
      throw fromSystemError(error, this.file);
    } finally {
      await handle.close();
    }
    const header = Buffer.from(this.#header);
    if (size < header.length && header.subarray(0, size).equals(start)) {
      // why: a crash while the file was being created leaves an empty or partial header.
      this.#needsRewrite = size > 0;
      return;
    }
    if (!start.equals(header)) {
      this.#foreign(options.onForeign);
      return;
    }
    this.#hasHeader = true;
    const torn = lastByte !== 0x0a;
    const lines = createInterface({ input: createReadStream(this.file, { start: header.length }), crlfDelay: Infinity });
    let previous: string | undefined;
    const take = (line: string): void => {
      this.#lines++;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        this.#needsRewrite = true;
        options.onDamaged?.(line);
        return;
      }
      if (record === null || typeof record !== 'object' || Array.isArray(record)) {
        this.#needsRewrite = true;
        options.onDamaged?.(line);
        return;
      }
      options.onRecord(record as Record<string, unknown>);
    };
    try {
      for await (const line of lines) {
        if (previous !== undefined) take(previous);
        previous = line;
      }
    } catch (error) {
      throw fromSystemError(error, this.file);
    }
    if (previous !== undefined) {
      // why: an unterminated last line is the trace of an append cut short by a crash.
      if (torn) {
        this.#needsRewrite = true;
        options.onDamaged?.(previous);
      } else take(previous);
    }
  }

  #foreign(policy: ForeignFilePolicy): void {
    if (policy === 'throw') {
      throw new EscaleError('CorruptRecord', `${this.file} is not an escale data file of this kind`, {
        path: this.file,
        hint: 'move the file away (it may come from another version of escale) and start again',
      });
    }
    try {
      renameSync(this.file, `${this.file}.foreign`);
    } catch (error) {
      throw fromSystemError(error, this.file);
    }
  }

  /** Queues one record for appending; it reaches the file when the buffer fills, or on `flush`. */
  append(record: Record<string, unknown>): void {
    const line = `${JSON.stringify(record)}\n`;
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    this.#lines++;
    if (this.#pendingBytes >= WRITE_BUFFER_BYTES) this.#writePending();
  }

  #openForAppend(): number {
    if (this.#fd !== undefined) return this.#fd;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      const fd = openSync(this.file, 'a', 0o600);
      this.#fd = fd;
      return fd;
    } catch (error) {
      throw fromSystemError(error, this.file);
    }
  }

  #writePending(): void {
    if (this.#pending.length === 0) return;
    if (this.#needsRewrite) {
      // why: appending after a torn line would glue the new record onto the fragment.
      throw new EscaleError('Internal', `${this.file} must be rewritten before appending`, { path: this.file });
    }
    const data = this.#pending.join('');
    const fd = this.#openForAppend();
    try {
      writeAll(fd, this.#hasHeader ? data : this.#header + data);
      this.#hasHeader = true;
    } catch (error) {
      throw fromSystemError(error, this.file);
    }
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** Writes queued records and forces them to disk. */
  flush(): void {
    this.#writePending();
    if (this.#fd !== undefined) {
      try {
        fsyncSync(this.#fd);
      } catch (error) {
        throw fromSystemError(error, this.file);
      }
    }
  }

  /**
   * Replaces the file with exactly `records` (the owner's current state): written to a temporary
   * file beside it, synced, then renamed over it, so a crash leaves either the old or the new file.
   */
  rewrite(records: Iterable<Record<string, unknown>>): void {
    this.#closeFd();
    const temp = `${dirname(this.file)}/.${basename(this.file)}.${process.pid}.tmp`;
    let count = 0;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      const fd = openSync(temp, 'w', 0o600);
      try {
        let chunk = this.#header;
        for (const record of records) {
          chunk += `${JSON.stringify(record)}\n`;
          count++;
          if (chunk.length >= REWRITE_CHUNK_BYTES) {
            writeAll(fd, chunk);
            chunk = '';
          }
        }
        writeAll(fd, chunk);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, this.file);
      syncDirectory(dirname(this.file));
    } catch (error) {
      throw fromSystemError(error, this.file);
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lines = count;
    this.#needsRewrite = false;
    this.#hasHeader = true;
  }

  #closeFd(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // why: nothing is lost: every byte was written before; the descriptor is gone either way.
    }
  }

  /** Flushes and closes the file. */
  close(): void {
    this.flush();
    this.#closeFd();
  }
}

/** Writes every byte of `text` (write(2) may write less than asked). */
function writeAll(fd: number, text: string): void {
  const buffer = Buffer.from(text);
  let offset = 0;
  while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
}

/** Makes a rename durable by syncing its folder (best effort: not every platform allows it). */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // why: some platforms and file systems refuse fsync on folders; the rename itself stands.
  }
}
