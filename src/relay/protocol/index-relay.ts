import type { Readable } from 'node:stream';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { hasCode, throwIfAborted, type EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { RefusedNames } from '../../core/refused-names.js';
import { ReportOnce } from '../../core/report-once.js';
import { ROOT, type RelPath } from '../../core/relpath.js';
import type { LockRecord, MetadataRecord } from './records.js';
import { readSmall, type Backend, type Entry } from '../backend.js';
import { bzip2CompressBytes, bzip2DecompressBytes } from '../../system/bzip2.js';
import { CHANGE_MARKER, ChangeMarker } from './change-marker.js';
import { formatLock, MAX_LOCK_BYTES, parseLock } from './lock.js';
import {
  DEFAULT_MAX_PERSISTENT_INDEX_SIZE,
  DEFAULT_MAX_UPDATE_INDEX_SIZE,
  formatPersistentIndex,
  formatUpdateIndex,
  parsePersistentIndexContent,
  parseUpdateIndex,
  type IndexExtras,
  type SkippedIndexEntry,
  type UpdateIndex,
} from './page-index.js';
import { pageLockName, parsePageFileName, persistentIndexName, updateDataName, updateIndexName } from './pages.js';
import { ClockWarnings, expiryEvidence, judgeExpiry } from './relay-time.js';

/** The relay files of one pending update `.<P>.<T>.index` / `.<P>.<T>.data` (either may be missing). */
export interface UpdateFiles {
  readonly index?: Entry;
  readonly data?: Entry;
}

/** The index-protocol files of one page, as listed (relay-format.md P4.2). */
export interface PageFiles {
  readonly index?: Entry;
  readonly lock?: Entry;
  /** Updates by `T`; more than one is the "multiple update indices" state (relay-format.md P4.2). */
  readonly updates: ReadonlyMap<number, UpdateFiles>;
}

/** One listing of the relay root, grouped by page. */
export interface IndexSnapshot {
  readonly pages: ReadonlyMap<string, PageFiles>;
}

/** A persistent index as read, with the listing stamp it was read at (and the extras to write back). */
export interface LoadedIndex extends IndexExtras {
  readonly entries: Map<RelPath, MetadataRecord>;
  /** `mtime:size` of `.<P>.index` when read ('' for a missing index): a change means a new version. */
  readonly stamp: string;
}

/** Settings of an index relay. */
export interface IndexRelayOptions {
  /** This client's name (lock owner, pusher, puller). */
  readonly client: string;
  /**
   * `lock timeout` in seconds: a foreign lock left this long (by the relay's clock, or unchanged
   * while watched: `judgeExpiry`) is stale; null: never.
   */
  readonly lockTimeoutSec: number | null;
  /** This machine's wall clock in milliseconds; never used to judge relay files' ages. */
  readonly now: () => number;
  readonly logger: Logger;
  /** Largest decompressed persistent index accepted (default 256 MiB). */
  readonly maxIndexBytes?: number;
  /** Largest update index accepted (default 64 MiB). */
  readonly maxUpdateIndexBytes?: number;
  /** Waits between lock polls (injected for tests). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Where refused entry and member names are reported once (shared with the client's local side); default: its own. */
  readonly refusedNames?: RefusedNames;
}

/** How to acquire a page lock. */
export interface LockWait {
  /** Poll interval while a foreign lock is present (0.7: 60 s). */
  readonly pollMs: number;
  /** Longest total wait before giving up ('busy'); 0 tries once. Never infinite. */
  readonly maxWaitMs: number;
  readonly signal?: AbortSignal;
}

/** A held page lock. */
export interface PageLock {
  readonly page: string;
  readonly mode: 'r' | 'w';
  /** Deletes the lock file (idempotent; a failure is logged and left for repair). */
  release(): Promise<void>;
}

/** What `repair` did on one page. */
export interface RepairedPage {
  readonly page: string;
  /** Why the lock was removed ('orphan': no lock; only orphan update data was removed). */
  readonly lock: 'own' | 'unclaimed' | 'stale' | 'orphan';
  /** Update files deleted (leftovers of an interrupted push). */
  readonly removed: RelPath[];
}

/** One `.<P>.<T>.*` name and its page and T. */
function updateNames(page: string, timestamp: number, files: UpdateFiles): RelPath[] {
  const out: RelPath[] = [];
  if (files.index !== undefined) out.push(updateIndexName(page, timestamp));
  if (files.data !== undefined) out.push(updateDataName(page, timestamp));
  return out;
}

/** The listing stamp of an entry: `mtime:size` ('' when absent). */
export function stampOf(entry: Entry | undefined): string {
  return entry === undefined ? '' : `${entry.mtimeMs ?? '?'}:${entry.size}`;
}

/**
 * The index protocol on top of a Backend (relay-format.md P4): listing by page, persistent and
 * update indices, update data, page locks with a bounded blocking wait and a stale-lock rule,
 * update deletion and start-up repair. Holds no page cache: the engine decides what to keep.
 */
export class IndexRelay {
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly clockWarnings: ClockWarnings;
  private readonly refused: RefusedNames;
  /** why: a topdir page named after a folder another client spells otherwise than in NFC is addressed in that spelling. */
  private pageSpellings = new Map<string, string>();
  /** why: a page lock that cannot be read is reported when first seen, not at every poll (its removal is logged when broken). */
  private readonly unreadableLocks = new ReportOnce();
  /** why: a relay entry the backend cannot describe is reported once per problem, not at every listing. */
  private readonly unreadableEntries = new ReportOnce();
  /** The change marker: polled instead of listing while idle, touched after a transaction that changed the relay. */
  private readonly marker: ChangeMarker;

  constructor(
    private readonly backend: Backend,
    private readonly options: IndexRelayOptions,
  ) {
    this.refused = options.refusedNames ?? new RefusedNames(options.logger);
    this.sleep = options.sleep ?? (async (ms, signal) => void (await sleepFor(ms, undefined, signal ? { signal } : {}).catch(() => undefined)));
    this.clockWarnings = new ClockWarnings(backend, options.now, options.logger, options.client);
    this.marker = new ChangeMarker(backend, { client: options.client, logger: options.logger });
  }

  /** Whether the relay may have changed since the last listing (one small request: see `ChangeMarker`). */
  async changedSince(signal?: AbortSignal): Promise<boolean> {
    return this.marker.changed(signal);
  }

  /** Touches the change marker, so that idle clients list the relay again (a failure is a warning once). */
  async markChanged(signal?: AbortSignal): Promise<void> {
    await this.marker.touch(signal);
  }

  /** The client name this relay writes into locks. */
  get client(): string {
    return this.options.client;
  }

  /**
   * Reports a name of this relay that escale does not synchronise (an index entry or an archive
   * member), once per name and reason: a warning, never a failure.
   */
  refuseName(name: string, problem: string): void {
    this.refused.refuse('relay', name, problem);
  }

  /** The handler of skipped index entries: refused names once, broken records as a warning naming the file. */
  private skipped(where: string): (skipped: SkippedIndexEntry) => void {
    return ({ name, error, problem }) => {
      if (problem !== undefined) this.refuseName(name, problem);
      else this.options.logger.warning(`refused entry ${JSON.stringify(name)} of ${where}: ${error.message}`);
    };
  }

  /** Lists the relay root and groups the index-protocol files by page (other names are ignored). */
  async snapshot(signal?: AbortSignal): Promise<IndexSnapshot> {
    const pages = new Map<string, { index?: Entry; lock?: Entry; updates: Map<number, { index?: Entry; data?: Entry }> }>();
    const spellings = new Map<string, string>();
    const unreadable = new Set<string>();
    const onUnreadable = (path: string, error: EscaleError): void => {
      unreadable.add(path);
      if (this.unreadableEntries.isNew(path, error.message)) this.options.logger.warning(`skipping relay entry ${JSON.stringify(path)}: ${error.message}`);
    };
    const listedAtMono = this.marker.now();
    let markerEntry: Entry | undefined;
    for await (const entry of this.backend.list(ROOT, { signal, onUnreadable })) {
      if (entry.kind !== 'file') continue;
      if (entry.path === CHANGE_MARKER) markerEntry = entry;
      const name = parsePageFileName(entry.path);
      if (name === undefined) continue;
      // why: pages are matched in NFC, as the resource names they are made of (a later spelling of the same page wins).
      const key = name.page.normalize('NFC');
      if (key !== name.page) spellings.set(key, name.page);
      let page = pages.get(key);
      if (page === undefined) pages.set(key, (page = { updates: new Map() }));
      if (name.kind === 'index') page.index = entry;
      else if (name.kind === 'lock') page.lock = entry;
      else {
        const stamp = name.timestamp ?? 0;
        let update = page.updates.get(stamp);
        if (update === undefined) page.updates.set(stamp, (update = {}));
        if (name.kind === 'update-index') update.index = entry;
        else update.data = entry;
      }
    }
    this.unreadableEntries.retain((path) => unreadable.has(path));
    this.clockWarnings.checkOwnClock();
    this.pageSpellings = spellings;
    await this.marker.listed(markerEntry, listedAtMono, signal);
    return { pages };
  }

  /** The spelling of a page's relay files as the last listing showed it (the page itself when unknown or the same). */
  private spelledPage(page: string): string {
    return this.pageSpellings.get(page) ?? page;
  }

  /** The files of one page from a fresh listing. */
  async pageFiles(page: string, signal?: AbortSignal): Promise<PageFiles> {
    return (await this.snapshot(signal)).pages.get(page) ?? { updates: new Map() };
  }

  /**
   * Reads `.<P>.index` (bzip2, grouped). A missing index reads as empty with stamp ''. Entries whose
   * name is not a safe relative path or whose record is broken are left out with a warning.
   */
  async readPersistentIndex(page: string, signal?: AbortSignal): Promise<LoadedIndex> {
    const name = persistentIndexName(this.spelledPage(page));
    let entry: Entry;
    let compressed: Buffer;
    try {
      entry = await this.backend.stat(name, { signal });
      const max = this.options.maxIndexBytes ?? DEFAULT_MAX_PERSISTENT_INDEX_SIZE;
      compressed = await readSmall(this.backend, name, max, { signal });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return { entries: new Map(), spellings: new Map(), kept: [], stamp: '' };
      throw error;
    }
    const text = await bzip2DecompressBytes(compressed, { maxOutputBytes: this.options.maxIndexBytes ?? DEFAULT_MAX_PERSISTENT_INDEX_SIZE, signal });
    const parsed = parsePersistentIndexContent(text, {
      ...(this.options.maxIndexBytes === undefined ? {} : { maxSize: this.options.maxIndexBytes }),
      onSkip: this.skipped(`index page '${page}'`),
    });
    await this.clockWarnings.checkRecords(parsed.entries, signal);
    return { ...parsed, stamp: stampOf(entry) };
  }

  /**
   * Writes `.<P>.index`: the grouped text, UTF-8, one bzip2 stream; returns the new stamp. `extras`
   * (the spellings and kept entries of the index as read) are written back with the entries.
   */
  async writePersistentIndex(page: string, entries: Iterable<readonly [RelPath, MetadataRecord]>, signal?: AbortSignal, extras?: Partial<IndexExtras>): Promise<string> {
    const compressed = await bzip2CompressBytes(Buffer.from(formatPersistentIndex(entries, extras), 'utf8'), { signal });
    const written = await this.backend.put(persistentIndexName(this.spelledPage(page)), compressed, { signal, size: compressed.length });
    // why: some backends report no mtime from put; the listing is the reference for later comparisons.
    if (written.mtimeMs !== undefined) return stampOf(written);
    try {
      return stampOf(await this.backend.stat(persistentIndexName(this.spelledPage(page)), { signal }));
    } catch {
      return stampOf(written);
    }
  }

  /** Deletes `.<P>.index` (page deletion, relay-format.md P4.11); a missing one is fine. */
  async deletePersistentIndex(page: string, signal?: AbortSignal): Promise<void> {
    await deleteIfExists(this.backend, persistentIndexName(this.spelledPage(page)), signal);
  }

  /** Reads `.<P>.<T>.index`, or undefined when it does not exist. Unsafe entry names are refused with a warning. */
  async readUpdateIndex(page: string, timestamp: number, signal?: AbortSignal): Promise<UpdateIndex | undefined> {
    const max = this.options.maxUpdateIndexBytes ?? DEFAULT_MAX_UPDATE_INDEX_SIZE;
    let bytes: Buffer;
    try {
      bytes = await readSmall(this.backend, updateIndexName(this.spelledPage(page), timestamp), max, { signal });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return undefined;
      throw error;
    }
    const update = parseUpdateIndex(bytes, { maxSize: max, onSkip: this.skipped(`update ${timestamp} of page '${page}'`) });
    await this.clockWarnings.checkRecords(update.entries, signal);
    return update;
  }

  /**
   * Writes `.<P>.<T>.index`: plain UTF-8 text, with a pullers block when `pullers` is not empty;
   * `extras` (spellings, kept entries of the update as read) are written back with the entries.
   */
  async writeUpdateIndex(page: string, timestamp: number, entries: Iterable<readonly [RelPath, MetadataRecord]>, pullers: readonly string[], signal?: AbortSignal, extras?: Partial<IndexExtras>): Promise<void> {
    const bytes = Buffer.from(formatUpdateIndex(entries, pullers, extras), 'utf8');
    await this.backend.put(updateIndexName(this.spelledPage(page), timestamp), bytes, { signal, size: bytes.length });
  }

  /** Uploads `.<P>.<T>.data` from a stream (already compressed and encrypted). */
  async putUpdateData(page: string, timestamp: number, body: Readable, signal?: AbortSignal): Promise<Entry> {
    return this.backend.put(updateDataName(this.spelledPage(page), timestamp), body, { signal });
  }

  /** Opens `.<P>.<T>.data`; throws NotFound when it is gone. */
  async getUpdateData(page: string, timestamp: number, signal?: AbortSignal): Promise<Readable> {
    return this.backend.get(updateDataName(this.spelledPage(page), timestamp), { signal });
  }

  /** Deletes one update: the update index first, then the data, as 0.7 does (missing files are fine). */
  async deleteUpdate(page: string, timestamp: number, signal?: AbortSignal): Promise<void> {
    await deleteIfExists(this.backend, updateIndexName(this.spelledPage(page), timestamp), signal);
    await deleteIfExists(this.backend, updateDataName(this.spelledPage(page), timestamp), signal);
  }

  /**
   * Takes the page lock `.<P>.lock` with `mode` (relay-format.md P4.7). A free or own lock is
   * (re)written at once. A foreign lock is waited for, polling every `pollMs` (waking early when it
   * may turn stale) for at most `maxWaitMs`, then 'busy'. A stale foreign lock (left for `lock
   * timeout` by the relay's clock, or unchanged that long while watched: `judgeExpiry`; never by
   * the local clock) is broken: the leftovers of an interrupted push are removed first. After
   * writing, the lock is read back; if another client's write won the race, 'busy'.
   */
  async lock(page: string, mode: 'r' | 'w', wait: LockWait): Promise<PageLock | 'busy'> {
    const start = this.options.now();
    for (;;) {
      throwIfAborted(wait.signal);
      const state = await this.inspectLock(page, wait.signal);
      if (state.kind === 'stale') await this.breakLock(page, state.record, 'stale', wait.signal, state.evidence, state.problem);
      if (state.kind !== 'foreign') {
        const written = await this.writeOwnLock(page, mode, wait.signal);
        if (written) return this.handle(page, mode);
        return 'busy';
      }
      const waited = this.options.now() - start;
      if (waited >= wait.maxWaitMs) {
        this.options.logger.debug(`page '${page}' is locked by '${state.record.owner ?? '(nobody)'}'; postponed`);
        return 'busy';
      }
      const untilStale = state.staleInMs ?? Number.POSITIVE_INFINITY;
      const pause = Math.max(10, Math.min(wait.pollMs, untilStale + 50, wait.maxWaitMs - waited));
      this.options.logger.debug(`page '${page}' is locked by '${state.record.owner ?? '(nobody)'}'; waiting ${Math.round(pause / 1000)} s`);
      await this.sleep(pause, wait.signal);
    }
  }

  /**
   * The page's lock record as stored, or undefined when the page has no lock. A lock that cannot
   * be read or parsed reads as `{}` (no owner).
   */
  async readLock(page: string, signal?: AbortSignal): Promise<LockRecord | undefined> {
    try {
      return parseLock(await readSmall(this.backend, pageLockName(this.spelledPage(page)), MAX_LOCK_BYTES, { signal }));
    } catch (error) {
      if (hasCode(error, 'NotFound')) return undefined;
      if (hasCode(error, 'CorruptRecord')) return {};
      throw error;
    }
  }

  /**
   * Deletes the page lock only when this client owns it (an administrator's `escalectl resume`);
   * a lock of any other owner, stale or not, is left in place. Returns what was found.
   */
  async releaseOwnLock(page: string, signal?: AbortSignal): Promise<{ kind: 'released' } | { kind: 'free' } | { kind: 'foreign'; record: LockRecord }> {
    const record = await this.readLock(page, signal);
    if (record === undefined) return { kind: 'free' };
    if (record.owner !== this.client) return { kind: 'foreign', record };
    await deleteIfExists(this.backend, pageLockName(this.spelledPage(page)), signal);
    this.backend.clock.forget(pageLockName(this.spelledPage(page)));
    return { kind: 'released' };
  }

  /** Rewrites a held lock so that its relay mtime stays fresh during a long transaction. */
  async refreshLock(page: string, mode: 'r' | 'w', signal?: AbortSignal): Promise<void> {
    await this.backend.put(pageLockName(this.spelledPage(page)), Buffer.from(formatLock({ owner: this.client, mode }), 'utf8'), { signal });
    // why: the first write of a run teaches the relay's clock (RelayClock.timed); say at once when ours is off.
    this.clockWarnings.checkOwnClock();
  }

  /**
   * Start-up repair (relay-format.md P4.12, with F-12 fixed and stale locks added): for each page
   * lock that is this client's own, unclaimed (no owner), or stale, removes the leftovers of an
   * interrupted push (`mode: w` or no mode: update files of an incomplete update; a complete update,
   * index and data both present, is kept) and then the lock. A lock that cannot be read is left.
   */
  async repair(snapshot: IndexSnapshot, signal?: AbortSignal, isOwnData: (page: string, timestamp: number) => boolean = () => false): Promise<RepairedPage[]> {
    const repaired: RepairedPage[] = [];
    for (const [page, files] of snapshot.pages) {
      if (files.lock === undefined) {
        // why: an orphan `.<P>.<T>.data` (failed push, lost reply) on an unlocked page is cleaned here too.
        const { removed } = await this.removeOrphans(page, files, (t) => isOwnData(page, t), signal);
        if (removed.length > 0) repaired.push({ page, lock: 'orphan', removed });
        continue;
      }
      const state = await this.inspectLock(page, signal);
      let why: RepairedPage['lock'];
      if (state.kind === 'free') continue;
      if (state.kind === 'own') why = 'own';
      else if (state.kind === 'stale') why = 'stale';
      else if (state.record.owner === undefined && state.problem === undefined) why = 'unclaimed';
      else continue;
      repaired.push({ page, lock: why, removed: await this.breakLock(page, state.record, why, signal, state.kind === 'stale' ? state.evidence : undefined, state.kind === 'stale' ? state.problem : undefined) });
    }
    return repaired;
  }

  /**
   * Deletes the page's orphan update data: `.<P>.<T>.data` without its `.<P>.<T>.index` (an update is
   * pending only when its index exists) that `isOwn` claims or that was left for `lock timeout`
   * (`judgeExpiry`: by the relay's clock, or unchanged while watched). The caller holds the page
   * lock or found none. Returns the deleted names and how many orphans were kept (young, another client's).
   */
  async removeOrphans(page: string, files: PageFiles, isOwn: (timestamp: number) => boolean, signal?: AbortSignal): Promise<{ removed: RelPath[]; kept: number }> {
    const removed: RelPath[] = [];
    let kept = 0;
    const timeout = this.options.lockTimeoutSec;
    const { logger } = this.options;
    for (const [timestamp, update] of files.updates) {
      if (update.index !== undefined || update.data === undefined) continue;
      const name = updateDataName(this.spelledPage(page), timestamp);
      let why = 'left by a push of this client';
      if (!isOwn(timestamp)) {
        const verdict = await judgeExpiry(this.backend, name, update.data, timeout, { logger, ...(signal === undefined ? {} : { signal }) });
        if (!verdict.stale) {
          kept += 1;
          continue;
        }
        why = expiryEvidence(verdict, timeout);
      }
      logger.info(`releasing orphan update data '${name}': ${why}`);
      await deleteIfExists(this.backend, name, signal);
      removed.push(name);
    }
    return { removed, kept };
  }

  private handle(page: string, mode: 'r' | 'w'): PageLock {
    let released = false;
    return {
      page,
      mode,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await deleteIfExists(this.backend, pageLockName(this.spelledPage(page)));
        } catch (error) {
          this.options.logger.warning(`cannot release the lock of page '${page}': ${(error as Error).message}; it will be repaired`);
        }
      },
    };
  }

  private async writeOwnLock(page: string, mode: 'r' | 'w', signal?: AbortSignal): Promise<boolean> {
    await this.refreshLock(page, mode, signal);
    // why: relay-format.md F-14: check-then-write is not atomic; reading back catches the plain case of a lost race.
    try {
      const back = parseLock(await readSmall(this.backend, pageLockName(this.spelledPage(page)), MAX_LOCK_BYTES, { signal }));
      if (back.owner === this.client) return true;
      this.options.logger.debug(`page '${page}': another client ('${back.owner ?? ''}') took the lock at the same time`);
      return false;
    } catch (error) {
      if (hasCode(error, 'NotFound', 'CorruptRecord')) return false;
      throw error;
    }
  }

  /**
   * Removes an interrupted push's leftovers (for `w` or no mode) and the lock; returns the deleted
   * update files. `problem`: why the lock could not be read (it was then treated as one without owner).
   */
  private async breakLock(page: string, record: LockRecord, why: RepairedPage['lock'], signal?: AbortSignal, evidence?: string, problem?: string): Promise<RelPath[]> {
    const { logger } = this.options;
    if (problem !== undefined) logger.warning(`breaking the lock of page '${page}', which cannot be read (${problem}): ${evidence ?? 'left for the lock timeout'}`);
    else if (why === 'stale') logger.warning(`breaking the stale lock of page '${page}' held by '${record.owner ?? '(nobody)'}': ${evidence ?? 'left for the lock timeout'}`);
    const removed: RelPath[] = [];
    if (record.mode !== 'r') {
      const files = await this.pageFiles(page, signal);
      for (const [timestamp, update] of files.updates) {
        // why: the update index is written last; with it and the data both there the push was complete.
        if (update.index !== undefined && update.data !== undefined) continue;
        for (const name of updateNames(this.spelledPage(page), timestamp, update)) {
          logger.info(`releasing remnant update file '${name}'`);
          await deleteIfExists(this.backend, name, signal);
          removed.push(name);
        }
      }
    }
    logger.info(`releasing remnant lock for page '${page}'`);
    await deleteIfExists(this.backend, pageLockName(this.spelledPage(page)), signal);
    this.backend.clock.forget(pageLockName(this.spelledPage(page)));
    this.unreadableLocks.clear(page);
    return removed;
  }

  private async inspectLock(
    page: string,
    signal?: AbortSignal,
  ): Promise<
    | { kind: 'free' }
    | { kind: 'own'; record: LockRecord }
    | { kind: 'stale'; record: LockRecord; evidence: string; problem?: string }
    | { kind: 'foreign'; record: LockRecord; staleInMs?: number; problem?: string }
  > {
    const name = pageLockName(this.spelledPage(page));
    let entry: Entry;
    let bytes: Buffer;
    let problem: string | undefined;
    try {
      entry = await this.backend.stat(name, { signal });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return this.lockGone(page);
      throw error;
    }
    try {
      bytes = await readSmall(this.backend, name, MAX_LOCK_BYTES, { signal });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return this.lockGone(page);
      if (!hasCode(error, 'CorruptRecord', 'PermissionDenied')) throw error;
      // why: the listing still dates the lock, so an unreadable one expires like any other.
      problem = error.message;
      bytes = Buffer.from(`\u0000unreadable:${entry.size}`);
    }
    let record: LockRecord = {};
    if (problem === undefined) {
      try {
        record = parseLock(bytes);
      } catch (error) {
        if (!hasCode(error, 'CorruptRecord')) throw error;
        problem = error.message;
      }
    }
    if (problem === undefined && record.owner === this.client) return { kind: 'own', record };
    const withProblem = problem === undefined ? {} : { problem };
    const timeout = this.options.lockTimeoutSec;
    if (problem !== undefined && this.unreadableLocks.isNew(page, 'unreadable')) {
      const when = timeout === null ? 'never removed (lock timeout is off)' : `removed once older than the lock timeout (${timeout} s) by the relay's clock, or unchanged that long`;
      this.options.logger.warning(`the lock of page '${page}' cannot be read (${problem}); it is treated as a lock without owner: the page waits, and the lock is ${when}`);
    }
    if (timeout === null) return { kind: 'foreign', record, ...withProblem };
    const verdict = await judgeExpiry(this.backend, name, entry, timeout, { contentKey: bytes.toString('base64'), logger: this.options.logger, ...(signal === undefined ? {} : { signal }) });
    if (verdict.stale) return { kind: 'stale', record, evidence: expiryEvidence(verdict, timeout), ...withProblem };
    return { kind: 'foreign', record, ...(verdict.staleInMs === undefined ? {} : { staleInMs: verdict.staleInMs }), ...withProblem };
  }

  /** The answer for a page without lock; forgets what was watched and reported of its last one. */
  private lockGone(page: string): { kind: 'free' } {
    this.backend.clock.forget(pageLockName(page));
    this.unreadableLocks.clear(page);
    return { kind: 'free' };
  }
}

/** Deletes a relay file; a missing one is fine. */
export async function deleteIfExists(backend: Backend, path: RelPath, signal?: AbortSignal): Promise<void> {
  try {
    await backend.delete(path, { signal });
  } catch (error) {
    if (!hasCode(error, 'NotFound')) throw error;
  }
}
