import type { Readable } from 'node:stream';
import { EscaleError, isRetryable, throwIfAborted } from '../../core/errors.js';
import type { RelayPath } from '../../core/relpath.js';
import type { Backend, Entry, Features, ListOptions, Op, PutOptions } from '../backend.js';
import type { RelayClock } from '../relay-clock.js';

/** A put body that can be produced again for a second attempt. */
export type BodyFactory = () => Readable | Uint8Array | Promise<Readable | Uint8Array>;

/** Options of `withRetry`. */
export interface RetryOptions {
  /** Total attempts per call, the first included (default 5). */
  readonly attempts?: number;
  /** Delay before the second attempt; doubles each time (default 250 ms). */
  readonly baseDelayMs?: number;
  /** Upper bound of one delay (default 10 s). */
  readonly maxDelayMs?: number;
  /** Random source in [0, 1) for the jitter (tests). */
  readonly random?: () => number;
  /** Waits `ms` or rejects with Aborted when `signal` fires (tests replace it). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told about each retry (for a log line). */
  readonly onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; error: EscaleError }) => void;
}

/** Waits `ms`, or rejects with Aborted as soon as `signal` fires. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new EscaleError('Aborted', 'operation aborted', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Wraps a backend so that calls failing with a retryable code (Unavailable, ...) are tried again
 * with exponential back-off and jitter, a bounded number of times; an abort stops the waiting.
 *
 * What is never retried, because a second attempt could not send the same thing or would repeat
 * what the caller already saw:
 * - a `put` whose body is a Readable that has already given data (it cannot be rewound). Pass a
 *   Uint8Array or a `BodyFactory` (a function returning a fresh body) to make puts retryable;
 * - a `list` that already yielded an entry (the caller would see duplicates);
 * - a `get` stream failing after it was returned (only opening the stream is retried).
 * A retried `delete` or `rename` whose first attempt reached the server may fail with NotFound.
 */
export function withRetry(backend: Backend, options: RetryOptions = {}): RetryBackend {
  return new RetryBackend(backend, options);
}

/** A Backend that retries retryable failures of the wrapped backend (see `withRetry`). */
export class RetryBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    private readonly inner: Backend,
    private readonly options: RetryOptions = {},
  ) {
    this.id = inner.id;
    this.features = inner.features;
    this.clock = inner.clock;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? abortableSleep;
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    for (let attempt = 1; ; attempt += 1) {
      let yielded = false;
      try {
        for await (const entry of this.inner.list(dir, options)) {
          yielded = true;
          yield entry;
        }
        return;
      } catch (error) {
        if (yielded) throw error;
        await this.backOff('list', dir, attempt, error, options.signal);
      }
    }
  }

  stat(path: RelayPath, options?: Op): Promise<Entry> {
    return this.run('stat', path, options, () => this.inner.stat(path, options));
  }

  get(path: RelayPath, options?: Op): Promise<Readable> {
    return this.run('get', path, options, () => this.inner.get(path, options));
  }

  /** Stores a file; accepts a `BodyFactory` besides the contract's bodies (see `withRetry`). */
  async put(path: RelayPath, body: Readable | Uint8Array | BodyFactory, options: PutOptions = {}): Promise<Entry> {
    for (let attempt = 1; ; attempt += 1) {
      const current = typeof body === 'function' ? await body() : body;
      try {
        return await this.inner.put(path, current, options);
      } catch (error) {
        // why: a stream that already gave data cannot be sent again; one never touched can.
        const replayable = typeof body === 'function' || current instanceof Uint8Array
          || (!(current as Readable).readableDidRead && !(current as Readable).destroyed);
        if (!replayable) throw error;
        await this.backOff('put', path, attempt, error, options.signal);
      }
    }
  }

  delete(path: RelayPath, options?: Op): Promise<void> {
    return this.run('delete', path, options, () => this.inner.delete(path, options));
  }

  rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    return this.run('rename', from, options, () => this.inner.rename(from, to, options));
  }

  mkdir(dir: RelayPath, options?: Op): Promise<void> {
    return this.run('mkdir', dir, options, () => this.inner.mkdir(dir, options));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async run<T>(method: string, path: string, options: Op | undefined, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await call();
      } catch (error) {
        await this.backOff(method, path, attempt, error, options?.signal);
      }
    }
  }

  /** Rethrows `error` unless another attempt is due; otherwise waits the back-off delay. */
  private async backOff(method: string, path: string, attempt: number, error: unknown, signal?: AbortSignal): Promise<void> {
    if (!isRetryable(error) || attempt >= this.attempts || signal?.aborted) throw error;
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    // why: "equal jitter" keeps at least half the delay while spreading clients that failed together.
    const delayMs = Math.round(ceiling / 2 + (ceiling / 2) * this.random());
    this.options.onRetry?.({ method, path, attempt, delayMs, error: error as EscaleError });
    await this.sleep(delayMs, signal);
  }
}
