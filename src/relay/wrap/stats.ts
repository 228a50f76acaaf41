import { Transform, type Readable } from 'node:stream';
import type { RelayPath } from '../../core/relpath.js';
import { WholeFile } from '../../core/whole-file.js';
import { ForwardingBackend, type Backend, type Entry, type ListOptions, type Op, type PutOptions } from '../backend.js';

/** The backend methods that `withStats` counts. */
export const COUNTED_METHODS = ['list', 'stat', 'get', 'put', 'delete', 'rename', 'mkdir'] as const;

/** One of the counted backend methods. */
export type CountedMethod = (typeof COUNTED_METHODS)[number];

/** Counters of the calls made on one backend and of the file bytes that went through them. */
export interface BackendCounters {
  /** Calls started per method (failed calls and retries included). */
  readonly calls: Record<CountedMethod, number>;
  /** Bytes read from `get` streams. */
  bytesRead: number;
  /** Bytes stored by successful `put` calls (the size the backend reports). */
  bytesWritten: number;
}

/** Creates zeroed counters. */
export function emptyCounters(): BackendCounters {
  return { calls: { list: 0, stat: 0, get: 0, put: 0, delete: 0, rename: 0, mkdir: 0 }, bytesRead: 0, bytesWritten: 0 };
}

/** Total number of calls in `counters`. */
export function totalCalls(counters: BackendCounters): number {
  return COUNTED_METHODS.reduce((sum, method) => sum + counters.calls[method], 0);
}

/**
 * Wraps a backend so that every call and the bytes of `get` and `put` are added to `counters`
 * (for benchmarks and `ESCALE_STATS_FILE`). Place it innermost, so that each retry counts as a
 * request. A `get` stream is passed through a counting transform, which costs a little CPU:
 * the wrapper is applied only when statistics were asked for.
 */
export function withStats(backend: Backend, counters: BackendCounters): Backend {
  return new StatsBackend(backend, counters);
}

class StatsBackend extends ForwardingBackend {
  constructor(
    inner: Backend,
    private readonly counters: BackendCounters,
  ) {
    super(inner);
  }

  override list(dir: RelayPath, options?: ListOptions): AsyncIterable<Entry> {
    this.counters.calls.list += 1;
    return this.inner.list(dir, options);
  }

  override stat(path: RelayPath, options?: Op): Promise<Entry> {
    this.counters.calls.stat += 1;
    return this.inner.stat(path, options);
  }

  override async get(path: RelayPath, options?: Op): Promise<Readable> {
    this.counters.calls.get += 1;
    const source = await this.inner.get(path, options);
    const counters = this.counters;
    if (source instanceof WholeFile) {
      // why: content read in full is counted at once, and handed on as it is (its readers take it whole).
      counters.bytesRead += source.content.length;
      return source;
    }
    const counting = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        counters.bytesRead += chunk.length;
        done(null, chunk);
      },
    });
    source.on('error', (error) => counting.destroy(error));
    counting.on('close', () => {
      if (!source.destroyed) source.destroy();
    });
    return source.pipe(counting);
  }

  override async put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    this.counters.calls.put += 1;
    const entry = await this.inner.put(path, body, options);
    this.counters.bytesWritten += entry.size >= 0 ? entry.size : body instanceof Uint8Array ? body.length : 0;
    return entry;
  }

  override delete(path: RelayPath, options?: Op): Promise<void> {
    this.counters.calls.delete += 1;
    return this.inner.delete(path, options);
  }

  override rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    this.counters.calls.rename += 1;
    return this.inner.rename(from, to, options);
  }

  override mkdir(dir: RelayPath, options?: Op): Promise<void> {
    this.counters.calls.mkdir += 1;
    return this.inner.mkdir(dir, options);
  }
}

/** The counters of every client section of one escale process (for `ESCALE_STATS_FILE`). */
export class RelayStats {
  private readonly sections = new Map<string, BackendCounters>();

  /** The counters of a client section (created on first use). */
  section(name: string): BackendCounters {
    let counters = this.sections.get(name);
    if (counters === undefined) {
      counters = emptyCounters();
      this.sections.set(name, counters);
    }
    return counters;
  }

  /** Plain data of every section's counters, with the total number of calls as `requests`. */
  toJSON(): Record<string, BackendCounters & { requests: number }> {
    const out: Record<string, BackendCounters & { requests: number }> = {};
    for (const [name, counters] of this.sections) out[name] = { ...counters, requests: totalCalls(counters) };
    return out;
  }
}
