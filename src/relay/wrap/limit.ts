import type { Readable } from 'node:stream';
import { EscaleError, throwIfAborted } from '../../core/errors.js';
import type { RelayPath } from '../../core/relpath.js';
import type { Backend, Entry, Features, ListOptions, Op, PutOptions } from '../backend.js';
import type { RelayClock } from '../relay-clock.js';

/** A counting semaphore whose waiters can give up through an AbortSignal. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly capacity: number) {}

  /** Calls running now. */
  get inUse(): number {
    return this.active;
  }

  /** Waits for a free slot; rejects with Aborted if `signal` fires first. Returns the release function. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    throwIfAborted(signal);
    if (this.active < this.capacity) {
      this.active += 1;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const index = this.waiting.indexOf(grant);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(new EscaleError('Aborted', 'operation aborted while waiting for a connection', { cause: signal?.reason }));
      };
      this.waiting.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // why: the releasing call handed its slot over without decrementing, so `active` is already right.
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    };
  }
}

/**
 * Wraps a backend so that at most `max` calls (default `features.maxConnections`) run at once. A
 * `get` holds its slot until its stream closes and a `list` until its iteration ends, because
 * both keep a connection busy: a caller must not hold one open while waiting for another call.
 */
export function withLimit(backend: Backend, max = backend.features.maxConnections): LimitBackend {
  return new LimitBackend(backend, max);
}

/** A Backend that caps the concurrent calls to the wrapped backend (see `withLimit`). */
export class LimitBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;
  /** The slots; exposed so tests can watch the concurrency. */
  readonly slots: Semaphore;

  constructor(
    private readonly inner: Backend,
    max: number,
  ) {
    this.id = inner.id;
    this.slots = new Semaphore(Math.max(1, Math.floor(max)));
    this.features = { ...inner.features, maxConnections: this.slots.capacity };
    this.clock = inner.clock;
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    const release = await this.slots.acquire(options.signal);
    try {
      yield* this.inner.list(dir, options);
    } finally {
      release();
    }
  }

  stat(path: RelayPath, options?: Op): Promise<Entry> {
    return this.run(options, () => this.inner.stat(path, options));
  }

  async get(path: RelayPath, options?: Op): Promise<Readable> {
    const release = await this.slots.acquire(options?.signal);
    try {
      const stream = await this.inner.get(path, options);
      stream.once('close', release);
      if (stream.destroyed) release();
      return stream;
    } catch (error) {
      release();
      throw error;
    }
  }

  put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    return this.run(options, () => this.inner.put(path, body, options));
  }

  delete(path: RelayPath, options?: Op): Promise<void> {
    return this.run(options, () => this.inner.delete(path, options));
  }

  rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    return this.run(options, () => this.inner.rename(from, to, options));
  }

  mkdir(dir: RelayPath, options?: Op): Promise<void> {
    return this.run(options, () => this.inner.mkdir(dir, options));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async run<T>(options: Op | undefined, call: () => Promise<T>): Promise<T> {
    const release = await this.slots.acquire(options?.signal);
    try {
      return await call();
    } finally {
      release();
    }
  }
}
