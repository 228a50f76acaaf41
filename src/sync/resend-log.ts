import type { RelPath } from '../core/relpath.js';
import { JsonLog } from '../local/json-log.js';
import { sameVersion, type MetadataRecord } from '../relay/protocol/records.js';

/** How many times a client asks for one version to be sent again before it stops asking. */
export const MAX_RESEND_REQUESTS = 3;

/** Header name of re-send request files. */
const KIND = 'escale-resend-requests';

/** The version this client asked for, and how many times. */
export interface ResendRequest {
  /** The version asked for: pusher, timestamp and checksum of its record (pullers are left out). */
  readonly record: MetadataRecord;
  readonly asks: number;
}

/**
 * The versions this client asked their pushers to send again because their data left the relay
 * before `puller count` pullers had them (a puller that does not record itself, escale 0.7), one
 * per path, with how many times it asked, so that the asking stops after a bounded number of times,
 * restarts included, and an older local copy is not sent in place of a version asked for.
 *
 * Persistent in a crash-safe JSON-lines file (`JsonLog`) in the client's data folder, created on the
 * first request; in memory only when opened with `null`. Every change is written and synced at once
 * (requests are rare; one lost in a crash costs one more request, no worse).
 */
export class ResendLog {
  readonly #requests = new Map<RelPath, ResendRequest>();
  #log: JsonLog | undefined;

  private constructor(log: JsonLog | undefined) {
    this.#log = log;
  }

  /** Opens the log in `file`, or an in-memory log for `null`. A foreign file at the path is moved aside. */
  static async open(file: string | null): Promise<ResendLog> {
    const store = new ResendLog(undefined);
    if (file === null) return store;
    const log = await JsonLog.open(file, {
      kind: KIND,
      // why: request counters, not user data: a foreign or newer file is set aside, never fatal.
      onForeign: 'move-aside',
      onRecord: (line) => {
        const path = line['p'];
        const asks = line['n'];
        if (typeof path !== 'string' || typeof asks !== 'number' || !Number.isSafeInteger(asks)) return;
        if (asks <= 0) {
          store.#requests.delete(path as RelPath);
          return;
        }
        const record = recordOf(line);
        if (record !== undefined) store.#requests.set(path as RelPath, { record, asks });
      },
    });
    store.#log = log;
    if (log.needsRewrite || log.lines > 2 * store.#requests.size + 100) log.rewrite(store.#lines());
    return store;
  }

  /** An in-memory log (nothing survives the process). */
  static inMemory(): ResendLog {
    return new ResendLog(undefined);
  }

  *#lines(): Generator<Record<string, unknown>> {
    for (const [path, request] of this.#requests) yield lineOf(path, request);
  }

  /** How many paths have a request recorded. */
  get size(): number {
    return this.#requests.size;
  }

  /** The request recorded for `path`, if any. */
  get(path: RelPath): ResendRequest | undefined {
    return this.#requests.get(path);
  }

  /** The paths with a recorded request. */
  paths(): RelPath[] {
    return [...this.#requests.keys()];
  }

  /** How many times this client asked for the version `record` of `path` (0 for any other version). */
  asks(path: RelPath, record: MetadataRecord): number {
    const request = this.#requests.get(path);
    return request !== undefined && sameVersion(request.record, record) ? request.asks : 0;
  }

  /** Records one more request for the version `record` of `path` (replacing any other version); returns the new count. */
  recordAsk(path: RelPath, record: MetadataRecord): number {
    const request = { record: versionOf(record), asks: this.asks(path, record) + 1 };
    this.#requests.set(path, request);
    this.#write(lineOf(path, request));
    return request.asks;
  }

  /** Forgets the request of `path` (the version arrived, or another replaced it). */
  forget(path: RelPath): void {
    if (!this.#requests.delete(path)) return;
    this.#write({ p: path, n: 0 });
  }

  /**
   * Forgets the requests that are settled: `current` (what the relay now records for a path) holds
   * another version, or names `client` as one of its pullers (it got the version).
   */
  settle(current: (path: RelPath) => MetadataRecord | undefined, client: string): void {
    for (const [path, request] of [...this.#requests]) {
      const record = current(path);
      if (record !== undefined && (!sameVersion(record, request.record) || record.pullers.includes(client))) this.forget(path);
    }
  }

  #write(line: Record<string, unknown>): void {
    if (this.#log === undefined) return;
    this.#log.append(line);
    this.#log.flush();
  }

  /** Flushes and closes the file; the log must not be used afterwards. */
  async close(): Promise<void> {
    this.#log?.close();
  }
}

function versionOf(record: MetadataRecord): MetadataRecord {
  return {
    ...(record.version === undefined ? {} : { version: record.version }),
    ...(record.pusher === undefined ? {} : { pusher: record.pusher }),
    ...(record.timestamp === undefined ? {} : { timestamp: record.timestamp }),
    ...(record.checksum === undefined ? {} : { checksum: record.checksum }),
    pullers: [],
  };
}

function lineOf(path: RelPath, request: ResendRequest): Record<string, unknown> {
  const { record } = request;
  return { p: path, n: request.asks, u: record.pusher ?? null, t: record.timestamp ?? null, c: record.checksum ?? null };
}

function recordOf(line: Record<string, unknown>): MetadataRecord | undefined {
  const pusher = line['u'];
  const timestamp = line['t'];
  const checksum = line['c'];
  if ((pusher !== null && typeof pusher !== 'string') || (timestamp !== null && typeof timestamp !== 'number') || (checksum !== null && typeof checksum !== 'string')) return undefined;
  return {
    version: '1.0',
    ...(pusher === null ? {} : { pusher }),
    ...(timestamp === null ? {} : { timestamp }),
    ...(checksum === null ? {} : { checksum }),
    pullers: [],
  };
}
