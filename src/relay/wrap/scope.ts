import type { Readable } from 'node:stream';
import { inRelayScope } from '../../core/errors.js';
import type { RelayPath } from '../../core/relpath.js';
import type { Backend, Entry, Features, ListOptions, Op, PutOptions } from '../backend.js';
import type { RelayClock } from '../relay-clock.js';

/**
 * Wraps a backend so that every error its calls throw is marked as coming from the relay (error
 * scope `relay`, see `failsWholeRelay`): the engines then tell a relay that is down from one local
 * file that cannot be read, by code and origin, never by message. Errors of a returned stream are
 * left as they are (a transfer cut midway fails that file only).
 */
export function withRelayScope(backend: Backend): Backend {
  return new RelayScopeBackend(backend);
}

class RelayScopeBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;

  constructor(private readonly inner: Backend) {
    this.id = inner.id;
    this.features = inner.features;
    this.clock = inner.clock;
  }

  async *list(dir: RelayPath, options?: ListOptions): AsyncIterable<Entry> {
    try {
      yield* this.inner.list(dir, options);
    } catch (error) {
      throw inRelayScope(error);
    }
  }

  stat(path: RelayPath, options?: Op): Promise<Entry> {
    return scoped(this.inner.stat(path, options));
  }

  get(path: RelayPath, options?: Op): Promise<Readable> {
    return scoped(this.inner.get(path, options));
  }

  put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    return scoped(this.inner.put(path, body, options));
  }

  delete(path: RelayPath, options?: Op): Promise<void> {
    return scoped(this.inner.delete(path, options));
  }

  rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    return scoped(this.inner.rename(from, to, options));
  }

  mkdir(dir: RelayPath, options?: Op): Promise<void> {
    return scoped(this.inner.mkdir(dir, options));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

async function scoped<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw inRelayScope(error);
  }
}
