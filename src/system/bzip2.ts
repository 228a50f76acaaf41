import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Duplex, Readable, type Writable } from 'node:stream';
import { EscaleError, type ErrorCode } from '../core/errors.js';

// why: bzip2 runs as Debian's `bzip2` executable (libbzip2 1.0.8), not in process. Measured on this
// machine kind (2 shared cores, 20 MiB of mixed random/text/sparse data): the executable compresses
// at 6.6 MiB/s and decompresses at 9.8-13 MiB/s; in-process libbzip2-wasm compresses at 5.6 MiB/s
// but only whole buffers (no streaming, and its decompressor fails on large outputs); seek-bzip
// decompresses whole buffers at 4.7-5.3 MiB/s, unbzip2-stream streams at 3.3-3.5 MiB/s, compressjs
// compresses at 0.2 MiB/s. The executable is the fastest, streams in both directions with bounded
// memory, runs on another core, and adds no dependency. Without it every call fails with
// Unsupported and a hint (`apt-get install bzip2`); there is no silent fallback.

/** Block size level of the compressor: Python writes level 9 (`BZh9`), so do we by default. */
export const DEFAULT_BZIP2_LEVEL = 9;

/** Options common to both directions. */
export interface Bzip2Options {
  /** Aborting destroys the stream with an Aborted error and kills the process. */
  readonly signal?: AbortSignal;
  /** The executable to run (default `bzip2`, looked up in PATH). */
  readonly executable?: string;
}

/** Options of the compressor. */
export interface Bzip2CompressOptions extends Bzip2Options {
  /** 1..9, default 9. */
  readonly level?: number;
}

/** Options of the decompressor. */
export interface Bzip2DecompressOptions extends Bzip2Options {
  /**
   * Bomb guard: once the decompressed output exceeds this many bytes the stream is destroyed with
   * CorruptRecord and the process killed.
   */
  readonly maxOutputBytes: number;
}

const STDERR_KEEP = 2048;

/** A Duplex whose writable side feeds a child process's stdin and readable side is its stdout. */
class ProcessFilter extends Duplex {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly what: string;
  private readonly failureCode: ErrorCode;
  private readonly maxOutput: number;
  private readonly emptyInputIsEmptyOutput: boolean;
  private inputBytes = 0;
  private outputBytes = 0;
  private stderr = '';
  private exited = false;
  private pendingWrite: ((error?: Error | null) => void) | undefined;
  private readonly onAbort: (() => void) | undefined;
  private readonly signal: AbortSignal | undefined;

  constructor(args: string[], what: string, failureCode: ErrorCode, maxOutput: number, emptyInputIsEmptyOutput: boolean, options: Bzip2Options) {
    super();
    this.what = what;
    this.failureCode = failureCode;
    this.maxOutput = maxOutput;
    this.emptyInputIsEmptyOutput = emptyInputIsEmptyOutput;
    const executable = options.executable ?? 'bzip2';
    this.child = spawn(executable, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.child.on('error', (error: NodeJS.ErrnoException) => {
      this.exited = true;
      const missing = error.code === 'ENOENT';
      this.destroy(
        new EscaleError(missing ? 'Unsupported' : 'Internal', missing ? `bzip2 executable '${executable}' not found` : `cannot run '${executable}': ${error.message}`, {
          cause: error,
          hint: missing ? 'install bzip2 (Debian: apt-get install bzip2)' : undefined,
        }),
      );
    });
    // why: a process that exits early makes stdin fail with EPIPE; its exit status tells the real story.
    this.child.stdin.on('error', () => undefined);
    // why: bzip2 may fail before the consumer attaches (it awaits something first); the error then
    // reaches it through the stream's errored state, never as an uncaught exception killing the daemon.
    this.on('error', () => undefined);
    this.child.stderr.on('data', (chunk: Buffer) => {
      if (this.stderr.length < STDERR_KEEP) this.stderr += chunk.toString('utf8').slice(0, STDERR_KEEP - this.stderr.length);
    });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.outputBytes += chunk.length;
      if (this.outputBytes > this.maxOutput) {
        this.destroy(new EscaleError('CorruptRecord', `${this.what} output exceeds the limit of ${this.maxOutput} bytes`));
        return;
      }
      if (!this.push(chunk)) this.child.stdout.pause();
    });
    this.child.on('close', (code, signal) => {
      this.exited = true;
      if (this.destroyed) return;
      const pending = this.pendingWrite;
      this.pendingWrite = undefined;
      if (code === 0 || (this.emptyInputIsEmptyOutput && this.inputBytes === 0 && this.outputBytes === 0)) {
        pending?.();
        this.push(null);
        return;
      }
      const why = signal !== null ? `was killed by ${signal}` : `exited with status ${code}`;
      const detail = this.stderr.trim().replace(/\s+/g, ' ');
      this.destroy(new EscaleError(this.failureCode, `${this.what} failed: bzip2 ${why}${detail === '' ? '' : ': ' + detail}`));
    });
    this.signal = options.signal;
    if (options.signal !== undefined) {
      const signal = options.signal;
      this.onAbort = () => this.destroy(new EscaleError('Aborted', `${this.what} aborted`, { cause: signal.reason }));
      if (signal.aborted) queueMicrotask(this.onAbort);
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** What the process wrote to stderr (its first 2 KiB). */
  get diagnostics(): string {
    return this.stderr;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.inputBytes += chunk.length;
    if (this.child.stdin.write(chunk)) {
      callback();
      return;
    }
    this.pendingWrite = callback;
    this.child.stdin.once('drain', () => {
      const pending = this.pendingWrite;
      this.pendingWrite = undefined;
      pending?.();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin.end();
    callback();
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    this.child.stdout.destroy();
    this.child.stdin.destroy();
    this.child.stderr.destroy();
    // why: the process must not outlive the stream; node reaps it once it has exited (no zombie).
    if (!this.exited) this.child.kill('SIGKILL');
    callback(error);
  }
}

function checkedLevel(options: Bzip2CompressOptions): number {
  const level = options.level ?? DEFAULT_BZIP2_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new EscaleError('Internal', `bzip2 level must be 1..9, got ${level}`);
  return level;
}

/** A Duplex that bzip2-compresses what is written to it (one stream, `BZh<level>`). */
export function bzip2Compress(options: Bzip2CompressOptions = {}): ProcessFilter {
  const level = checkedLevel(options);
  return new ProcessFilter(['-c', '-z', `-${level}`], 'bzip2 compression', 'Internal', Number.POSITIVE_INFINITY, false, options);
}

/** Options of the segmented (parallel) compressor. */
export interface Bzip2ParallelOptions extends Bzip2CompressOptions {
  /** Input bytes per bzip2 stream (default `BZIP2_SEGMENT_BYTES`); infinite: one stream, at `level`. */
  readonly segmentBytes?: number;
  /** Streams compressed at once (default: the cores, 2 to 4). */
  readonly workers?: number;
  /**
   * Level of a segment whose bytes look incompressible (see `segmentLevel`); default 1. Equal to
   * `level`: every segment at `level`.
   */
  readonly incompressibleLevel?: number;
}

/** Order-0 entropy of the non-zero bytes, in bits per byte, from which a segment counts as incompressible. */
export const INCOMPRESSIBLE_BITS_PER_BYTE = 7.9;

/**
 * The level to compress one segment with: `incompressibleLevel` when the order-0 entropy of its
 * non-zero bytes is at least `INCOMPRESSIBLE_BITS_PER_BYTE` (photos, video, archives, encrypted or
 * random data), else `level`. why: the level is bzip2's block size, which only helps data whose
 * statistics take more than 100 kB to learn (text, code, binaries). Zero bytes are left out because
 * what they make up (tar headers and padding, sparse regions) compresses at any block size.
 * Measured on 2 MiB segments of this machine's files (photos, fonts, archives, documentation,
 * executables, a database, JavaScript, a tar of random 4 KiB files): every segment over the
 * threshold was 0.3-1.7 % larger at level 1 than at 9, every one under it stayed at 9 (at level 1:
 * code and text 19-56 % larger, executables up to 11 %, compressed documentation 1.4-5.8 %);
 * and level 1 decompresses random data in under half the time of level 9 (1.7 s instead of 3.1-4 s
 * for 45 MB: the inverse transform of a 100 kB block stays in the processor's cache).
 */
export function segmentLevel(parts: readonly Uint8Array[], level: number, incompressibleLevel: number): number {
  if (level === incompressibleLevel) return level;
  const counts = new Uint32Array(256);
  for (const part of parts) for (let i = 0; i < part.length; i++) (counts[part[i] as number] as number)++;
  counts[0] = 0;
  let total = 0;
  for (const count of counts) total += count;
  if (total === 0) return level;
  let bits = 0;
  for (const count of counts) if (count > 0) bits -= count * Math.log2(count / total);
  return bits / total >= INCOMPRESSIBLE_BITS_PER_BYTE ? incompressibleLevel : level;
}

/**
 * Input bytes per stream of `bzip2CompressParallel`: two level-9 blocks. why: long enough that the
 * per-stream cost (a process, a partial last block, ~50 header bytes) is negligible, short enough
 * that an 8 MiB update keeps two cores busy to the end.
 */
export const BZIP2_SEGMENT_BYTES = 2 * 1024 * 1024;

interface Segment {
  readonly filter: ProcessFilter;
  /** Output received while an earlier segment is still being written out. */
  readonly held: Buffer[];
  heldBytes: number;
  ended: boolean;
  /** Whether the segment took the end of the input. */
  last: boolean;
}

/**
 * A chain of bzip2 processes, each taking one segment of the input, at most `workers` at once,
 * whose outputs are written out in input order. A segment's output that arrives before its turn is
 * held (its process is paused past `holdBytes`), so memory stays bounded.
 */
abstract class OrderedSegments extends Duplex {
  /** Segments whose output is not fully pushed yet, oldest (the one being written out) first. */
  private readonly queue: Segment[] = [];
  /** The segment taking input. */
  private current: Segment | undefined;
  private started = false;
  private finalCalled = false;
  private wake: (() => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly workers: number,
    private readonly holdBytes: number,
    what: string,
    signal: AbortSignal | undefined,
  ) {
    super();
    if (!Number.isInteger(workers) || workers < 1) throw new EscaleError('Internal', 'parallel bzip2 needs workers >= 1');
    // why: the processes start with the input; an abort before that must fail this stream at once.
    this.signal = signal;
    if (signal !== undefined) {
      this.onAbort = () => this.destroy(new EscaleError('Aborted', `${what} aborted`, { cause: signal.reason }));
      if (signal.aborted) queueMicrotask(this.onAbort);
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** A new process for one segment. */
  protected abstract newFilter(): ProcessFilter;
  /** Cuts a written chunk into segments with `send`. */
  protected abstract feed(chunk: Buffer): Promise<void>;
  /** Sends the input kept back by `feed` (to the last segment, at the end). */
  protected abstract flushRest(): Promise<void>;
  /** Called with each output chunk before it is held or pushed; may destroy the stream. */
  protected abstract counted(bytes: number): void;
  /** Why a finished segment's output must not be used, or undefined. */
  protected abstract refusal(segment: Segment): Error | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.feed(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finish().then(() => callback(), callback);
  }

  override _read(): void {
    this.queue[0]?.filter.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    for (const segment of this.queue) segment.filter.destroy();
    this.queue.length = 0;
    this.notify();
    callback(error);
  }

  /** Writes `part` to the current segment (starting one when there is none), then ends the segment when asked. */
  protected async send(part: Buffer, endSegment: boolean): Promise<void> {
    if (part.length > 0 && this.current === undefined) {
      // why: at most `workers` processes (and their held output) at once.
      await this.until(() => this.queue.length < this.workers);
      this.current = this.startSegment();
    }
    const segment = this.current;
    if (segment === undefined) return;
    if (part.length > 0) segment.filter.write(part);
    if (endSegment) {
      segment.filter.end();
      this.current = undefined;
    } else {
      await this.until(() => !segment.filter.writableNeedDrain);
    }
  }

  private async finish(): Promise<void> {
    await this.flushRest();
    // why: an empty input still goes through one process (an empty stream, or an empty output).
    if (!this.started) this.current = this.startSegment();
    if (this.current !== undefined) {
      this.current.last = true;
      this.current.filter.end();
      this.current = undefined;
    }
    this.finalCalled = true;
    this.advance();
  }

  private startSegment(): Segment {
    if (this.destroyed) throw new EscaleError('Aborted', 'bzip2 stopped');
    this.started = true;
    const segment: Segment = { filter: this.newFilter(), held: [], heldBytes: 0, ended: false, last: false };
    segment.filter.on('data', (data: Buffer) => {
      this.counted(data.length);
      if (this.destroyed) return;
      if (this.queue[0] === segment) {
        if (!this.push(data)) segment.filter.pause();
        return;
      }
      segment.held.push(data);
      segment.heldBytes += data.length;
      if (segment.heldBytes > this.holdBytes) segment.filter.pause();
    });
    segment.filter.on('drain', () => this.notify());
    segment.filter.on('end', () => {
      const refused = this.refusal(segment);
      if (refused !== undefined) {
        this.destroy(refused);
        return;
      }
      segment.ended = true;
      this.advance();
    });
    segment.filter.on('error', (error: Error) => this.destroy(error));
    this.queue.push(segment);
    return segment;
  }

  /** Drops finished segments from the head, writes out the next one's held output, ends after the last. */
  private advance(): void {
    while (this.queue[0]?.ended === true) {
      this.queue.shift();
      const next = this.queue[0];
      if (next === undefined) break;
      for (const data of next.held.splice(0)) this.push(data);
      next.heldBytes = 0;
      next.filter.resume();
    }
    if (this.finalCalled && this.queue.length === 0 && !this.destroyed) this.push(null);
    this.notify();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.destroyed) throw new EscaleError('Aborted', 'bzip2 stopped');
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

function defaultWorkers(): number {
  return Math.min(4, Math.max(2, availableParallelism()));
}

/** See `bzip2CompressParallel`: segments of `segmentBytes` input each. */
class SegmentedCompressor extends OrderedSegments {
  private readonly options: Bzip2CompressOptions;
  private readonly segmentBytes: number;
  private readonly baseLevel: number;
  private readonly incompressibleLevel: number;
  /** Level of the segment about to start. */
  private level: number;
  /** Input of the segment being gathered: a segment is compressed once whole, at the level its bytes call for. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;

  constructor(options: Bzip2ParallelOptions) {
    const segmentBytes = options.segmentBytes ?? BZIP2_SEGMENT_BYTES;
    super(options.workers ?? defaultWorkers(), segmentBytes + 64 * 1024, 'bzip2 compression', options.signal);
    if (!(segmentBytes > 0)) throw new EscaleError('Internal', 'bzip2CompressParallel needs segmentBytes > 0');
    this.baseLevel = checkedLevel(options);
    // why: one unbounded stream cannot be gathered before it starts; it keeps `level` (0.7's single stream).
    this.incompressibleLevel = Number.isFinite(segmentBytes) ? checkedLevel({ level: options.incompressibleLevel ?? 1 }) : this.baseLevel;
    this.level = this.baseLevel;
    this.options = options;
    this.segmentBytes = segmentBytes;
  }

  protected newFilter(): ProcessFilter {
    return bzip2Compress({ ...this.options, level: this.level });
  }

  protected async feed(chunk: Buffer): Promise<void> {
    if (!Number.isFinite(this.segmentBytes)) {
      await this.send(chunk, false);
      return;
    }
    let rest = chunk;
    while (rest.length > 0) {
      const part = rest.subarray(0, this.segmentBytes - this.gatheredBytes);
      rest = rest.subarray(part.length);
      this.gathered.push(part);
      this.gatheredBytes += part.length;
      if (this.gatheredBytes === this.segmentBytes) await this.sendGathered(true);
    }
  }

  protected async flushRest(): Promise<void> {
    await this.sendGathered(false);
  }

  /** Starts the gathered segment's process at the level its bytes call for and writes them; ends the segment when asked. */
  private async sendGathered(endSegment: boolean): Promise<void> {
    const parts = this.gathered;
    this.gathered = [];
    this.gatheredBytes = 0;
    if (parts.length === 0) return;
    this.level = segmentLevel(parts, this.baseLevel, this.incompressibleLevel);
    for (let i = 0; i < parts.length; i++) await this.send(parts[i] as Buffer, endSegment && i === parts.length - 1);
  }

  protected counted(): void {}

  protected refusal(): Error | undefined {
    return undefined;
  }
}

/**
 * A Duplex that bzip2-compresses what is written to it as consecutive streams of `segmentBytes`
 * input each, compressed by up to `workers` processes at once and written out in order, each at the
 * level its bytes call for (`segmentLevel`: `level`, or `incompressibleLevel` for bytes that do not
 * compress). The result is a multi-stream bzip2 file, which every reader we write for reads as one
 * (Python >= 3.3's `bz2` and `tarfile` `r:bz2`, the `bzip2` executable, our own `bzip2Decompress`);
 * an input of at most `segmentBytes` that compresses gives exactly the single stream
 * `bzip2Compress` gives. Infinite `segmentBytes`: one stream at `level`, streamed as it comes.
 */
export function bzip2CompressParallel(options: Bzip2ParallelOptions = {}): Duplex {
  return new SegmentedCompressor(options);
}

/**
 * A Duplex that decompresses bzip2 (concatenated streams too; trailing garbage is ignored, as
 * Python's BZ2File does). An empty input gives an empty output (Python reads a 0-byte file as
 * empty). Fails with CorruptRecord on damaged input or when the output exceeds `maxOutputBytes`.
 */
export function bzip2Decompress(options: Bzip2DecompressOptions): Duplex {
  if (!(options.maxOutputBytes >= 0)) throw new EscaleError('Internal', 'bzip2Decompress needs maxOutputBytes');
  return new ProcessFilter(['-d', '-c', '-q'], 'bzip2 decompression', 'CorruptRecord', options.maxOutputBytes, true, options);
}

/** Options of the parallel decompressor. */
export interface Bzip2ParallelDecompressOptions extends Bzip2DecompressOptions {
  /** Streams decompressed at once (default: the cores, 2 to 4). */
  readonly workers?: number;
}

/** `BZh`, a level digit, then the first block's magic: the start of a stream that holds data. */
const STREAM_START_LENGTH = 10;
/** Compressed bytes a segment takes at least before a stream start ends it (fewer, larger processes). */
const MIN_DECOMPRESS_SEGMENT = 512 * 1024;
/** Output of a later segment held in memory before its process is paused. */
const HOLD_DECOMPRESSED = 4 * 1024 * 1024;

function isStreamStart(data: Buffer, at: number): boolean {
  const level = data[at + 3] ?? 0;
  return level >= 0x31 && level <= 0x39 && data.toString('latin1', at + 4, at + STREAM_START_LENGTH) === '1AY&SY' && data.toString('latin1', at, at + 3) === 'BZh';
}

/** See `bzip2DecompressParallel`: a new segment starts at a stream start once the current one has `MIN_DECOMPRESS_SEGMENT` bytes. */
class SegmentedDecompressor extends OrderedSegments {
  private readonly options: Bzip2DecompressOptions;
  /** The last bytes of the input, kept back: a stream start may straddle two chunks. */
  private tail: Buffer = Buffer.alloc(0);
  private segmentBytes = 0;
  private outputBytes = 0;

  constructor(options: Bzip2ParallelDecompressOptions) {
    super(options.workers ?? defaultWorkers(), HOLD_DECOMPRESSED, 'bzip2 decompression', options.signal);
    if (!(options.maxOutputBytes >= 0)) throw new EscaleError('Internal', 'bzip2DecompressParallel needs maxOutputBytes');
    this.options = options;
  }

  protected newFilter(): ProcessFilter {
    // why: not quiet, so that bzip2 reports data after a stream's end (see `refusal`).
    return new ProcessFilter(['-d', '-c'], 'bzip2 decompression', 'CorruptRecord', this.options.maxOutputBytes, true, this.options);
  }

  protected async feed(chunk: Buffer): Promise<void> {
    const data = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    let from = 0;
    for (let at = data.indexOf('BZh', 0, 'latin1'); at >= 0 && at + STREAM_START_LENGTH <= data.length; at = data.indexOf('BZh', at + 1, 'latin1')) {
      if (!isStreamStart(data, at) || this.segmentBytes + (at - from) < MIN_DECOMPRESS_SEGMENT) continue;
      await this.send(data.subarray(from, at), true);
      this.segmentBytes = 0;
      from = at;
    }
    const keep = Math.max(from, data.length - (STREAM_START_LENGTH - 1));
    await this.send(data.subarray(from, keep), false);
    this.segmentBytes += keep - from;
    this.tail = Buffer.from(data.subarray(keep));
  }

  protected async flushRest(): Promise<void> {
    await this.send(this.tail, false);
  }

  protected counted(bytes: number): void {
    this.outputBytes += bytes;
    if (this.outputBytes > this.options.maxOutputBytes) this.destroy(new EscaleError('CorruptRecord', `bzip2 decompression output exceeds the limit of ${this.options.maxOutputBytes} bytes`));
  }

  protected refusal(segment: Segment): Error | undefined {
    // why: a sequential reader (Python, bzip2) stops at data that follows a stream and is not one;
    // a segment cut there must not let the segments after it be read.
    if (segment.last || !/trailing garbage/.test(segment.filter.diagnostics)) return undefined;
    return new EscaleError('CorruptRecord', 'bzip2 decompression failed: data that is not bzip2 follows a stream');
  }
}

/**
 * Like `bzip2Decompress`, but a multi-stream input (what `bzip2CompressParallel` writes) is cut at
 * stream starts into segments of at least 512 KiB, decompressed by up to `workers` processes at
 * once and written out in order; a single-stream input (what Python writes) goes through one
 * process. A cut where a sequential reader would not cut (a stream start inside a stream, data
 * after a stream that is not one) makes it fail with CorruptRecord instead of reading differently.
 * `maxOutputBytes` bounds the whole output.
 */
export function bzip2DecompressParallel(options: Bzip2ParallelDecompressOptions): Duplex {
  return new SegmentedDecompressor(options);
}

/** Compresses a small in-memory buffer (e.g. a persistent index) into one bzip2 stream. */
export async function bzip2CompressBytes(data: Uint8Array, options: Bzip2CompressOptions = {}): Promise<Buffer> {
  return collect(Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]).pipe(bzip2Compress(options)));
}

/** Decompresses a small in-memory bzip2 buffer; CorruptRecord past `maxOutputBytes` or on damage. */
export async function bzip2DecompressBytes(data: Uint8Array, options: Bzip2DecompressOptions): Promise<Buffer> {
  return collect(Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]).pipe(bzip2Decompress(options)));
}

/** Whether the bzip2 executable can be run (for diagnostics and test skips). */
export async function bzip2Available(executable = 'bzip2'): Promise<boolean> {
  try {
    const out = await bzip2CompressBytes(new Uint8Array(0), { executable });
    return out.subarray(0, 3).toString('latin1') === 'BZh';
  } catch {
    return false;
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
