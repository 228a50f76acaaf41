// A worker thread that runs one cipher task over a stream of chunks, and the Transform base that
// feeds it: big files are encrypted and signed on a second core while the main thread reads,
// hashes, encodes and writes (issue 13, W2). Memory moves between the threads (transferred, not copied) whenever
// the sending side owns it.
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { EscaleError, type ErrorCode, ERROR_CODES } from '../core/errors.js';

/** The work a cipher thread does on its chunks (its code is in cipher-thread-worker.ts). */
export type CipherThreadTask =
  /** Fernet's AES-128-CBC and HMAC of a plaintext, after the header `head`; the end gives the last block and the HMAC. */
  | { readonly kind: 'fernet-seal'; readonly signingKey: Uint8Array; readonly encryptionKey: Uint8Array; readonly head: Uint8Array }
  /** Fernet's binary token body (version, time, IV, ciphertext) to plaintext; the HMAC comes with the end. */
  | { readonly kind: 'fernet-open'; readonly signingKey: Uint8Array; readonly encryptionKey: Uint8Array };

/** A task's work, on the main thread or in the cipher thread: units in order, then the end. */
export interface CipherStage {
  /** Processes the next unit of input; returns the output it completes. */
  update(unit: Buffer): Buffer[];
  /** Ends the input (with the trailer the task expects, if any); returns the last output. */
  final(trailer?: Buffer): Buffer[];
}

/** A message to the thread: chunks to process in order, or the end (with its trailer, if any). */
export type ToCipherThread = { readonly kind: 'data'; readonly parts: ArrayBuffer[]; readonly lengths: number[] } | { readonly kind: 'end'; readonly trailer?: Uint8Array };

/** A message from the thread: output of one 'data' message, the last output, or the failure. */
export type FromCipherThread =
  /** `spent`: the memory of the input, moved back to be freed by the main thread (see the worker). */
  | { readonly kind: 'data' | 'end'; readonly parts: ArrayBuffer[]; readonly lengths: number[]; readonly spent?: ArrayBuffer[] }
  | { readonly kind: 'error'; readonly code: string; readonly message: string; readonly cause?: unknown };

/** Bytes per message to the thread: smaller chunks are batched up to this size (one round trip each). */
export const THREAD_BATCH_BYTES = 256 * 1024;
/** Messages sent and not yet answered (or answers not yet read), at most. */
// why: the thread must always find work queued while this thread hashes, encodes and waits for
// reads: several small messages kept both busier than 2 of 1 MiB (push pass 2: 3.2 -> 2.1-2.5 s
// for 1 GiB, measured on the loaded machine). Not more: every buffer alive at a garbage
// collection is promoted and stays until a full one, and the push of 1 GiB reached 150-158 MiB
// peak with 8 outstanding and 2 MiB read ahead (110-118 with 4 and 1 MiB).
const MAX_IN_FLIGHT = 4;
/** Input a threaded stream accepts ahead of the thread (its writable buffer): the reads stay ahead. */
const READ_AHEAD_BYTES = 1024 * 1024;

const WORKER_URL = new URL('./cipher-thread-worker.js', import.meta.url);

const running = new Set<Worker>();
let started = 0;
/** Set after a thread could not run at all: later streams stay on the main thread. */
let threadsBroken = false;

/** Whether a stream with this threshold may ever use a thread in this process. */
function threadsAvailable(threadFrom: number): boolean {
  return !threadsBroken && Number.isFinite(threadFrom);
}

/** How many cipher threads this process has started (tests check which transfers used one). */
export function cipherThreadsStarted(): number {
  return started;
}

/** How many cipher threads are alive (tests check that none outlives its stream). */
export function runningCipherThreads(): number {
  return running.size;
}

/** Whether `chunk` is the only view of its whole memory (then it can be moved, not copied). */
export function ownsWholeMemory(chunk: Uint8Array): boolean {
  // why: a chunk smaller than its ArrayBuffer may share it (Buffer's 8 KiB pool, a socket's read
  // buffer cut into several chunks); moving that memory would empty the other views.
  return chunk.buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
}

/** Parts of a message as buffers (views of memory received from the other thread). */
export function partsOf(message: { parts: ArrayBuffer[]; lengths: number[] }): Buffer[] {
  return message.parts.map((part, i) => Buffer.from(part, 0, message.lengths[i]));
}

/**
 * Packs buffers into a message body. A buffer marked as owned (the caller holds no other view of
 * its memory) at offset 0 is moved with its whole memory; any other is copied into fresh memory.
 */
export function packParts(buffers: readonly Buffer[], owned: readonly boolean[]): { parts: ArrayBuffer[]; lengths: number[] } {
  const parts: ArrayBuffer[] = [];
  const lengths: number[] = [];
  const moved = new Set<ArrayBufferLike>();
  buffers.forEach((buffer, i) => {
    if (owned[i] === true && buffer.byteOffset === 0 && buffer.buffer instanceof ArrayBuffer && !moved.has(buffer.buffer)) {
      moved.add(buffer.buffer);
      parts.push(buffer.buffer);
    } else {
      const copy = Buffer.allocUnsafeSlow(buffer.length);
      buffer.copy(copy);
      parts.push(copy.buffer as ArrayBuffer);
    }
    lengths.push(buffer.length);
  });
  return { parts, lengths };
}

/** Rebuilds an error reported by the thread (its code when it is one of ours, Internal otherwise). */
function threadError(message: Extract<FromCipherThread, { kind: 'error' }>): EscaleError {
  const code: ErrorCode = message.code in ERROR_CODES ? (message.code as ErrorCode) : 'Internal';
  return new EscaleError(code, message.message, message.cause === undefined ? {} : { cause: message.cause });
}

/** What a stream does with the thread's answers. */
interface ThreadClient {
  output(parts: Buffer[]): void;
  last(parts: Buffer[]): void;
  fail(error: EscaleError): void;
}

/** One worker thread running one task; answers arrive in the order of the messages. */
class CipherThread {
  private readonly worker: Worker;
  private pending = 0;
  private state: 'running' | 'ending' | 'done' = 'running';

  /** Starts the thread; throws when the platform cannot start one (the caller stays on the main thread). */
  constructor(task: CipherThreadTask, private readonly client: ThreadClient) {
    const worker = new Worker(WORKER_URL, { workerData: task, stdout: false, stderr: false });
    this.worker = worker;
    running.add(worker);
    started += 1;
    worker.on('exit', (code) => {
      running.delete(worker);
      if (this.state !== 'done') this.failed(new EscaleError('Internal', `the cipher thread stopped unexpectedly (exit code ${code})`));
    });
    worker.on('error', (error) => {
      // why: a thread that cannot load its code will never work; later streams stay inline.
      if (isStartFailure(error)) threadsBroken = true;
      this.failed(new EscaleError('Internal', `the cipher thread failed: ${error.message}`, { cause: error }));
    });
    worker.on('messageerror', (error) => this.failed(new EscaleError('Internal', 'a message from the cipher thread could not be read', { cause: error })));
    worker.on('message', (message: FromCipherThread) => this.received(message));
  }

  /** Messages sent and not answered yet. */
  get inFlight(): number {
    return this.pending;
  }

  /** Sends chunks to process (see `packParts` for `owned`). */
  send(buffers: readonly Buffer[], owned: readonly boolean[]): void {
    if (this.state !== 'running' || buffers.length === 0) return;
    const body = packParts(buffers, owned);
    this.pending += 1;
    this.worker.ref();
    this.worker.postMessage({ kind: 'data', ...body } satisfies ToCipherThread, body.parts);
  }

  /** Ends the input; `last` receives the final output. */
  end(trailer?: Buffer): void {
    if (this.state !== 'running') return;
    this.state = 'ending';
    this.pending += 1;
    this.worker.ref();
    this.worker.postMessage({ kind: 'end', ...(trailer === undefined ? {} : { trailer: Uint8Array.from(trailer) }) } satisfies ToCipherThread);
  }

  /** Stops the thread now (idempotent); no answer is delivered afterwards. */
  stop(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    void this.worker.terminate().catch(() => undefined);
  }

  private received(message: FromCipherThread): void {
    if (this.state === 'done') return;
    this.pending -= 1;
    // why: while nothing is asked of it, the thread must not keep the process alive.
    if (this.pending === 0) this.worker.unref();
    switch (message.kind) {
      case 'data':
        this.client.output(partsOf(message));
        return;
      case 'end':
        this.stop();
        this.client.last(partsOf(message));
        return;
      case 'error':
        this.failed(threadError(message));
        return;
    }
  }

  private failed(error: EscaleError): void {
    if (this.state === 'done') return;
    this.stop();
    this.client.fail(error);
  }
}

function isStartFailure(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ERR_WORKER_INIT_FAILED' || code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_WORKER_PATH';
}

/**
 * A Transform whose heavy work (a CipherStage) runs on a cipher thread when the stream is big:
 * the first `threadFrom` bytes of units are held; a stream that ends before is processed here at
 * its end, a longer one starts a thread that gets everything from then on (or stays here when no
 * thread can start). Subclasses `feed` units and `finish`; every result of the stage, here or on
 * the thread, comes back through `fromStage`/`lastFromStage` in order, and goes out through
 * `output`. Backpressure: answers are pushed one at a time as the reader asks (so that a reader
 * taking all that is buffered never gets chunks concatenated), and input waits while
 * MAX_IN_FLIGHT messages or answers are outstanding. An error of the thread fails the stream with
 * it (an EscaleError); destroying the stream stops the thread.
 */
export abstract class ThreadedTransform extends Transform {
  private thread: CipherThread | undefined;
  private stage: CipherStage | undefined;
  /** Units held until the stream is known to be small (here) or big (thread), and whether each may be moved. */
  private held: Buffer[] = [];
  private heldOwned: boolean[] = [];
  private heldBytes = 0;
  private batch: Buffer[] = [];
  private batchOwned: boolean[] = [];
  private batchBytes = 0;
  /** Answers of the thread not pushed yet. */
  private ready: Buffer[] = [];
  /** Whether the reader asked for more since the last push that it refused. */
  private wanted = false;
  private draining = false;
  /** The write callback waiting for room. */
  private waiting: TransformCallback | undefined;
  /** The flush callback, waiting for the thread's last answer to be pushed. */
  private flushing: TransformCallback | undefined;
  private ended = false;

  constructor(private readonly threadFrom: number) {
    super({ writableHighWaterMark: READ_AHEAD_BYTES });
  }

  /** The task of the thread, for a big stream. */
  protected abstract task(): CipherThreadTask;

  /** The same work on the main thread, for a small stream (or where no thread can start). */
  protected abstract inlineStage(): CipherStage;

  /** Called once, when the stream has decided where its work runs, before any result. */
  protected abstract decided(): void;

  /** Receives results of the stage, in order. */
  protected abstract fromStage(parts: Buffer[]): void;

  /** Receives the stage's last results, before the stream ends. */
  protected abstract lastFromStage(parts: Buffer[]): void;

  /** Takes the next unit of input; `owned`: the caller holds no other view of its memory (see `packParts`). */
  protected feed(unit: Buffer, owned: boolean): void {
    if (this.thread === undefined && this.stage === undefined && !threadsAvailable(this.threadFrom)) this.decide(false);
    if (unit.length === 0) return;
    if (this.thread !== undefined) return this.toThread(unit, owned);
    if (this.stage !== undefined) return this.fromStage(this.stage.update(unit));
    this.held.push(unit);
    this.heldOwned.push(owned);
    this.heldBytes += unit.length;
    if (this.heldBytes >= this.threadFrom) this.decide(true);
  }

  /** Ends the input (with the stage's trailer); `done` is called once the last result is out. */
  protected finish(done: TransformCallback, trailer?: Buffer): void {
    if (this.thread === undefined && this.stage === undefined) this.decide(false);
    if (this.thread !== undefined) {
      this.sendBatch();
      this.flushing = done;
      this.thread.end(trailer);
      return;
    }
    this.lastFromStage((this.stage as CipherStage).final(trailer));
    done();
  }

  /** Calls `done` now, or once the thread has room (at the end of each `_transform`). */
  protected settle(done: TransformCallback): void {
    if (this.hasRoom()) done();
    else this.waiting = done;
  }

  /** Emits output: pushed at once while the work runs here, queued behind the thread's earlier answers once threaded. */
  protected output(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.thread === undefined) this.push(chunk);
    else this.ready.push(chunk);
  }

  override _read(size: number): void {
    this.wanted = true;
    // why: a reader that takes everything buffered (an async iterator) calls _read just before it
    // takes the buffer: a chunk pushed now would be concatenated with the one already there (a
    // copy of each chunk). So the next answer is pushed once that read is over.
    if (!this.draining) {
      this.draining = true;
      process.nextTick(() => {
        this.draining = false;
        this.drain();
      });
    }
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.thread?.stop();
    this.held = [];
    this.heldOwned = [];
    this.batch = [];
    this.batchOwned = [];
    this.ready = [];
    callback(error);
  }

  /** Sends what is held to a new thread (a big stream), or processes it here. */
  private decide(big: boolean): void {
    const held = this.held;
    const owned = this.heldOwned;
    this.held = [];
    this.heldOwned = [];
    this.decided();
    if (!big || !this.startThread(this.task())) this.stage = this.inlineStage();
    held.forEach((unit, i) => this.feed(unit, owned[i] === true));
  }

  private startThread(task: CipherThreadTask): boolean {
    if (threadsBroken) return false;
    try {
      this.thread = new CipherThread(task, {
        output: (parts) => this.answered(() => this.fromStage(parts)),
        last: (parts) => {
          this.ended = true;
          this.answered(() => this.lastFromStage(parts));
        },
        fail: (error) => this.failed(error),
      });
      return true;
    } catch {
      // why: a platform without worker threads (or out of threads) still encrypts, on one core.
      threadsBroken = true;
      return false;
    }
  }

  /** Queues input for the thread, batched up to THREAD_BATCH_BYTES. */
  private toThread(chunk: Buffer, owned: boolean): void {
    this.batch.push(chunk);
    this.batchOwned.push(owned);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= THREAD_BATCH_BYTES) this.sendBatch();
  }

  private answered(handle: () => void): void {
    try {
      handle();
    } catch (error) {
      return this.failed(error as Error);
    }
    this.drain();
  }

  /**
   * Pushes queued answers while the reader wants them, ends the flush once the last is out, and
   * lets held input go on. A push resets the readable side's "reading" state, so every answer
   * left queued here is pushed by a later _read.
   */
  private drain(): void {
    while (this.wanted && this.ready.length > 0) this.wanted = this.push(this.ready.shift());
    if (this.ended && this.ready.length === 0 && this.flushing !== undefined) {
      const done = this.flushing;
      this.flushing = undefined;
      done();
    }
    if (this.waiting !== undefined && this.hasRoom()) {
      const done = this.waiting;
      this.waiting = undefined;
      done();
    }
  }

  private hasRoom(): boolean {
    return this.thread === undefined || this.thread.inFlight + this.ready.length < MAX_IN_FLIGHT;
  }

  private sendBatch(): void {
    if (this.batch.length === 0) return;
    this.thread?.send(this.batch, this.batchOwned);
    this.batch = [];
    this.batchOwned = [];
    this.batchBytes = 0;
  }

  private failed(error: Error): void {
    this.thread?.stop();
    this.ready = [];
    const pending = this.flushing ?? this.waiting;
    this.flushing = undefined;
    this.waiting = undefined;
    if (pending !== undefined) pending(error);
    else this.destroy(error);
  }
}
