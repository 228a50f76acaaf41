import { Readable, addAbortSignal } from 'node:stream';
import { EscaleError, fromSystemError, throwIfAborted } from '../../../core/errors.js';
import { dirnameRel, type RelayPath } from '../../../core/relpath.js';
import type { Backend, Entry, Features, ListOptions, Op, PutOptions } from '../../backend.js';
import { RelayClock } from '../../relay-clock.js';

interface StoredFile {
  data: Buffer;
  mtimeMs: number;
}

/** The reference backend: files in a Map, used by unit tests and as the model the suite pins. */
export class MemoryBackend implements Backend {
  readonly id: string;
  readonly features: Features = { maxConnections: 16, mtimePrecisionMs: 1, renameOverwrites: true, recursiveList: true };
  readonly clock: RelayClock;
  private readonly files = new Map<string, StoredFile>();
  private readonly dirs = new Set<string>(['']);
  private closed = false;

  /**
   * `now` is the relay's clock (mtimes of puts). The clock estimate runs on it as its monotonic
   * clock unless `clock` is given: in memory, the relay's clock is this process's.
   */
  constructor(name = 'memory', private readonly now: () => number = Date.now, clock?: RelayClock) {
    this.id = `memory://${name}`;
    this.clock = clock ?? new RelayClock({ monotonic: now });
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    this.check(options);
    const prefix = dir === '' ? '' : `${dir}/`;
    const seenDirs = new Set<string>();
    for (const [path, file] of [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash >= 0 && !options.recursive) {
        const sub = prefix + rest.slice(0, slash);
        if (!seenDirs.has(sub)) {
          seenDirs.add(sub);
          yield { path: sub as RelayPath, kind: 'dir', size: 0 };
        }
        continue;
      }
      yield { path: path as RelayPath, kind: 'file', size: file.data.length, mtimeMs: file.mtimeMs };
    }
    if (!options.recursive) {
      for (const sub of this.dirs) {
        if (sub === '' || !sub.startsWith(prefix) || seenDirs.has(sub)) continue;
        if (!sub.slice(prefix.length).includes('/')) yield { path: sub as RelayPath, kind: 'dir', size: 0 };
      }
    }
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    this.check(options);
    const file = this.files.get(path);
    if (file) return { path, kind: 'file', size: file.data.length, mtimeMs: file.mtimeMs };
    if (this.dirs.has(path)) return { path, kind: 'dir', size: 0 };
    throw notFound(path);
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    this.check(options);
    const file = this.files.get(path);
    if (!file) throw notFound(path);
    return Readable.from([file.data]);
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    return this.clock.timed(() => this.write(path, body, options), this.features.mtimePrecisionMs);
  }

  private async write(path: RelayPath, body: Readable | Uint8Array, options: PutOptions): Promise<Entry> {
    this.check(options);
    if (this.dirs.has(path)) throw new EscaleError('AlreadyExists', `'${path}' is a folder`, { path });
    const chunks: Buffer[] = [];
    if (body instanceof Uint8Array) chunks.push(Buffer.from(body));
    else {
      // why: destroys a stalled body when the signal fires, so the loop wakes up instead of hanging.
      if (options.signal) addAbortSignal(options.signal, body);
      try {
        for await (const chunk of body) {
          throwIfAborted(options.signal);
          chunks.push(Buffer.from(chunk as Uint8Array));
        }
      } catch (error) {
        if (options.signal?.aborted) throw new EscaleError('Aborted', 'put aborted', { path, cause: options.signal.reason });
        throw fromSystemError(error, path);
      }
    }
    this.check(options);
    if (options.exclusive && this.files.has(path)) throw new EscaleError('AlreadyExists', `'${path}' exists`, { path });
    this.makeParents(path);
    const file = { data: Buffer.concat(chunks), mtimeMs: this.now() };
    this.files.set(path, file);
    return { path, kind: 'file', size: file.data.length, mtimeMs: file.mtimeMs };
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    if (!this.files.delete(path)) throw notFound(path);
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    const file = this.files.get(from);
    if (!file) throw notFound(from);
    this.makeParents(to);
    this.files.delete(from);
    this.files.set(to, file);
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    if (this.files.has(dir)) throw new EscaleError('AlreadyExists', `'${dir}' is a file`, { path: dir });
    this.makeParents(`${dir}/x` as RelayPath);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private makeParents(path: RelayPath): void {
    for (let dir = dirnameRel(path); dir !== ''; dir = dirnameRel(dir)) {
      if (this.files.has(dir)) throw new EscaleError('AlreadyExists', `'${dir}' is a file`, { path: dir });
      this.dirs.add(dir);
    }
  }

  private check(options: Op): void {
    if (this.closed) throw new EscaleError('Internal', `${this.id} is closed`);
    throwIfAborted(options.signal);
  }
}

function notFound(path: string): EscaleError {
  return new EscaleError('NotFound', `'${path}' does not exist`, { path });
}
