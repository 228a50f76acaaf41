import { JsonLog } from './json-log.js';

/** Header name of update-failure files. */
const KIND = 'escale-unreadable-updates';

/**
 * This client's failed attempts to read pending index-relay updates (an update index or archive
 * that is corrupt, fails its HMAC, or holds a hostile member), by update key, so that a permanently
 * unreadable update is given up after a bounded number of rounds, restarts included.
 *
 * Persistent in a crash-safe JSON-lines file (`JsonLog`) in the client's data folder, created on the
 * first failure; in memory only when opened with `null`. Every change is written and synced at once
 * (a failure is rare, and a count lost in a crash would retry the update once more, no worse).
 */
export class UpdateFailureLog {
  readonly #failures = new Map<string, number>();
  #log: JsonLog | undefined;

  private constructor(log: JsonLog | undefined) {
    this.#log = log;
  }

  /** Opens the log in `file`, or an in-memory log for `null`. A foreign file at the path is moved aside. */
  static async open(file: string | null): Promise<UpdateFailureLog> {
    const store = new UpdateFailureLog(undefined);
    if (file === null) return store;
    const log = await JsonLog.open(file, {
      kind: KIND,
      // why: this is a retry counter, not user data: a foreign or newer file is set aside, never fatal.
      onForeign: 'move-aside',
      onRecord: ({ k, n }) => {
        if (typeof k !== 'string' || typeof n !== 'number' || !Number.isSafeInteger(n)) return;
        if (n > 0) store.#failures.set(k, n);
        else store.#failures.delete(k);
      },
    });
    store.#log = log;
    if (log.needsRewrite || log.lines > 2 * store.#failures.size + 100) log.rewrite(store.#records());
    return store;
  }

  /** An in-memory log (nothing survives the process). */
  static inMemory(): UpdateFailureLog {
    return new UpdateFailureLog(undefined);
  }

  *#records(): Generator<Record<string, unknown>> {
    for (const [k, n] of this.#failures) yield { k, n };
  }

  /** How many updates have failures recorded. */
  get size(): number {
    return this.#failures.size;
  }

  /** How many failed attempts are recorded for `key` (0 when none). */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Records one more failed attempt for `key`; returns the new count. */
  recordFailure(key: string): number {
    const n = this.failures(key) + 1;
    this.#set(key, n);
    return n;
  }

  /** Forgets every key for which `keep` is false (updates gone from the relay). */
  prune(keep: (key: string) => boolean): void {
    for (const key of [...this.#failures.keys()]) if (!keep(key)) this.#set(key, 0);
  }

  #set(key: string, n: number): void {
    if (n > 0) this.#failures.set(key, n);
    else this.#failures.delete(key);
    if (this.#log === undefined) return;
    this.#log.append({ k: key, n });
    this.#log.flush();
  }

  /** Flushes and closes the file; the log must not be used afterwards. */
  async close(): Promise<void> {
    this.#log?.close();
  }
}
