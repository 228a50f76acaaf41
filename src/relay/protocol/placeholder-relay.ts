import type { Readable } from 'node:stream';
import { EscaleError, failsWholeRelay, hasCode, throwIfAborted } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { RefusedNames } from '../../core/refused-names.js';
import { ReportOnce } from '../../core/report-once.js';
import { folderSpellings, relPathProblem, ROOT, spellAs, type RelayPath, type RelPath } from '../../core/relpath.js';
import { readSmall, type Backend, type Entry } from '../backend.js';
import { sameVersion, type LockRecord, type MetadataRecord, type PushOptions, type RemoteFile } from './records.js';
import { CHANGE_MARKER, ChangeMarker } from './change-marker.js';
import { cachedRecord, type CachedRecord, type PlaceholderCache } from './placeholder-cache.js';
import { assertResource, classifyRelayName, lockPathOf, placeholderNameProblem, placeholderPathOf, resourceNameOf } from './layout.js';
import { formatLock, parseLock } from './lock.js';
import { appendPuller, clientNameProblem, formatMetadata, MAX_RECORD_BYTES, parseMetadata, shouldKeep } from './placeholder.js';
import { OwnChanges, RecordingBackend } from './own-changes.js';
import { ClockWarnings, expiryEvidence, judgeExpiry } from './relay-time.js';

/** What the crawl makes of one listed name (see `PlaceholderRelay.judgeName`). */
type NameVerdict =
  | { readonly kind: 'ignored' }
  | { readonly kind: 'refused'; readonly subject: string; readonly problem?: string }
  | { readonly kind: 'data' | 'lock' | 'placeholder'; readonly subject: string; readonly resource: RelayPath; readonly key: RelPath };

/** How recent (ms, beyond the mtime precision) a placeholder's relay mtime must be for its cache entry to stay in memory only. */
const RECENT_WRITE_MS = 2000;

/** Settings of a PlaceholderRelay. */
export interface PlaceholderRelayOptions {
  /** This client's name, written as lock owner, pusher and puller. */
  readonly client: string;
  /**
   * Owner-less locks left this many seconds (by the relay's clock, or unchanged while watched:
   * `judgeExpiry`) are repaired; null: never.
   */
  readonly lockTimeoutSec: number | null;
  /** This machine's wall clock in milliseconds (injected for tests); never used to judge relay files' ages. */
  readonly now: () => number;
  readonly logger: Logger;
  /** Size limit of lock and placeholder files, in bytes (default 64 KiB). */
  readonly maxRecordBytes?: number;
  /** The `puller count` option: how many distinct pullers must get a version before its data leaves. */
  readonly pullerCount?: number;
  /** The `modification time` option when it is a string: format of legacy placeholder timestamps. */
  readonly legacyTimestampFormat?: string;
  /** How many placeholders `describe` downloads at once (default: min(4, backend maxConnections)). */
  readonly concurrency?: number;
  /** Where refused relay names are reported once (shared with the client's local side); default: its own. */
  readonly refusedNames?: RefusedNames;
  /** Why the local side cannot hold a resource (its full local path would be too long), or undefined. */
  readonly localNameProblem?: (path: RelPath) => string | undefined;
  /**
   * Where the placeholders read are kept, by listing mtime and size (default: in memory); the daemon
   * passes one kept in the data folder, so that a restarted client reads only what changed.
   */
  readonly cache?: PlaceholderCache;
}

/** The relay files of one resource, as listed. */
export interface ResourceFiles {
  readonly data?: Entry;
  readonly lock?: Entry;
  readonly placeholder?: Entry;
}

/** One recursive listing of the relay root, grouped by resource. */
export interface RelaySnapshot {
  /** Client clock (ms) when the listing finished. */
  readonly takenAtMs: number;
  /** Every resource that has a data file, a lock or a placeholder, by its NFC name (the entries keep the relay's spelling). */
  readonly resources: ReadonlyMap<RelPath, ResourceFiles>;
}

/** A download in progress: this client holds the resource's lock (`mode: r`). */
export interface PullHandle {
  /** The placeholder read after the lock was taken; undefined when missing or unreadable. */
  readonly record?: MetadataRecord;
  /** The relay's name of the resource when it is not spelled in NFC. */
  readonly spelling?: RelayPath;
  /** Why the placeholder could not be used, when it exists but is corrupt. */
  readonly recordProblem?: string;
  /** The data file, opened under the lock (the first call); a later call opens it again (throws NotFound if it vanished). */
  open(signal?: AbortSignal): Promise<Readable>;
  /**
   * Finishes the pull once the local copy is safely in place: deletes the data unless `keep`,
   * records this client as a puller, releases the lock. On failure the lock stays, so that
   * `repair` finishes the job.
   */
  commit(options: { keep: boolean }, signal?: AbortSignal): Promise<void>;
  /** Gives up: releases the lock and changes nothing else. */
  abort(signal?: AbortSignal): Promise<void>;
}

/** What `repair` did to one lock. */
export interface RepairedTransfer {
  readonly path: RelPath;
  /** The lock that was found: own upload, own download, owner-less or unreadable past timeout, or without mode. */
  readonly lock: 'upload' | 'download' | 'unclaimed' | 'unreadable' | 'no-mode';
  /**
   * `resend-requested`: data and placeholder deleted (the pusher sends again);
   * `download-completed`: the local copy matched, the pull was finished;
   * `download-left`: the relay copy was left for a new download; `lock-released`: only the lock went.
   */
  readonly outcome: 'resend-requested' | 'download-completed' | 'download-left' | 'lock-released';
}

/** Result of `repair`. */
export interface RepairReport {
  readonly repaired: readonly RepairedTransfer[];
  /** Locks left alone: foreign, or owner-less or unreadable but younger than the lock timeout. */
  readonly untouched: readonly RelPath[];
  /** Resources whose repair failed (for a reason that is not the relay as a whole); tried again at the next repair. */
  readonly failed: readonly { readonly path: RelPath; readonly error: unknown }[];
}

/** Which locks `repair` looks at: all of them (start-up, after an error), or only those past the lock timeout. */
export type RepairScope = 'all' | 'expired';

/** What `requestResend` found under the lock. */
export type ResendOutcome =
  /** The placeholder was deleted: the pusher sends the file again. */
  | 'requested'
  /** The relay holds another version, or its pullers changed so that no re-send is due: nothing deleted. */
  | 'changed'
  /** The data is back on the relay (sent again meanwhile): nothing deleted. */
  | 'has-data'
  /** Neither data nor placeholder are there any more. */
  | 'gone'
  /** Another client holds the lock. */
  | 'locked';

/** Local information that `repair` needs. */
export interface RepairLocal {
  /** Checksum of the local file (same algorithm as the records), or undefined when it does not exist. */
  checksum(path: RelPath): Promise<string | undefined>;
}

interface PlaceholderRead {
  readonly text?: string;
  readonly record?: MetadataRecord;
  readonly problem?: string;
}

/**
 * The placeholder wire protocol (relay-format.md P3) on top of any Backend: resources stored under
 * their own path, with `D/.N.lock` and `D/.N.placeholder` beside them. A lock is created with an
 * exclusive put (atomic between escale clients where the backend can do it; 0.7 clients still
 * read, then write); a foreign lock means "skip for this round", never a wait.
 *
 * Requests per file (issue 13), the floor the relay bytes allow: a push is 4 (lock, placeholder,
 * data, unlock); a pull is 7 (the placeholder read when planning, lock, the placeholder read once
 * under the lock, data, its removal, the placeholder with this client as puller, unlock). What
 * this client writes is remembered: the placeholder cache takes the records it wrote, and
 * `patched` applies its own changes to the round's listing instead of listing again.
 */
export class PlaceholderRelay {
  private readonly client: string;
  private readonly backend: Backend;
  /** What this client changed on the relay since the last crawl (see `patched`). */
  private readonly changes = new OwnChanges();
  private readonly maxRecordBytes: number;
  private readonly concurrency: number;
  private readonly cache: PlaceholderCache;
  /**
   * The records this client wrote, by the entry its put returned: a snapshot patched with that
   * entry (`patched`) describes it without reading it back, even when the put gave no mtime.
   */
  private readonly written = new WeakMap<Entry, MetadataRecord>();
  private readonly clockWarnings: ClockWarnings;
  private readonly refused: RefusedNames;
  /** why: resources the relay spells otherwise than in NFC (0.7 pushes names as its disk spells them) are addressed in that spelling. */
  private spellings = new Map<RelPath, RelayPath>();
  /** The folders those spellings name otherwise than in NFC: a new resource goes into them. */
  private folderSpellings = new Map<RelPath, RelayPath>();
  /** why: an unreadable lock is reported when first seen, not at every look (its removal is logged by `lockExpired`). */
  private readonly unreadableLocks = new ReportOnce();
  /** why: a relay entry the backend cannot describe is reported once per problem, not every round. */
  private readonly unreadableEntries = new ReportOnce();
  /** Locks of other clients (never broken) seen by the per-round repair, by their listing `size:mtime`. */
  private readonly otherLocks = new Map<RelPath, string>();
  /** The change marker: polled instead of listing while idle, touched after a round that changed the relay. */
  private readonly marker: ChangeMarker;
  /** How the last crawl judged each name it listed (see `judgeName`). */
  private names = new Map<string, NameVerdict>();

  constructor(
    backend: Backend,
    private readonly options: PlaceholderRelayOptions,
  ) {
    this.backend = new RecordingBackend(backend, this.changes);
    const problem = clientNameProblem(options.client);
    if (problem !== undefined) throw new EscaleError('Config', `client name ${JSON.stringify(options.client)} cannot be used on a relay: it ${problem}`);
    this.client = options.client;
    this.maxRecordBytes = options.maxRecordBytes ?? MAX_RECORD_BYTES;
    this.concurrency = Math.max(1, options.concurrency ?? Math.min(4, backend.features.maxConnections));
    this.clockWarnings = new ClockWarnings(backend, options.now, options.logger, options.client);
    this.refused = options.refusedNames ?? new RefusedNames(options.logger);
    this.marker = new ChangeMarker(backend, { client: options.client, logger: options.logger });
    this.cache = options.cache ?? new Map<string, CachedRecord>();
  }

  /**
   * What a listed relay name is for the crawl: not a protocol file of any resource, a file of a
   * resource that escale refuses (with the subject and reason reported), or a data file, lock or
   * placeholder of the resource `key`.
   */
  private judgeName(raw: string): NameVerdict {
    // why: the backend contract promises safe names; a hostile or broken server is checked anyway.
    if (relPathProblem(raw) !== undefined) return { kind: 'refused', subject: resourceNameOf(raw) };
    const name = classifyRelayName(raw as RelayPath);
    if (name.resource === undefined || (name.kind !== 'data' && name.kind !== 'lock' && name.kind !== 'placeholder')) return { kind: 'ignored' };
    if (placeholderNameProblem(name.resource) !== undefined) return { kind: 'refused', subject: name.resource };
    const key = keyOf(name.resource);
    const localProblem = this.options.localNameProblem?.(key);
    if (localProblem !== undefined) return { kind: 'refused', subject: name.resource, problem: localProblem };
    return { kind: name.kind, subject: name.resource, resource: name.resource, key };
  }

  /** Whether the relay may have changed since the last crawl (one small request: see `ChangeMarker`). */
  async changedSince(_snapshot: RelaySnapshot, signal?: AbortSignal): Promise<boolean> {
    return this.marker.changed(signal);
  }

  /** Touches the change marker, so that idle clients list the relay again (a failure is a warning once). */
  async markChanged(signal?: AbortSignal): Promise<void> {
    await this.marker.touch(signal);
  }

  /**
   * The relay's spelling of a resource as the last crawl listed it; a resource the relay does not
   * hold goes into the folders as the relay spells them; else the name itself.
   */
  private spelled(path: RelayPath): RelayPath {
    const key = keyOf(path);
    const spelled = spellAs(key, this.spellings, this.folderSpellings);
    return spelled === key ? path : spelled;
  }

  /**
   * Lists the relay root once (recursively) and groups the files by resource, matched by their NFC
   * names; the relay's spelling of each is kept for later calls. Names escale does not synchronise
   * (unsafe, not UTF-8, too long for a placeholder, two spellings of one name) are left out and
   * reported once each through the refused-names reporter.
   */
  async crawl(signal?: AbortSignal): Promise<RelaySnapshot> {
    this.changes.reset();
    const resources = new Map<RelPath, { data?: Entry; lock?: Entry; placeholder?: Entry }>();
    const spellings = new Map<RelPath, RelayPath>();
    const seen = new Set<string>();
    const problems = new Map<string, string>();
    // why: a resource's data, lock and placeholder are one subject, judged by the resource name, so
    // that its files (which a backend may refuse for different reasons) give one stable warning.
    const refuse = (raw: string, problem?: string): void => {
      const subject = resourceNameOf(raw);
      if (!problems.has(subject)) problems.set(subject, problem ?? relPathProblem(subject) ?? placeholderNameProblem(subject as RelayPath) ?? relPathProblem(raw) ?? 'cannot be addressed');
    };
    const ambiguous = new Map<RelPath, Set<RelayPath>>();
    const unreadable = new Set<string>();
    const onUnreadable = (path: string, error: EscaleError): void => {
      unreadable.add(path);
      if (this.unreadableEntries.isNew(path, error.message)) this.options.logger.warning(`skipping relay entry ${JSON.stringify(path)}: ${error.message}`);
    };
    const listedAtMono = this.marker.now();
    let markerEntry: Entry | undefined;
    const names = new Map<string, NameVerdict>();
    for await (const entry of this.backend.list(ROOT, { recursive: true, signal, onRefused: (name) => refuse(name), onUnreadable })) {
      if (entry.kind !== 'file') continue;
      const raw: string = entry.path;
      if (raw === CHANGE_MARKER) {
        markerEntry = entry;
        continue;
      }
      // why: judged once per name and kept while the name is listed: a listing of 100,000 names judged again each time cost most of an idle listing round.
      const verdict = this.names.get(raw) ?? this.judgeName(raw);
      names.set(raw, verdict);
      if (verdict.kind === 'ignored') continue;
      seen.add(verdict.subject);
      if (verdict.kind === 'refused') {
        refuse(raw, verdict.problem);
        continue;
      }
      const { key } = verdict;
      const name = verdict;
      const known = spellings.get(key) ?? (resources.has(key) ? key : undefined);
      if (known !== undefined && known !== name.resource) {
        const both = ambiguous.get(key) ?? new Set([known]);
        ambiguous.set(key, both.add(name.resource));
      }
      if (name.resource !== key) spellings.set(key, name.resource);
      const slot = resources.get(key) ?? {};
      slot[name.kind] = entry;
      resources.set(key, slot);
    }
    for (const [key, names] of ambiguous) {
      // why: matching is by NFC name, so two spellings of one name would be one file here: neither is taken.
      resources.delete(key);
      spellings.delete(key);
      const all = [...names];
      for (const spelling of all) {
        const others = all.filter((other) => other !== spelling).map((other) => JSON.stringify(other)).join(', ');
        problems.set(spelling, `has the same Unicode NFC form as ${others} on the relay (one name spelled two ways); rename one of them`);
      }
    }
    for (const [subject, problem] of problems) {
      seen.add(subject);
      this.refused.refuse('relay', subject, problem);
    }
    this.refused.retain('relay', (name) => seen.has(name));
    this.names = names;
    this.spellings = spellings;
    this.folderSpellings = folderSpellings(spellings);
    this.unreadableLocks.retain((path) => resources.get(path as RelPath)?.lock !== undefined);
    this.unreadableEntries.retain((path) => unreadable.has(path));
    for (const path of [...this.otherLocks.keys()]) if (resources.get(path)?.lock === undefined) this.otherLocks.delete(path);
    this.clockWarnings.checkOwnClock();
    await this.marker.listed(markerEntry, listedAtMono, signal);
    return { takenAtMs: this.options.now(), resources };
  }

  /**
   * Describes every resource of a snapshot. Placeholders are downloaded and parsed, and cached
   * across rounds by listing mtime and size (always downloaded again when the backend gives no
   * mtime). A corrupt placeholder becomes `recordProblem`. A placeholder that cannot be read is
   * confined to its resource: the resource is left out and given to `onFailure` (without it, the
   * error is thrown); errors of the relay as a whole (`failsWholeRelay`) and aborts are thrown.
   */
  async describe(snapshot: RelaySnapshot, signal?: AbortSignal, onFailure?: (path: RelPath, error: unknown) => void): Promise<Map<RelPath, RemoteFile>> {
    const fresh = new Map<RelPath, CachedRecord | undefined>();
    const toFetch: Array<[RelPath, Entry]> = [];
    for (const [path, files] of snapshot.resources) {
      const entry = files.placeholder;
      if (entry === undefined) continue;
      const cached = this.cache.get(path);
      const own = this.written.get(entry);
      if (own !== undefined) fresh.set(path, cachedRecord(entry.mtimeMs ?? -1, entry.size, own, undefined));
      else if (cached !== undefined && entry.mtimeMs !== undefined && cached.mtimeMs === entry.mtimeMs && cached.size === entry.size) fresh.set(path, cached);
      else toFetch.push([path, entry]);
    }
    const fetched: Array<[RelPath, MetadataRecord]> = [];
    const failed = new Set<RelPath>();
    await runPool(toFetch, this.concurrency, async ([path, entry]) => {
      let read: PlaceholderRead;
      try {
        read = await this.readPlaceholder(this.spelled(path), signal);
      } catch (error) {
        if (onFailure === undefined || signal?.aborted || hasCode(error, 'Aborted') || failsWholeRelay(error)) throw error;
        failed.add(path);
        onFailure(path, error);
        return;
      }
      if (read.text === undefined && read.problem === undefined) {
        fresh.set(path, undefined); // vanished since the listing
        return;
      }
      if (read.record !== undefined) fetched.push([path, read.record]);
      const value = cachedRecord(entry.mtimeMs ?? -1, entry.size, read.record, read.problem);
      fresh.set(path, value);
      // why: a placeholder written again within the mtime precision with the same size would look unchanged: such a recent one is not kept across restarts.
      if (entry.mtimeMs !== undefined) this.cache.set(path, value, !this.recentlyWritten(entry.mtimeMs));
    });
    await this.clockWarnings.checkRecords(fetched, signal);
    for (const path of [...this.cache.keys()]) if (snapshot.resources.get(path as RelPath)?.placeholder === undefined) this.cache.delete(path);
    const result = new Map<RelPath, RemoteFile>();
    for (const [path, files] of snapshot.resources) {
      if (failed.has(path)) continue;
      const described = fresh.get(path);
      result.set(path, remoteFile(path, files, described?.record, described?.problem));
    }
    return result;
  }

  /**
   * The snapshot with this client's own changes since the crawl that took it applied (the entries
   * its puts returned, the files it deleted), so that a round lists the relay once; undefined when
   * the outcome of one of those changes is unknown (a reply was lost): crawl again then. Changes of
   * other clients since the crawl are not in it, as they would not be in a listing a moment old.
   */
  patched(snapshot: RelaySnapshot): RelaySnapshot | undefined {
    const changes = this.changes.known;
    if (changes === undefined) return undefined;
    if (changes.size === 0) return snapshot;
    const resources = new Map(snapshot.resources);
    let spelled = false;
    for (const [path, entry] of changes) {
      const name = classifyRelayName(path);
      if (name.resource === undefined || (name.kind !== 'data' && name.kind !== 'lock' && name.kind !== 'placeholder')) continue;
      const key = keyOf(name.resource);
      const slot: { data?: Entry; lock?: Entry; placeholder?: Entry } = { ...resources.get(key) };
      if (entry === null) delete slot[name.kind];
      else slot[name.kind] = entry;
      if (slot.data === undefined && slot.lock === undefined && slot.placeholder === undefined) resources.delete(key);
      else resources.set(key, slot);
      if (entry !== null && name.resource !== key && !this.spellings.has(key)) {
        this.spellings.set(key, name.resource);
        spelled = true;
      }
    }
    if (spelled) this.folderSpellings = folderSpellings(this.spellings);
    return { takenAtMs: snapshot.takenAtMs, resources };
  }

  /**
   * Whether a relay mtime is within a few seconds of the relay's clock now (the local clock while
   * the relay's is not known): a write after the listing could still carry the same mtime.
   */
  private recentlyWritten(mtimeMs: number): boolean {
    const margin = RECENT_WRITE_MS + (this.backend.features.mtimePrecisionMs ?? 0);
    const relay = this.backend.clock.now();
    if (relay !== undefined) return mtimeMs + margin > relay.earliest;
    return Math.abs(this.options.now() - mtimeMs) < margin;
  }

  /** Sum of the sizes of the data files in a snapshot, in bytes (for the disk quota). */
  usedBytes(snapshot: RelaySnapshot): number {
    let total = 0;
    for (const files of snapshot.resources.values()) if (files.data !== undefined && files.data.size > 0) total += files.data.size;
    return total;
  }

  /** Whether the data must stay on the relay after this client pulls a version with `record` (puller count rule). */
  keepAfterPull(record: MetadataRecord | undefined): boolean {
    return shouldKeep(record, this.options.pullerCount, this.client);
  }

  /**
   * Uploads one resource in 0.7's order: check the lock (foreign: 'locked', nothing written), lock
   * `mode: w`, placeholder, data, unlock. With `replacesData`, the earlier data is deleted under the
   * lock before the new placeholder is written, so that no moment pairs the old data with the new
   * record (a reader racing the lock, such as 0.7's non-atomic one, sees no data rather than the
   * wrong data). `confirm` runs once the data is stored, before the unlock; if it throws, the upload
   * is rolled back like any failure. On an error after the lock, the data and placeholder (once the
   * placeholder was written) and the lock are removed, as `repair` does for an interrupted upload,
   * and the error is rethrown; a failed unlock leaves the lock for `repair`.
   */
  async push(path: RelayPath, record: MetadataRecord, body: () => Promise<Readable | Uint8Array>, options: PushOptions = {}): Promise<'pushed' | 'locked'> {
    path = this.spelled(assertResource(path));
    const { signal } = options;
    const text = formatMetadata(record);
    if ((await this.takeLock(path, 'w', signal, false)) === 'locked') return 'locked';
    let placeholderWritten = false;
    try {
      if (options.replacesData) await deleteIfExists(this.backend, path, signal);
      await this.writePlaceholder(path, text, signal, false);
      placeholderWritten = true;
      const content = await body();
      await this.backend.put(path, content, { signal, ...(options.size === undefined ? {} : { size: options.size }) });
      await options.confirm?.();
    } catch (error) {
      // why: a failed data put may still have landed (the reply was lost: the server stored the
      // file, the connection dropped before it said so), or the content sent may not be the version
      // the placeholder describes (the file changed while it was read), so the data on the relay
      // cannot be trusted to match our placeholder. Data left without a placeholder would be
      // pulled unverified and with a made-up mtime, and could beat a later version. So the
      // resource is rolled back as `repair` rolls back an interrupted upload: data and
      // placeholder go, and the pusher sends again (relay-format.md P3.2, P3.4).
      if (placeholderWritten) {
        await this.quietly(`remove data of '${path}'`, () => deleteIfExists(this.backend, path));
        await this.quietly(`remove placeholder of '${path}'`, () => deleteIfExists(this.backend, placeholderPathOf(path)));
        this.cache.delete(keyOf(path));
      }
      await this.quietly(`release lock of '${path}'`, () => deleteIfExists(this.backend, lockPathOf(path)));
      throw error;
    }
    // why: a retried delete whose first attempt reached the server answers NotFound; the lock is gone either way.
    await deleteIfExists(this.backend, lockPathOf(path), signal);
    return 'pushed';
  }

  /**
   * Writes the placeholder of a resource without sending its data (`escalectl fix`, relay-format.md
   * P7.1). With `lock`: check the lock (foreign: 'locked', nothing written), lock `mode: w`, and
   * under the lock leave the resource alone when its data is on the relay ('has-data': the record
   * there describes that data, which may be newer than ours) or, with `keepExisting`, when it has
   * a placeholder ('kept'); else write the placeholder, replacing any; unlock. Without `lock` (fast
   * mode) the placeholder is written at once: the caller has checked the listing. A lock left by a
   * crash has `mode: w`, so repair treats it as an interrupted upload and the pusher sends again.
   */
  async restorePlaceholder(path: RelayPath, record: MetadataRecord, options: { lock: boolean; keepExisting: boolean }, signal?: AbortSignal): Promise<'written' | 'kept' | 'has-data' | 'locked'> {
    path = this.spelled(assertResource(path));
    const text = formatMetadata(record);
    if (!options.lock) {
      await this.writePlaceholder(path, text, signal);
      return 'written';
    }
    if ((await this.takeLock(path, 'w', signal)) === 'locked') return 'locked';
    try {
      if (await exists(this.backend, path, signal)) return 'has-data';
      if (options.keepExisting && (await exists(this.backend, placeholderPathOf(path), signal))) return 'kept';
      await this.writePlaceholder(path, text, signal);
      return 'written';
    } finally {
      await deleteIfExists(this.backend, lockPathOf(path), signal);
    }
  }

  /**
   * Starts a download: lock `mode: r` (foreign: 'locked'), read the placeholder again under the
   * lock and open the data (missing: unlock, 'gone'). The data stream is handed out by `open`.
   */
  async beginPull(path: RelayPath, signal?: AbortSignal): Promise<PullHandle | 'locked' | 'gone'> {
    path = this.spelled(assertResource(path));
    if ((await this.takeLock(path, 'r', signal)) === 'locked') return 'locked';
    let read: PlaceholderRead;
    let opened: Readable | undefined;
    try {
      read = await this.readPlaceholder(path, signal);
      opened = await this.backend.get(path, { signal });
    } catch (error) {
      if (!hasCode(error, 'NotFound')) {
        await this.quietly(`release lock of '${path}'`, () => deleteIfExists(this.backend, lockPathOf(path)));
        throw error;
      }
      await deleteIfExists(this.backend, lockPathOf(path), signal);
      return 'gone';
    }
    if (read.problem !== undefined) this.options.logger.warning(`corrupt meta information for file '${path}': ${read.problem}`);
    let state: 'open' | 'done' = 'open';
    const finish = (): void => {
      if (state === 'done') throw new EscaleError('Internal', `pull of '${path}' was already committed or aborted`, { path });
      state = 'done';
      // why: a stream opened under the lock and never handed out must not hold its connection.
      opened?.destroy();
      opened = undefined;
    };
    return {
      ...(read.record === undefined ? {} : { record: read.record }),
      ...(path === keyOf(path) ? {} : { spelling: path }),
      ...(read.problem === undefined ? {} : { recordProblem: read.problem }),
      open: async (openSignal?: AbortSignal) => {
        const stream = opened;
        opened = undefined;
        return stream ?? this.backend.get(path, { signal: openSignal });
      },
      commit: async ({ keep }, commitSignal?: AbortSignal) => {
        finish();
        await this.finishRead(path, keep, read, commitSignal);
      },
      abort: async (abortSignal?: AbortSignal) => {
        finish();
        await deleteIfExists(this.backend, lockPathOf(path), abortSignal);
      },
    };
  }

  /**
   * Under a `mode: r` lock taken here (a foreign lock: 'locked'), reads the placeholder and
   * finishes as a pull would (`finishRead`) when `accept` agrees with the record read; a version
   * `accept` refuses releases the lock ('changed'); data no longer there releases it ('gone').
   */
  private async readThenFinish(path: RelayPath, accept: (record: MetadataRecord | undefined) => boolean, signal?: AbortSignal): Promise<'done' | 'changed' | 'locked' | 'gone'> {
    if ((await this.takeLock(path, 'r', signal)) === 'locked') return 'locked';
    let outcome: 'done' | 'changed' | 'gone';
    try {
      const read = await this.readPlaceholder(path, signal);
      if (!accept(read.record)) outcome = 'changed';
      else {
        const keep = this.keepAfterPull(read.record);
        // why: the data's presence decides 'gone'; removing it answers that too, so a stat is only needed when it stays.
        const there = keep ? await exists(this.backend, path, signal) : await deleted(this.backend, path, signal);
        if (there) await this.recordPuller(path, read, signal);
        outcome = there ? 'done' : 'gone';
      }
    } catch (error) {
      await this.quietly(`release lock of '${path}'`, () => deleteIfExists(this.backend, lockPathOf(path)));
      throw error;
    }
    await deleteIfExists(this.backend, lockPathOf(path), signal);
    return outcome;
  }

  /**
   * Takes away the relay copy of content this client already has: lock `mode: r` (foreign:
   * 'locked'), delete the data unless other pullers still need it, record this client as a
   * puller, unlock. 'gone' when the data is no longer there.
   */
  async consume(path: RelayPath, signal?: AbortSignal): Promise<'consumed' | 'locked' | 'gone'> {
    const outcome = await this.readThenFinish(this.spelled(assertResource(path)), () => true, signal);
    return outcome === 'done' ? 'consumed' : outcome === 'changed' ? 'gone' : outcome;
  }

  /**
   * Takes the lock of a resource for a maintenance job (backup, restore, migrate) without waiting:
   * 'busy' when another client holds it (or its record cannot be read); a lock of this client's own
   * name is taken over. The lock is read back after writing: 'busy' when another client's write won
   * the race (its lock is left as it is). The caller releases it with `unlock`.
   */
  async tryLock(path: RelayPath, mode: 'r' | 'w', signal?: AbortSignal): Promise<'locked' | 'busy'> {
    path = this.spelled(assertResource(path));
    if ((await this.lockState(path, signal)) === 'foreign') return 'busy';
    await this.writeLock(path, mode, signal);
    // why: check-then-write is not atomic; reading back catches the plain case of a lost race.
    return (await this.lockState(path, signal)) === 'own' ? 'locked' : 'busy';
  }

  /** Deletes the lock of a resource taken with `tryLock` (a missing lock is fine). */
  async unlock(path: RelayPath, signal?: AbortSignal): Promise<void> {
    await deleteIfExists(this.backend, lockPathOf(this.spelled(assertResource(path))), signal);
  }

  /**
   * Records this client as a puller of a version it already holds, without downloading it, with the
   * locking and puller-count rules of a pull: lock `mode: r` (foreign: 'locked'), check that the
   * placeholder read under the lock still has `checksum` (another version: unlock, 'changed'), delete
   * the data when this makes `puller count` distinct pullers, append this client's name, unlock.
   * 'gone' when the data is no longer there.
   */
  async registerPuller(path: RelayPath, checksum: string, signal?: AbortSignal): Promise<'registered' | 'changed' | 'locked' | 'gone'> {
    const wanted = checksum.toLowerCase();
    // why: a new version was pushed since the plan; this client does not hold it and must not count for it.
    const outcome = await this.readThenFinish(this.spelled(assertResource(path)), (record) => record?.checksum === wanted, signal);
    return outcome === 'done' ? 'registered' : outcome;
  }

  /**
   * Asks the pusher to send the version `expected` of a resource again, through the record
   * protocol's missing-file path (relay-format.md P3.11, P3.2): lock `mode: r` (foreign:
   * 'locked'); under the lock, check that the data is still gone ('has-data') and that the
   * placeholder still holds that version, with fewer than `puller count` distinct pullers and this
   * client not among them ('changed', 'gone'); then delete the placeholder; unlock.
   */
  async requestResend(path: RelPath, expected: MetadataRecord, signal?: AbortSignal): Promise<ResendOutcome> {
    assertResource(path);
    if ((await this.takeLock(path, 'r', signal)) === 'locked') return 'locked';
    let outcome: ResendOutcome;
    try {
      outcome = await this.resendUnderLock(path, expected, signal);
    } catch (error) {
      // why: a lock left here is our own `mode: r`; repair would find the data gone and ask for the re-send itself.
      await this.quietly(`release lock of '${path}'`, () => deleteIfExists(this.backend, lockPathOf(path)));
      throw error;
    }
    await deleteIfExists(this.backend, lockPathOf(path), signal);
    return outcome;
  }

  private async resendUnderLock(path: RelPath, expected: MetadataRecord, signal?: AbortSignal): Promise<Exclude<ResendOutcome, 'locked'>> {
    if (await exists(this.backend, path, signal)) return 'has-data';
    const read = await this.readPlaceholder(path, signal);
    if (read.text === undefined && read.problem === undefined) return 'gone';
    const record = read.record;
    if (record === undefined || !sameVersion(record, expected) || record.pullers.includes(this.client)) return 'changed';
    if (new Set(record.pullers.filter((name) => name !== '')).size >= (this.options.pullerCount ?? 1)) return 'changed';
    await deleteIfExists(this.backend, placeholderPathOf(path), signal);
    this.cache.delete(path);
    return 'requested';
  }

  /**
   * Repairs interrupted transfers (relay-format.md P3.9, sync-rules.md R8) for this client's
   * own locks, and for locks without owner or that cannot be read once they expired (`lockExpired`:
   * older than the lock timeout by the relay's clock, or unchanged that long), with sync-rules.md B-1 fixed: an
   * interrupted download never deletes the local file; it is finished when the local checksum equals
   * the placeholder's, otherwise the relay copy is left for a new download. Locks of other clients
   * are left alone. With scope 'expired' own locks are left to the start-up repair too, and a lock of
   * another client is read once per listing state: the engine runs it every round, so that locks
   * without owner expire in a running client too. The snapshot is stale afterwards: crawl again.
   */
  async repair(snapshot: RelaySnapshot, local: RepairLocal, signal?: AbortSignal, scope: RepairScope = 'all'): Promise<RepairReport> {
    const repaired: RepairedTransfer[] = [];
    const untouched: RelPath[] = [];
    const failed: { path: RelPath; error: unknown }[] = [];
    for (const [key, files] of snapshot.resources) {
      if (files.lock === undefined) continue;
      // why: the per-round pass reads a lock of another client (never broken) once per listing state.
      const listed = `${files.lock.size}:${files.lock.mtimeMs ?? '?'}`;
      if (scope === 'expired' && this.otherLocks.get(key) === listed) continue;
      throwIfAborted(signal);
      const path = this.spelled(key);
      const read = await this.readLock(path, signal);
      if (read === undefined) continue;
      let lock: LockRecord = {};
      let own = false;
      let found: 'unreadable' | undefined;
      if ('problem' in read) {
        // why: an unreadable lock is treated like one without owner (relay-format.md F-12: never as free): it blocks
        // its file until it expires (`lockExpired`), then it is removed like one.
        this.noteUnreadableLock(key, read.problem);
        if (!(await this.lockExpired(path, files.lock, 'unreadable lock', read.bytes, signal))) {
          untouched.push(key);
          continue;
        }
        this.unreadableLocks.clear(key);
        found = 'unreadable';
      } else {
        lock = read.record;
        own = lock.owner === this.client;
        if (scope === 'expired' ? lock.owner !== undefined : !own && lock.owner !== undefined) {
          this.otherLocks.set(key, listed);
          untouched.push(key);
          continue;
        }
        if (!own && !(await this.lockExpired(path, files.lock, 'owner-less lock', read.bytes, signal))) {
          untouched.push(key);
          continue;
        }
        this.options.logger.info(`fixing uncomplete transfer: '${path}'`);
      }
      try {
        repaired.push(await this.repairOne(path, lock, own, local, signal, found));
      } catch (error) {
        // why: one resource that cannot be repaired must not stop the repair of the others, nor the round.
        if (signal?.aborted || hasCode(error, 'Aborted') || failsWholeRelay(error)) throw error;
        failed.push({ path: key, error });
      }
    }
    // why: judging a lock's age may have taught the relay's clock (a probe): say at once when ours is off.
    this.clockWarnings.checkOwnClock();
    return { repaired, untouched, failed };
  }

  private async repairOne(path: RelayPath, lock: LockRecord, own: boolean, local: RepairLocal, signal?: AbortSignal, found?: 'unreadable'): Promise<RepairedTransfer> {
    const kind: RepairedTransfer['lock'] = found ?? (lock.mode === undefined ? 'no-mode' : !own ? 'unclaimed' : lock.mode === 'w' ? 'upload' : 'download');
    if (lock.mode !== 'r') {
      // Interrupted upload (or a lock without mode): drop data and placeholder, the pusher sends again.
      await deleteIfExists(this.backend, path, signal);
      await deleteIfExists(this.backend, placeholderPathOf(path), signal);
      this.cache.delete(keyOf(path));
      await deleteIfExists(this.backend, lockPathOf(path), signal);
      return { path: keyOf(path), lock: kind, outcome: 'resend-requested' };
    }
    const read = await this.readPlaceholder(path, signal);
    if (own && read.record?.checksum !== undefined) {
      let checksum: string | undefined;
      try {
        checksum = await local.checksum(keyOf(path));
      } catch (error) {
        this.options.logger.warning(`cannot check local file '${path}': ${(error as Error).message}`);
      }
      if (checksum !== undefined && checksum.toLowerCase() === read.record.checksum) {
        await this.finishRead(path, this.keepAfterPull(read.record), read, signal);
        return { path: keyOf(path), lock: kind, outcome: 'download-completed' };
      }
    }
    const dataThere = await exists(this.backend, path, signal);
    if (!dataThere && read.text !== undefined) {
      // why: the relay copy is gone and we do not hold it: a missing placeholder asks for a re-send.
      await deleteIfExists(this.backend, placeholderPathOf(path), signal);
      this.cache.delete(keyOf(path));
    }
    await deleteIfExists(this.backend, lockPathOf(path), signal);
    return { path: keyOf(path), lock: kind, outcome: dataThere ? 'download-left' : read.text !== undefined ? 'resend-requested' : 'lock-released' };
  }

  /**
   * Deletes the data unless `keep`, records this client as puller in the placeholder `read` under
   * the lock, unlocks; the lock stays if a step fails.
   */
  private async finishRead(path: RelayPath, keep: boolean, read: PlaceholderRead, signal?: AbortSignal): Promise<void> {
    if (!keep) await deleteIfExists(this.backend, path, signal);
    await this.recordPuller(path, read, signal);
    await deleteIfExists(this.backend, lockPathOf(path), signal);
  }

  /** Appends this client to the pullers of the placeholder `read` under our lock, and writes it back. */
  private async recordPuller(path: RelayPath, read: PlaceholderRead, signal?: AbortSignal): Promise<void> {
    const text = read.text;
    if (text === undefined) {
      // why: relay-format.md F-7: 0.7 tries to invent a placeholder here, fails, and leaves its lock behind.
      this.options.logger.warning(`missing meta information for file: '${path}'`);
      return;
    }
    let updated: string;
    try {
      updated = appendPuller(text, this.client, this.parseOptions());
    } catch (error) {
      if (!hasCode(error, 'CorruptRecord')) throw error;
      this.options.logger.warning(`cannot record '${this.client}' as puller of '${path}': ${error.message}`);
      return;
    }
    if (updated === text) return;
    await this.writePlaceholder(path, updated, signal, false);
  }

  /**
   * Puts the placeholder of `path` with `text`, and caches the record as the listing will show it
   * (the entry the put returned), so that the next `describe` does not read back what this client wrote.
   *
   * `durable: false` (crash argument, for the placeholder of an upload and the puller record of a
   * pull): the placeholder need not survive a crash of the relay's machine. Its rename is ordered
   * after the lock's and before the data's by the file system's journal, so a crash leaves it
   * under the lock (rolled back by a repair), or, renamed but emptied, as junk: junk is never
   * downloaded (D3), and every client holding the file sends it again (U4). It is never the old
   * record beside new data: the old data is removed before it is written. A lost puller record
   * is written again by the next round (D4-register).
   */
  private async writePlaceholder(path: RelayPath, text: string, signal?: AbortSignal, durable = true): Promise<void> {
    const bytes = Buffer.from(text, 'utf8');
    const key = keyOf(path);
    this.cache.delete(key);
    const entry = await this.backend.put(placeholderPathOf(path), bytes, { signal, durable });
    if (entry.size !== bytes.length) return;
    let record: MetadataRecord;
    try {
      record = parseMetadata(bytes, this.parseOptions());
    } catch {
      // why: what cannot be parsed is read back and reported by `describe`, as any placeholder.
      return;
    }
    this.written.set(entry, record);
    if (entry.mtimeMs !== undefined) this.cache.set(key, { mtimeMs: entry.mtimeMs, size: entry.size, record }, !this.recentlyWritten(entry.mtimeMs));
  }

  private async readPlaceholder(path: RelayPath, signal?: AbortSignal): Promise<PlaceholderRead> {
    let bytes: Buffer;
    try {
      bytes = await readSmall(this.backend, placeholderPathOf(path), this.maxRecordBytes, { signal });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return {};
      if (hasCode(error, 'CorruptRecord')) return { problem: error.message };
      throw error;
    }
    let record: MetadataRecord;
    try {
      record = parseMetadata(bytes, this.parseOptions());
    } catch (error) {
      if (!hasCode(error, 'CorruptRecord')) throw error;
      return { text: bytes.toString('utf8'), problem: error.message };
    }
    // why: a record with neither timestamp nor checksum (an empty file, a bare header) verifies and
    // dates nothing; no 0.7 writer makes one (it refuses to), so it is junk, not a record.
    if (record.timestamp === undefined && record.checksum === undefined) return { text: bytes.toString('utf8'), problem: 'the placeholder holds neither a timestamp nor a checksum' };
    return { text: bytes.toString('utf8'), record };
  }

  private parseOptions(): { maxBytes: number; legacyTimestampFormat?: string } {
    return {
      maxBytes: this.maxRecordBytes,
      ...(this.options.legacyTimestampFormat === undefined ? {} : { legacyTimestampFormat: this.options.legacyTimestampFormat }),
    };
  }

  /** 'free', 'own' or 'foreign' (another client's lock, one without owner, or one that cannot be read: see `repair`). */
  private async lockState(path: RelayPath, signal?: AbortSignal): Promise<'free' | 'own' | 'foreign'> {
    const read = await this.readLock(path, signal);
    if (read === undefined) return 'free';
    if ('problem' in read) {
      this.noteUnreadableLock(keyOf(path), read.problem);
      return 'foreign';
    }
    return read.record.owner === this.client ? 'own' : 'foreign';
  }

  /**
   * The lock record of a resource with its bytes; undefined when there is none; `problem` when it
   * cannot be read (corrupt, too large, not valid UTF-8, an unknown mode, or refused by the relay),
   * with the bytes when they could be read.
   */
  private async readLock(path: RelayPath, signal?: AbortSignal): Promise<{ record: LockRecord; bytes: Buffer } | { problem: string; bytes?: Buffer } | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readSmall(this.backend, lockPathOf(path), this.maxRecordBytes, { signal });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return undefined;
      if (!hasCode(error, 'CorruptRecord', 'PermissionDenied')) throw error;
      return { problem: error.message };
    }
    try {
      return { record: parseLock(bytes), bytes };
    } catch (error) {
      if (!hasCode(error, 'CorruptRecord')) throw error;
      return { problem: error.message, bytes };
    }
  }

  /** Warns, once per lock until it goes away, that a lock cannot be read and how it will go. */
  private noteUnreadableLock(key: RelPath, problem: string): void {
    if (!this.unreadableLocks.isNew(key, 'unreadable')) return;
    const timeout = this.options.lockTimeoutSec;
    const when = timeout === null ? 'never removed (lock timeout is off)' : `removed once older than the lock timeout (${timeout} s) by the relay's clock, or unchanged that long`;
    this.options.logger.warning(`the lock of '${key}' cannot be read (${problem}); it is treated as a lock without owner: the file waits, and the lock is ${when}`);
  }

  /**
   * Writes our lock record, flushed to stable storage unless `durable` is false (see `takeLock`).
   */
  private async writeLock(path: RelayPath, mode: 'r' | 'w', signal?: AbortSignal, options: { exclusive?: boolean; durable?: boolean } = {}): Promise<void> {
    await this.backend.put(lockPathOf(path), Buffer.from(formatLock({ owner: this.client, mode }), 'utf8'), { signal, ...options });
    // why: the first write of a run teaches the relay's clock (RelayClock.timed); say at once when ours is off.
    this.clockWarnings.checkOwnClock();
  }

  /**
   * Takes the lock of a resource: an exclusive put of our lock record (one request, no read first:
   * atomic between escale clients where the backend can do it). When a lock is there already it is
   * read: another client's, one without owner or one that cannot be read means 'locked' (see
   * `repair`); one of ours is taken: the same record is our own put whose reply was lost and that
   * was retried, another mode was left by an earlier run and is overwritten (as before).
   *
   * `durable: false` (crash argument, for the lock of an upload only): the lock need not survive a
   * crash of the relay's machine. Lost or emptied, it reads as a lock without owner, whose repair
   * rolls back what it guarded (data and placeholder), which the pusher holds and sends again. Any
   * other lock must survive: over data this client does not hold (a pull, a restore), that repair
   * would delete a relay copy, perhaps the last one.
   */
  private async takeLock(path: RelayPath, mode: 'r' | 'w', signal?: AbortSignal, durable = true): Promise<'taken' | 'locked'> {
    const write = (exclusive: boolean): Promise<void> => this.writeLock(path, mode, signal, { exclusive, durable });
    try {
      await write(true);
      return 'taken';
    } catch (error) {
      if (!hasCode(error, 'AlreadyExists')) throw error;
    }
    const read = await this.readLock(path, signal);
    if (read === undefined) {
      // why: released between our put and our read: one more exclusive try, and no waiting.
      try {
        await write(true);
        return 'taken';
      } catch (error) {
        if (hasCode(error, 'AlreadyExists')) return 'locked';
        throw error;
      }
    }
    if ('problem' in read) {
      this.noteUnreadableLock(keyOf(path), read.problem);
      return 'locked';
    }
    if (read.record.owner !== this.client) return 'locked';
    if (read.record.mode !== mode) await write(false);
    return 'taken';
  }

  /**
   * Whether the lock of `path` that no client can claim (`what`: an owner-less lock; as listed,
   * with its bytes as read when they could be) has expired by `judgeExpiry`; breaking it is logged
   * with the evidence, keeping it at debug level.
   */
  private async lockExpired(path: RelayPath, listed: Entry, what: string, bytes: Buffer | undefined, signal?: AbortSignal): Promise<boolean> {
    const timeout = this.options.lockTimeoutSec;
    const { logger } = this.options;
    const verdict = await judgeExpiry(this.backend, lockPathOf(path), listed, timeout, {
      logger,
      ...(bytes === undefined ? {} : { contentKey: bytes.toString('base64') }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (!verdict.stale) {
      logger.debug(`${what} of '${path}' left in place: ${expiryEvidence(verdict, timeout)}`);
      return false;
    }
    logger.warning(`breaking the ${what} of '${path}': ${expiryEvidence(verdict, timeout)}`);
    return true;
  }

  /** Runs a best-effort clean-up step without a signal; failures are logged, never thrown. */
  private async quietly(what: string, step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      this.options.logger.warning(`could not ${what}: ${(error as Error).message}`);
    }
  }
}

/** The NFC name under which a relay name is matched. */
function keyOf(path: RelayPath): RelPath {
  return path.normalize('NFC') as RelPath;
}

/** Deletes a file if it is there. */
async function deleteIfExists(backend: Backend, path: RelayPath, signal?: AbortSignal): Promise<void> {
  await deleted(backend, path, signal);
}

/** Deletes a file; false when it was not there. */
async function deleted(backend: Backend, path: RelayPath, signal?: AbortSignal): Promise<boolean> {
  try {
    await backend.delete(path, { signal });
    return true;
  } catch (error) {
    if (hasCode(error, 'NotFound')) return false;
    throw error;
  }
}

async function exists(backend: Backend, path: RelayPath, signal?: AbortSignal): Promise<boolean> {
  try {
    await backend.stat(path, { signal });
    return true;
  } catch (error) {
    if (hasCode(error, 'NotFound')) return false;
    throw error;
  }
}

/**
 * What the relay holds for one resource, as one compact object. why: one per relay file, kept from
 * round to round; V8 gives a literal room for exactly its own fields, so the usual shapes are
 * literals (a spread of optional fields made a dictionary of ~400 bytes, a field added later a
 * property array of ~64).
 */
function remoteFile(path: RelPath, files: ResourceFiles, record: MetadataRecord | undefined, recordProblem: string | undefined): RemoteFile {
  const hasData = files.data !== undefined;
  const locked = files.lock !== undefined;
  const size = files.data !== undefined && files.data.size >= 0 ? files.data.size : undefined;
  if (recordProblem === undefined && record !== undefined) return size === undefined ? { path, hasData, locked, record } : { path, hasData, locked, record, size };
  const remote: { -readonly [K in keyof RemoteFile]: RemoteFile[K] } = { path, hasData, locked };
  if (record !== undefined) remote.record = record;
  if (recordProblem !== undefined) remote.recordProblem = recordProblem;
  if (size !== undefined) remote.size = size;
  return remote;
}

async function runPool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next] as T;
      next += 1;
      try {
        await work(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
