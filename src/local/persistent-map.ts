import { createHash } from 'node:crypto';
import { intern } from '../core/intern.js';
import { JsonLog } from './json-log.js';

/** Turns one value into the fields of its JSON-lines record and back (undefined: the record cannot be used). */
export interface MapCodec<V> {
  encode(value: V): Record<string, unknown>;
  decode(record: Record<string, unknown>): V | undefined;
}

/** Options of `PersistentMap.open`. */
export interface PersistentMapOptions<V> {
  /** Header name of the file; a file of another kind is moved to `<file>.foreign`. */
  readonly kind: string;
  /** Format version; a file of another version is moved aside (the map starts empty). */
  readonly version: number;
  /** What the entries are relative to (a relay, a client...): a file written for another context is emptied. */
  readonly context: string;
  readonly codec: MapCodec<V>;
  /** Never write the file (dry runs): entries are loaded, changes stay in memory. */
  readonly readOnly?: boolean;
}

/** Rewrite the file when it holds this many more lines than there are entries. */
const SLACK_LINES = 1000;

/**
 * A string-keyed map kept in a crash-safe JSON-lines file (`JsonLog`: appends, torn last line
 * ignored, rewrites by temporary file, fsync and rename), versioned and tied to a context. Any
 * doubt counts as "not known" and never as a value: a damaged line, a record the codec refuses, a
 * file of another kind, version or context. For caches whose loss only costs reading again.
 * Changes are buffered until `flush` (the owner calls it once per round) or `close`.
 */
export class PersistentMap<V> {
  readonly #entries = new Map<string, V>();
  readonly #context: string;
  readonly #codec: MapCodec<V> | undefined;
  readonly #readOnly: boolean;
  #log: JsonLog | undefined;
  #fileContext: string | undefined;
  #doubt = false;
  #dirty = false;

  private constructor(context: string, codec: MapCodec<V> | undefined, readOnly: boolean) {
    this.#context = createHash('sha256').update(context, 'utf8').digest('hex');
    this.#codec = codec;
    this.#readOnly = readOnly;
  }

  /** A map kept in memory only. */
  static inMemory<V>(): PersistentMap<V> {
    return new PersistentMap<V>('', undefined, true);
  }

  /** Opens the map kept in `file` (missing: empty), or an in-memory map for `null`. */
  static async open<V>(file: string | null, options: PersistentMapOptions<V>): Promise<PersistentMap<V>> {
    const map = new PersistentMap<V>(options.context, options.codec, options.readOnly === true || file === null);
    if (file === null) return map;
    map.#log = await JsonLog.open(file, {
      kind: options.kind,
      version: options.version,
      onForeign: 'move-aside',
      onRecord: (record) => map.#apply(record, options.codec),
      // why: a line cut short may have been the newest value of its key; without its key, nothing is trusted.
      onDamaged: () => map.#entries.clear(),
    });
    if (map.#doubt || map.#fileContext !== map.#context) map.#entries.clear();
    map.#compact(map.#fileContext !== map.#context || map.#doubt);
    return map;
  }

  #apply(record: Record<string, unknown>, codec: MapCodec<V>): void {
    if ('context' in record) {
      if (this.#fileContext !== undefined || typeof record['context'] !== 'string') this.#doubt = true;
      else this.#fileContext = record['context'];
      return;
    }
    if (this.#fileContext === undefined) this.#doubt = true;
    const key = record['k'];
    if (typeof key !== 'string') {
      this.#entries.clear();
      return;
    }
    const value = record['d'] === 1 ? undefined : codec.decode(record);
    if (value === undefined) this.#entries.delete(key);
    else this.#entries.set(intern(key), value);
  }

  #compact(force = false): void {
    const log = this.#log;
    const codec = this.#codec;
    if (log === undefined || codec === undefined || this.#readOnly) return;
    if (!force && !log.needsRewrite && log.lines <= 2 * this.#entries.size + SLACK_LINES) return;
    const context = this.#context;
    const entries = this.#entries;
    log.rewrite(
      (function* () {
        yield { context };
        for (const [k, value] of entries) yield { k, ...codec.encode(value) };
      })(),
    );
    this.#fileContext = context;
    this.#doubt = false;
    this.#dirty = false;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** Sets a value; with `durable` false it is kept in memory only (and an older durable value is dropped from the file). */
  set(key: string, value: V, durable = true): void {
    const had = this.#entries.has(key);
    this.#entries.set(key, value);
    if (durable) this.#append({ k: key, ...(this.#codec?.encode(value) ?? {}) });
    else if (had) this.#append({ k: key, d: 1 });
  }

  /** Drops a key (nothing when it is not there). */
  delete(key: string): void {
    if (this.#entries.delete(key)) this.#append({ k: key, d: 1 });
  }

  #append(record: Record<string, unknown>): void {
    if (this.#log === undefined || this.#readOnly) return;
    this.#log.append(record);
    this.#dirty = true;
  }

  /** Writes buffered changes and syncs the file; does nothing when nothing changed. */
  flush(): void {
    if (!this.#dirty) return;
    this.#compact();
    this.#log?.flush();
    this.#dirty = false;
  }

  /** Flushes and closes the file; the map must not be used afterwards. */
  close(): void {
    this.flush();
    if (!this.#readOnly) this.#log?.close();
  }
}
