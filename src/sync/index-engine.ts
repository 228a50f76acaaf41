import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { EscaleError, fromSystemError, hasCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';
import { folderSpellings, spellAs, type RelayPath, type RelPath } from '../core/relpath.js';
import { BaseStore } from '../local/base-store.js';
import { createChecksum } from '../local/checksum.js';
import { UpdateFailureLog } from '../local/update-failures.js';
import { packUpdate, type ArchiveContent, type ArchiveSource } from '../relay/protocol/archive.js';
import { unpackUpdate, type UnpackedFile } from '../local/archive-extract.js';
import { stampOf, type IndexRelay, type IndexSnapshot, type PageFiles, type PageLock, type UpdateFiles } from '../relay/protocol/index-relay.js';
import type { Entry } from '../relay/backend.js';
import type { IndexExtras, UpdateIndex } from '../relay/protocol/page-index.js';
import { pageOf, type PageScheme } from '../relay/protocol/pages.js';
import { agreedVersion } from './base.js';
import { mtimeSecOf } from '../relay/protocol/records.js';
import { ConsistentRead, readProblem } from './consistent-read.js';
import { failingFolders, localFileOf, saveBase, scanProblemHandler, scanToMap, through, type BasePort, type CipherPort, type LocalPort, type PlacedFile, type RoundOptions, type RoundPhase, type RoundReport } from './engine.js';
import { restrictTo } from './round-scope.js';
import { classifyFailure, FailureTracker } from './failure-tracker.js';
import { ForeignChecksums } from './foreign-checksums.js';
import {
  decideConsumption,
  decidePullEntry,
  filesByPage,
  isUnreadableUpdateError,
  MAX_UPDATE_READ_ATTEMPTS,
  modePulls,
  modePushes,
  pullersAfterRecording,
  pullNeedsChecksum,
  pushNeedsChecksum,
  selectPushBatch,
  transferReport,
  updateDoneFor,
  uploadRepeats,
  type PullDecision,
  type PullEntryContext,
} from './index-planner.js';
import type { Action, LocalFile, SyncMode } from './model.js';
import { pushedRecord, type MetadataRecord } from '../relay/protocol/records.js';
import { MAX_RESEND_REQUESTS, ResendLog } from './resend-log.js';

/** Prefix of the private extraction folders in the local root (hidden from the scanner by the dot). */
export const EXTRACTION_PREFIX = '.escale-index-';

/** Settings of an index engine (one client section with `index` on). */
export interface IndexEngineOptions {
  readonly client: string;
  readonly mode: SyncMode;
  readonly scheme: PageScheme;
  readonly pullerCount?: number;
  readonly useMtime: boolean;
  /** Hash algorithm of the `checksum` option, or null when checksums are off. */
  readonly checksumAlgorithm: string | null;
  /** `maxpagesize` in bytes of plaintext. */
  readonly maxPageSizeBytes: number;
  /** Write each update archive as one bzip2 stream (no parallel compression), for readers that stop after the first stream. */
  readonly singleStreamArchives?: boolean;
  readonly pullOverwrite: boolean;
  readonly allowPageDeletion: boolean;
  readonly priority?: 'upload';
  /** `upload max wait`: seconds the repeating upload phase waits without progress before giving up. */
  readonly uploadMaxWaitSec: number;
  /** `lock timeout` in seconds (also the heartbeat period of held locks: a third of it); null: never. */
  readonly lockTimeoutSec: number | null;
  readonly cipher: CipherPort | null;
  readonly acceptsRemote: (path: RelPath) => boolean;
  readonly logger: Logger;
  /** Folder where private extraction folders are made: the local root (same file system, hidden). */
  readonly scratchDir: string;
  /** Poll interval of a blocking page-lock wait (0.7: 60 s). */
  readonly lockPollMs?: number;
  /** Longest wait for one page lock before the page is postponed (default: one poll interval). */
  readonly lockWaitMs?: number;
  /** Pause between upload passes when every remaining page is postponed (default 5 s). */
  readonly uploadRetryMs?: number;
  /**
   * Largest plaintext of one update archive accepted when unpacking. Default: the free space of
   * `scratchDir` less a reserve (see `updateByteLimit`), so that a decompression bomb cannot fill the disk.
   */
  readonly maxUpdateBytes?: number;
  /** Largest number of members of one update archive (default 10 million). */
  readonly maxUpdateEntries?: number;
  /**
   * This client's failed attempts to read pending updates, kept across restarts (the daemon keeps it
   * in the section's data folder); default: in memory.
   */
  readonly updateFailures?: UpdateFailureLog;
  /** Failed reads of one unreadable update before this client gives it up (default MAX_UPDATE_READ_ATTEMPTS). */
  readonly maxUpdateReadAttempts?: number;
  /**
   * The versions this client reported missing with `puller count` ≥ 2, kept across restarts (the
   * daemon keeps it in the section's data folder); default: in memory.
   */
  readonly resends?: ResendLog;
  /** How many times one version is reported missing before this client stops asking (default MAX_RESEND_REQUESTS). */
  readonly maxResendRequests?: number;
  /** The base state (default: in memory, empty at start). */
  readonly base?: BasePort;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly dryRun?: boolean;
  readonly onPlan?: (action: Action) => void;
  /** Where per-file and per-page failures are recorded (default: a tracker of its own, logging to `logger`). */
  readonly failures?: FailureTracker;
  /** Told when the round enters a phase (the daemon's status model). */
  readonly onPhase?: (phase: RoundPhase) => void;
}

/** What the engine remembers of a page between rounds (relay-format.md P4.9 steps 1 and 4, P4.10), with the index's extras to write back. */
interface PageCache extends IndexExtras {
  entries: Map<RelPath, MetadataRecord>;
  /** Listing stamp of `.<P>.index` when read ('' when it was missing). */
  stamp: string;
  /** The last update this client dealt with (pushed, consumed, or found to be its own). */
  doneUpdate?: DoneUpdate;
  /** Set when every entry of this index matched the local files (nothing wanted): only local changes can want something. */
  clean?: boolean;
}

/**
 * An update this client is done with: its `T` and the listing stamp of its data file. why: `T` is in
 * whole seconds, so a later update can reuse the same `T`; the data stamp tells them apart.
 */
interface DoneUpdate {
  readonly t: number;
  readonly data: string;
}

/** Whether `done` names the listed update `t` (same `T`, same data file). */
function isDone(done: DoneUpdate | undefined, t: number, files: UpdateFiles | undefined): boolean {
  return done !== undefined && done.t === t && done.data === stampOf(files?.data);
}

/** The key of one pending update in the failure log: page, `T` and the listing stamp of its data. */
function updateKeyOf(page: string, t: number, files: UpdateFiles | undefined): string {
  return `${page}\u0000${t}\u0000${stampOf(files?.data)}`;
}

/** The `T`s of the page's pending updates: an update is pending only when its update index exists. */
function pendingStamps(files: PageFiles): number[] {
  return [...files.updates].filter(([, update]) => update.index !== undefined).map(([t]) => t);
}

/** Files up to this size are read at once, without a stream (see `LocalPort.readSmall`). */
const SMALL_FILE_BYTES = 64 * 1024;

/** Outcome of one page's push transaction. */
type PushOutcome = { kind: 'postponed' } | { kind: 'done'; sent: number; rest: LocalFile[] };

/** An update that was published (or found to have no member left, and removed: `records` empty). */
interface SentUpdate {
  readonly kind: 'sent';
  /** The records published, and the scanned files they describe. */
  readonly records: Map<RelPath, MetadataRecord>;
  readonly files: Map<RelPath, LocalFile>;
  readonly merged: Map<RelPath, MetadataRecord>;
  readonly indexStamp: string;
  readonly data: Entry;
}

/** A member whose read failed (`error`) or found another version (`problem`) after its header was written: the archive is spoiled. */
interface SpoiledMember {
  readonly file: LocalFile;
  readonly error?: unknown;
  readonly problem?: string;
  readonly after?: LocalFile;
}

/** Where `archiveMember` puts what it learns about each member. */
interface MemberSink {
  readonly records: Map<RelPath, MetadataRecord>;
  readonly members: Map<RelPath, LocalFile>;
  readonly changed: LocalFile[];
  readonly spoiled: SpoiledMember[];
  readonly report: RoundReport;
}

/**
 * Runs sync rounds of one client on an index relay (relay-format.md P4.8–P4.12, sync-rules.md
 * R5): repair, download phase (pages with a pending update first), upload phase (one update per
 * page, closed at `maxpagesize`, repeated with `priority = upload` or in upload mode). Archives are
 * streamed both ways; downloads are extracted into a private folder and moved into place through
 * `LocalPort.write` (checksum and unchanged-target checks).
 */
export class IndexEngine {
  private needsRepair = true;
  private warnedNoIntegrity = false;
  /** "Lookup missing": true at start and after a download phase that received nothing (sync-rules.md R5.1). */
  private downloadIdle = true;
  private readonly pages = new Map<string, PageCache>();
  /** why: update data this process wrote whose push did not complete (`page\0T`): orphans we may remove at once. */
  private readonly pushedData = new Set<string>();
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly updateFailures: UpdateFailureLog;
  /** Per-file and per-page failures and their back-off. */
  readonly failures: FailureTracker;
  private readonly resends: ResendLog;
  private readonly base: BasePort;
  /** why: a base that cannot be saved is reported once per cause. */
  private readonly reported = new ReportOnce();
  /** Entries whose checksums another algorithm made are decided without them. */
  private readonly foreign: ForeignChecksums;
  /** The listing of the last completed round (reused while the change marker says nothing changed). */
  private lastSnapshot: IndexSnapshot | undefined;
  /** Local files the last upload phase left waiting (undefined: every file is a candidate). */
  private uploadCarry: Set<RelPath> | undefined;
  /** The listing stamp of each page's persistent index when the last upload phase looked at it (or its own push wrote it). */
  private uploadStamps = new Map<string, string>();
  /** Where small files are read to be archived (see `archiveMember`). */
  private readonly smallFileBuffer = Buffer.allocUnsafe(SMALL_FILE_BYTES + 1);

  constructor(
    private readonly relay: IndexRelay,
    private readonly local: LocalPort,
    private readonly options: IndexEngineOptions,
  ) {
    this.base = options.base ?? BaseStore.inMemory();
    this.now = options.now ?? Date.now;
    this.updateFailures = options.updateFailures ?? UpdateFailureLog.inMemory();
    this.failures = options.failures ?? new FailureTracker({ logger: options.logger });
    this.resends = options.resends ?? ResendLog.inMemory();
    this.foreign = new ForeignChecksums(options.checksumAlgorithm, options.logger);
    this.sleep = options.sleep ?? (async (ms, signal) => void (await sleepFor(ms, undefined, signal ? { signal } : {}).catch(() => undefined)));
  }

  /** Asks for the sanity checks (repair) before the next round, as after any error. */
  requestRepair(): void {
    this.needsRepair = true;
  }

  /** Whether the relay may have changed since the last round's listing (one small request; true when it cannot tell). */
  async relayChanged(signal?: AbortSignal): Promise<boolean> {
    return this.lastSnapshot === undefined || (await this.relay.changedSince(signal));
  }

  /**
   * Runs one round: listing, repair if asked, download phase, upload phase. A page or a file that
   * fails is tracked in `failures` and the others go on; throws only when the listing or the relay
   * as a whole fails, or the signal fires.
   */
  async round(signal?: AbortSignal, options: RoundOptions = {}): Promise<RoundReport> {
    try {
      return await this.phases(signal, options);
    } catch (error) {
      // why: a round cut short leaves no trustworthy "before" for the next one: it looks at everything.
      this.lastSnapshot = undefined;
      this.uploadCarry = undefined;
      throw error;
    } finally {
      // why: once per round, so that a round of many transfers costs one sync of the base file.
      if (!this.options.dryRun) saveBase(this.base, this.options.logger, this.reported);
    }
  }

  private async phases(signal: AbortSignal | undefined, roundOptions: RoundOptions): Promise<RoundReport> {
    const { options, failures } = this;
    const report: RoundReport = { transferred: 0, failed: 0, planned: [], deferred: 0 };
    if (options.cipher && !options.cipher.hasIntegrity && !this.warnedNoIntegrity) {
      this.warnedNoIntegrity = true;
      options.logger.warning(`encryption '${options.cipher.name}' has no integrity check: a damaged or tampered file cannot be detected; fernet is recommended`);
    }
    failures.beginRound();
    options.onPhase?.('scanning');
    const last = this.lastSnapshot;
    // why: while the change marker says nothing changed, the last listing stands (a `refresh` round lists anyway).
    const reuse = last !== undefined && roundOptions.list !== true && !this.needsRepair && !(await this.relay.changedSince(signal));
    let snapshot = reuse ? last : await this.relay.snapshot(signal);
    if (this.needsRepair && !options.dryRun) {
      // why: page by page, so that a page whose repair fails (tracked, with back-off) does not stop the repair of the others.
      for (const [page, files] of snapshot.pages) {
        await this.onePage(page, 'repair', report, undefined, () => this.relay.repair({ pages: new Map([[page, files]]) }, signal, (p, t) => this.pushedData.has(`${p}\u0000${t}`)), signal);
      }
      await this.cleanScratch();
      this.pages.clear();
      this.downloadIdle = true;
      snapshot = await this.relay.snapshot(signal);
    }
    this.needsRepair = false;
    let { local, dirty } = await this.scanLocal(signal);
    failures.forgetAbsent('page', (page) => snapshot.pages.has(page));
    failures.forgetAbsent('file', (path) => local.has(path as RelPath) || [...this.pages.values()].some((p) => p.entries.has(path as RelPath)));
    if (dirty !== undefined) for (const entry of failures.list()) if (entry.kind === 'file') dirty.add(entry.path as RelPath);
    if (modePulls(options.mode)) {
      options.onPhase?.('pulling');
      failures.enterPhase('pull');
      const received = await this.downloadPhase(snapshot, local, report, signal, dirty);
      if (received > 0 && modePushes(options.mode) && !options.dryRun) {
        options.onPhase?.('scanning');
        const again = await this.scanLocal(signal);
        local = again.local;
        if (dirty !== undefined && again.dirty !== undefined) for (const path of again.dirty) dirty.add(path);
        else dirty = undefined;
        snapshot = await this.relay.snapshot(signal);
      }
    }
    if (modePushes(options.mode)) {
      options.onPhase?.('pushing');
      failures.enterPhase('push');
      const candidates = this.uploadCandidates(snapshot, local, dirty);
      this.uploadStamps = new Map([...snapshot.pages].map(([page, files]) => [page, stampOf(files.index)]));
      this.uploadCarry = await this.uploadPhase(candidates, report, signal);
    }
    this.lastSnapshot = snapshot;
    failures.endRound(true);
    report.failing = failures.failingCount;
    if (report.transferred > 0 && !options.dryRun) await this.relay.markChanged(signal);
    return report;
  }

  /**
   * Runs `work` on one page unless the page is in its back-off: a failure of the page (not of the
   * relay as a whole) is tracked against it and the other pages go on; `fallback` is then returned.
   */
  private async onePage<T>(page: string, action: string, report: RoundReport, fallback: T, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.failures.blocked('page', page)) return fallback;
    try {
      return await work();
    } catch (error) {
      const verdict = classifyFailure(error, signal);
      if (verdict === 'aborted') throw error;
      if (verdict === 'deferred') {
        report.deferred += 1;
        return fallback;
      }
      if (this.failures.fail({ kind: 'page', path: page }, action, error)) report.failed += 1;
      if (verdict === 'relay') throw error;
      return fallback;
    }
  }

  /**
   * Records the failure of one file met while deciding or sending (its checksum could not be
   * computed); rethrows what must end the round.
   */
  private fileFailed(path: RelPath, action: string, error: unknown, report: RoundReport, signal?: AbortSignal): void {
    const verdict = classifyFailure(error, signal);
    if (verdict === 'aborted' || verdict === 'relay') throw error;
    if (verdict === 'deferred') {
      report.deferred += 1;
      return;
    }
    if (this.failures.fail({ kind: 'file', path }, action, error)) report.failed += 1;
  }

  // ---------------------------------------------------------------- download

  private async downloadPhase(snapshot: IndexSnapshot, local: Map<RelPath, LocalFile>, report: RoundReport, signal?: AbortSignal, localDirty?: ReadonlySet<RelPath>): Promise<number> {
    const lookup = this.downloadIdle;
    const withUpdate: string[] = [];
    const without: string[] = [];
    for (const [page, files] of snapshot.pages) {
      const pending = pendingStamps(files).length > 0;
      if (files.index === undefined && !pending) continue;
      (pending ? withUpdate : without).push(page);
    }
    let received = 0;
    let missing = 0;
    for (const page of [...shuffle(withUpdate), ...shuffle(without)]) {
      signal?.throwIfAborted();
      const files = snapshot.pages.get(page) ?? { updates: new Map() };
      const outcome = await this.onePage(page, 'read', report, { received: 0, missing: 0 }, () => this.pullPage(page, files, local, lookup, report, signal, localDirty), signal);
      received += outcome.received;
      missing += outcome.missing;
    }
    // why: a page that disappeared from the relay is forgotten only with `allow page deletion`.
    for (const page of [...this.pages.keys()]) {
      if (snapshot.pages.get(page)?.index !== undefined) continue;
      if (this.options.allowPageDeletion) this.pages.delete(page);
      else if ((this.pages.get(page)?.entries.size ?? 0) > 0 && !this.options.dryRun) {
        this.options.logger.warning(`missing index for page '${page}'; if this is expected, please restart escale`);
      }
    }
    if (this.updateFailures.size > 0 && !this.options.dryRun) {
      // why: failure counts of updates that left the relay are of no more use (one more listing, only while some are kept).
      const pending = new Set<string>();
      for (const [page, files] of (await this.relay.snapshot(signal)).pages) {
        for (const t of pendingStamps(files)) pending.add(updateKeyOf(page, t, files.updates.get(t)));
      }
      this.updateFailures.prune((key) => pending.has(key));
    }
    this.downloadIdle = received === 0 && missing === 0;
    return received;
  }

  private pullContext(lookupMissing: boolean): PullEntryContext {
    const { options } = this;
    return {
      mode: options.mode,
      trust: options.pullOverwrite,
      lookupMissing,
      useMtime: options.useMtime,
      useChecksum: options.checksumAlgorithm !== null,
      acceptsRemote: options.acceptsRemote,
      access: (path) => this.local.access(path),
      base: this.base.versions,
      client: options.client,
    };
  }

  /** Records the agreement of a local file with an index entry of the same content (an identical file found by a decision). */
  private agreeIdentical(file: LocalFile, record: MetadataRecord): void {
    if (!this.options.dryRun) this.base.agree(file.path, agreedVersion(file, record, file.checksum));
  }

  /**
   * Decides every entry of `content`, computing local checksums only where rule I4 needs them.
   * Files in their back-off, and files whose checksum cannot be computed, are left out this round.
   */
  private async decideEntries(content: ReadonlyMap<RelPath, MetadataRecord>, local: Map<RelPath, LocalFile>, context: PullEntryContext, report: RoundReport, signal?: AbortSignal): Promise<PullDecision[]> {
    const out: PullDecision[] = [];
    for (const [path, read] of content) {
      if (this.failures.blocked('file', path)) continue;
      const record = this.foreign.view(read);
      const problem = this.local.nameProblem?.(path);
      if (problem !== undefined) {
        this.relay.refuseName(path, problem);
        continue;
      }
      let file: LocalFile | undefined | 'failed' = local.get(path);
      if (file !== undefined && file.checksum === undefined && pullNeedsChecksum(file, record, context)) {
        file = await this.withChecksum(file, local, report, signal);
      }
      // why: decided without its local side, an unreadable file would be taken for absent and downloaded over.
      if (file === 'failed') continue;
      const decision = decidePullEntry(path, record, file, context);
      if (decision.identical === true && file !== undefined) this.agreeIdentical(file, record);
      out.push(decision);
    }
    return out;
  }

  /** The file with its checksum; undefined when it vanished, 'failed' when it cannot be read (tracked). */
  private async withChecksum(file: LocalFile, local: Map<RelPath, LocalFile>, report: RoundReport, signal?: AbortSignal): Promise<LocalFile | undefined | 'failed'> {
    try {
      const checksum = await this.local.checksum(file, signal);
      const next = checksum === undefined ? file : localFileOf(file, checksum);
      local.set(file.path, next);
      return next;
    } catch (error) {
      if (hasCode(error, 'NotFound')) {
        this.options.logger.warning(`file '${file.path}' vanished while escale was reading it`);
        local.delete(file.path);
        return undefined;
      }
      this.fileFailed(file.path, 'read', error, report, signal);
      return 'failed';
    }
  }

  private async pullPage(page: string, listed: PageFiles, local: Map<RelPath, LocalFile>, lookup: boolean, report: RoundReport, signal?: AbortSignal, localDirty?: ReadonlySet<RelPath>): Promise<{ received: number; missing: number }> {
    const { options, relay } = this;
    const none = { received: 0, missing: 0 };
    const cache = this.pages.get(page);
    const stamps = pendingStamps(listed);
    const pending = stamps.length === 1 ? stamps[0] : undefined;
    const fresh = cache !== undefined && cache.stamp === stampOf(listed.index);
    const updateOpen = stamps.length > 1 || (pending !== undefined && !isDone(cache?.doneUpdate, pending, listed.updates.get(pending)));
    if (!updateOpen) {
      if (fresh && !lookup) return none;
      // why: an unchanged index whose entries all matched the local files needs a look only when one of those files changed.
      if (fresh && cache.clean === true && localDirty !== undefined && ![...localDirty].some((path) => cache.entries.has(path))) return none;
      // why: an idle pass reads no lock unless something is wanted (relay-format.md F-21: 0.7 locks every page every round).
      const index = fresh ? cache : await relay.readPersistentIndex(page, signal);
      const decisions = await this.decideEntries(index.entries, local, this.pullContext(true), report, signal);
      if (!decisions.some((d) => d.outcome.startsWith('want'))) {
        if (!fresh && !options.dryRun) {
          this.pages.set(page, { entries: index.entries, spellings: index.spellings, kept: index.kept, stamp: stampOf(listed.index), ...(cache?.doneUpdate === undefined ? {} : { doneUpdate: cache.doneUpdate }), clean: true });
        } else if (fresh && !options.dryRun) cache.clean = true;
        return none;
      }
    }
    if (cache !== undefined) cache.clean = false;
    if (options.dryRun) return this.planPull(page, listed, local, lookup, report, signal);

    const lock = await relay.lock(page, 'r', this.lockWait(signal));
    if (lock === 'busy') {
      report.deferred += 1;
      return none;
    }
    const stopHeartbeat = this.heartbeat(lock);
    let scratch: string | undefined;
    try {
      const files = await relay.pageFiles(page, signal);
      const updates = pendingStamps(files);
      if (updates.length > 1) {
        options.logger.warning(`multiple update indices for page '${page}'; deleting them all`);
        for (const stamp of updates) await relay.deleteUpdate(page, stamp, signal);
        return none;
      }
      const wasLoaded = this.pages.has(page);
      const entry = await this.currentIndex(page, files, signal);
      this.resends.settle((path) => {
        const read = entry.entries.get(path);
        return read === undefined ? undefined : this.foreign.view(read);
      }, options.client);
      const stamp = updates[0];
      const failureKey = stamp === undefined ? '' : updateKeyOf(page, stamp, files.updates.get(stamp));
      const maxAttempts = options.maxUpdateReadAttempts ?? MAX_UPDATE_READ_ATTEMPTS;
      const earlierGiveUp = stamp !== undefined && this.updateFailures.failures(failureKey) >= maxAttempts;
      // why: an update index deleted since the listing is a consumed update: nothing is pending.
      let update: UpdateIndex | undefined;
      let indexGivenUp = false;
      if (stamp !== undefined) {
        try {
          update = await relay.readUpdateIndex(page, stamp, signal);
        } catch (error) {
          if (signal?.aborted || !(error instanceof EscaleError) || !isUnreadableUpdateError(error)) throw error;
          if (this.countReadFailure(page, stamp, failureKey, error, 'its update index') === 'retry') {
            report.failed += 1;
            return none;
          }
          // why: nobody can read this update index, so nobody can record a puller in it and the
          // page would stay blocked for every pusher. It is taken as an update with no entries, read
          // in a full pass: its files are still named by the persistent index, so whatever this client
          // lacks is taken from the archive first if that reads (the archive is never given up
          // unread), or reported missing; then the consumption below rewrites the update index
          // readable or deletes the update.
          update = { entries: new Map(), spellings: new Map(), kept: [], pullers: [] };
          indexGivenUp = true;
        }
      }
      // why: a give-up that a crash interrupted (before the update was consumed) is finished now.
      let dataGivenUp = earlierGiveUp && !indexGivenUp;
      if (dataGivenUp && stamp !== undefined) this.logGiveUp(page, stamp, 'earlier attempts failed');
      // why: decided from the update index itself; the cached `doneUpdate` may name an older update with the same `T`.
      const done = update !== undefined && updateDoneFor(options.client, update);
      const fullPass = lookup || !wasLoaded || indexGivenUp;
      let content: Map<RelPath, MetadataRecord>;
      if (fullPass) content = new Map([...entry.entries, ...(update?.entries ?? [])]);
      else content = done || update === undefined ? new Map() : update.entries;
      const context = this.pullContext(fullPass);
      const decisions = await this.decideEntries(content, local, context, report, signal);
      for (const d of decisions) if (d.rule === 'I3') options.logger.warning(d.why);
      const wanted = decisions.filter((d) => d.outcome === 'want-new' || d.outcome === 'want-update');
      const got: RelPath[] = [];
      let missing: RelPath[] = [];
      let extractFailed = false;
      const hasData = !dataGivenUp && stamp !== undefined && update !== undefined && files.updates.get(stamp)?.data !== undefined;
      if (wanted.length > 0 && hasData && stamp !== undefined) {
        scratch = join(options.scratchDir, `${EXTRACTION_PREFIX}${randomBytes(8).toString('hex')}`);
        // why: a new local file takes the name as the index spells it (as the client that pushed it spelled it).
        const spellings = new Map([...entry.spellings, ...(update?.spellings ?? [])]);
        const outcome = await this.extractAndPlace(page, stamp, wanted, spellings, scratch, report, signal);
        got.push(...outcome.got);
        missing = outcome.missing;
        if (outcome.failure !== undefined) {
          report.failed += wanted.length;
          if (this.countReadFailure(page, stamp, failureKey, outcome.failure, `${wanted.length} file(s)`) === 'retry') extractFailed = true;
          else dataGivenUp = true;
        }
      }
      if (dataGivenUp && wanted.length > 0) {
        // why: the archive cannot be read (or was given up earlier): its files are reported missing,
        // so that their pushers send them again in a new update, as 0.7 does after a failed extraction.
        missing = wanted.map((d) => d.path);
      } else if (wanted.length > 0 && !hasData) {
        // why: no archive: ask the pushers to send them again (with `pull overwrite` on a first pass, only absent ones).
        missing = this.boundedResends(wanted.filter((d) => !(options.pullOverwrite && !wasLoaded && d.local !== undefined)));
      }
      for (const path of got) this.resends.forget(path);
      if (got.length > 0) {
        options.logger.info(['successfully downloaded files:', ...transferReport(got)].join('\n'));
        report.transferred += got.length;
      }
      if (missing.length > 0) await this.requestMissing(page, missing, signal);
      // why: an update that could not be read is neither recorded nor remembered: a later round fetches it
      // again, up to `maxUpdateReadAttempts` times. A given-up update is consumed like a read one, so
      // that the puller count completes and the page is free again for its pushers (see logGiveUp).
      if (stamp !== undefined && update !== undefined && !extractFailed) {
        const decision = decideConsumption({ client: options.client, entries: update.entries, pullers: update.pullers, ...(options.pullerCount === undefined ? {} : { pullerCount: options.pullerCount }) });
        if (decision === 'delete') await relay.deleteUpdate(page, stamp, signal);
        // why: the update is written back with the entries this client refuses, for the other pullers.
        else if (decision === 'record') await relay.writeUpdateIndex(page, stamp, update.entries, pullersAfterRecording(update.pullers, options.client), signal, update);
        const cached = this.pages.get(page);
        if (cached !== undefined) cached.doneUpdate = { t: stamp, data: stampOf(files.updates.get(stamp)?.data) };
      }
      return { received: got.length, missing: missing.length };
    } finally {
      await stopHeartbeat();
      await lock.release();
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * The files of `wanted` to report missing because no pending update carries them (relay-format.md
   * P4.11). With `puller count` ≥ 2 each version is asked for a bounded number of times: the first
   * request is ordinary (a new client, a lost update); when the pusher sent it again and it left
   * again before this client read it, a puller on the relay does not record itself (escale 0.7, whose
   * phantom puller names complete the count early: relay-format.md P8.1), which is said once, and so is
   * the last request.
   */
  private boundedResends(wanted: readonly PullDecision[]): RelPath[] {
    const { options } = this;
    if ((options.pullerCount ?? 1) < 2) return wanted.map((d) => d.path);
    const max = options.maxResendRequests ?? MAX_RESEND_REQUESTS;
    const paths: RelPath[] = [];
    for (const d of wanted) {
      if (this.resends.asks(d.path, d.record) >= max) {
        options.logger.debug(`file '${d.path}' is missing from every pending update; already reported ${max} times, not again for this version`);
        continue;
      }
      const asks = this.resends.recordAsk(d.path, d.record);
      const pusher = d.record.pusher ?? '(unknown)';
      if (asks === 2) {
        options.logger.warning(
          `file '${d.path}' was sent again by '${pusher}' and left the relay again before this client read it: a puller on the relay does not record itself (an escale 0.7 client with 'puller count' of 2 or more, or a client with a lower puller count); reporting it missing again`,
        );
      }
      if (asks >= max) options.logger.warning(`file '${d.path}': reported missing ${asks} times for this version; not asking again until '${pusher}' sends a new version`);
      paths.push(d.path);
    }
    return paths;
  }

  /**
   * Logs a failed read of update `stamp` of `page` and, when the failure looks permanent (corrupt
   * index or archive, failed integrity check, hostile member: `isUnreadableUpdateError`), counts it in
   * the failure log, which survives restarts. 'give-up' once the count reaches `maxUpdateReadAttempts`.
   */
  private countReadFailure(page: string, stamp: number, key: string, error: EscaleError, what: string): 'retry' | 'give-up' {
    const max = this.options.maxUpdateReadAttempts ?? MAX_UPDATE_READ_ATTEMPTS;
    if (!isUnreadableUpdateError(error)) {
      this.options.logger.error(`failed to read update ${stamp} of page '${page}' (${what} not received; retried next round): ${error.message}`);
      return 'retry';
    }
    const attempts = this.updateFailures.recordFailure(key);
    if (attempts < max) {
      this.options.logger.error(`failed to read update ${stamp} of page '${page}' (${what} not received; attempt ${attempts} of ${max}, retried next round): ${error.message}`);
      return 'retry';
    }
    this.logGiveUp(page, stamp, error.message);
    return 'give-up';
  }

  /**
   * The one error line of a given-up update. What giving up does, and why it is safe: this client
   * stops fetching the update, reports the files it wanted from it missing (removed from the page's
   * persistent index, so that their pushers send them again in a new update: the pushers' local
   * files are the good copies, the unreadable archive is not one), and records itself as having
   * consumed it, so that the puller count can complete and the page is not blocked for its pushers
   * forever. The update is deleted only when that completes the count, as after a normal read.
   * No local file is written or deleted.
   */
  private logGiveUp(page: string, stamp: number, reason: string): void {
    this.options.logger.error(
      `giving up update ${stamp} of page '${page}': it cannot be read (${reason}); the files this client wanted from it are reported missing so that their pushers send them again, and this client counts as having read it so that the page is not blocked; no local file was changed`,
    );
  }

  /** The page cache brought up to date with the listed `.<P>.index` (re-read only when its stamp changed). */
  private async currentIndex(page: string, files: PageFiles, signal?: AbortSignal): Promise<PageCache> {
    const cache = this.pages.get(page);
    const stamp = stampOf(files.index);
    if (cache !== undefined && cache.stamp === stamp) return cache;
    if (files.index === undefined && cache !== undefined && !this.options.allowPageDeletion) return cache;
    const loaded = await this.relay.readPersistentIndex(page, signal);
    const next: PageCache = { entries: loaded.entries, spellings: loaded.spellings, kept: loaded.kept, stamp: loaded.stamp, ...(cache?.doneUpdate === undefined ? {} : { doneUpdate: cache.doneUpdate }) };
    this.pages.set(page, next);
    return next;
  }

  /**
   * Downloads the update archive (decrypting it to a private file first, so that Fernet's HMAC is
   * checked before anything is used), extracts it into `scratch`, then moves each wanted entry into
   * place after checking its plaintext checksum and that the local file did not change since the scan.
   */
  private async extractAndPlace(
    page: string,
    stamp: number,
    wanted: PullDecision[],
    spellings: ReadonlyMap<RelPath, RelayPath>,
    scratch: string,
    report: RoundReport,
    signal?: AbortSignal,
  ): Promise<{ got: RelPath[]; missing: RelPath[]; failure?: EscaleError }> {
    const { options, local } = this;
    // why: not recursive: a local root that vanished (unmounted disk) must not be created again here.
    await mkdir(scratch, { mode: 0o700 });
    const tree = join(scratch, 'files');
    let extracted: Map<RelPath, UnpackedFile>;
    try {
      let source: Readable;
      const raw = await this.relay.getUpdateData(page, stamp, signal);
      if (options.cipher) {
        const plainArchive = join(scratch, 'archive.tar.bz2');
        await pipeline(raw, options.cipher.decrypt(), createWriteStream(plainArchive, { mode: 0o600 }), signal ? { signal } : {});
        source = createReadStream(plainArchive);
      } else {
        source = raw;
      }
      const files = await unpackUpdate(source, tree, {
        maxBytes: options.maxUpdateBytes ?? (await updateByteLimit(options.scratchDir, options.maxPageSizeBytes)),
        maxEntries: options.maxUpdateEntries ?? 10_000_000,
        // why: members are hashed while they are written, so that placing them reads nothing again.
        algorithm: options.checksumAlgorithm,
        onRefused: (name, problem) => this.relay.refuseName(name, problem),
        ...(signal ? { signal } : {}),
      });
      extracted = new Map(files.map((f) => [f.path, f]));
    } catch (error) {
      if (signal?.aborted || !(error instanceof EscaleError) || hasCode(error, 'Unavailable', 'DiskFull', 'Aborted')) throw error;
      // why: unlike 0.7 (every wanted file reported missing, the update consumed at once), a failed
      // read is a failed transfer: the caller counts it and retries it a bounded number of rounds.
      return { got: [], missing: [], failure: error };
    }
    const got: RelPath[] = [];
    const missing: RelPath[] = [];
    const useChecksum = options.checksumAlgorithm !== null;
    for (const d of wanted) {
      signal?.throwIfAborted();
      const member = extracted.get(d.path);
      if (member === undefined) {
        missing.push(d.path);
        continue;
      }
      if (options.mode === 'conservative') await local.setAccess(d.path, 'w+');
      try {
        const tempFile = join(tree, ...d.path.split('/'));
        const spelling = spellings.get(d.path);
        const common = {
          path: d.path,
          ...(spelling === undefined ? {} : { spelling }),
          ...(useChecksum && d.record.checksum !== undefined ? { expectedChecksum: d.record.checksum } : {}),
          ...(options.useMtime && d.record.timestamp !== undefined ? { mtimeSec: d.record.timestamp } : {}),
          expectedPrior: d.local === undefined ? null : { size: d.local.size, mtimeMs: d.local.mtimeMs },
          ...(signal ? { signal } : {}),
        };
        // why: 10,000 small files: a rename each and one sync at the end, not two fsyncs each (measured 5 ms per fsync).
        const contentChecksum = options.checksumAlgorithm !== null && member.checksum !== undefined ? { algorithm: options.checksumAlgorithm, digest: member.checksum } : undefined;
        const placed: PlacedFile = local.adopt
          ? await local.adopt({ ...common, tempFile, ...(contentChecksum === undefined ? {} : { contentChecksum }) })
          : await local.write({ ...common, source: createReadStream(tempFile) });
        // why: recorded before the batch is flushed to disk: a crash in between leaves an older base, never a wrong one (the file is then changed against it).
        this.base.agree(d.path, agreedVersion(placed, d.record, placed.checksum));
        got.push(d.path);
      } catch (error) {
        if (signal?.aborted) throw error;
        if (hasCode(error, 'Conflict')) {
          options.logger.info(`local file '${d.path}' changed during the download; it will be compared again next round`);
          report.deferred += 1;
          continue;
        }
        // why: a full disk, an I/O error or a bug fails the whole page read: the update is not
        // consumed, so that the page (tracked, with back-off) is read again once it heals.
        if (!(error instanceof EscaleError) || hasCode(error, 'DiskFull', 'Unavailable', 'Internal')) throw error;
        // why: the archive member did not match its record: its pusher is asked to send it again.
        if (hasCode(error, 'Integrity')) missing.push(d.path);
        this.fileFailed(d.path, 'download', error, report, signal);
      }
    }
    if (got.length > 0) await local.flush?.();
    return { got, missing };
  }

  /**
   * Removes missing entries from `.<P>.index` so that their pushers send them again (relay-format.md P4.11); the
   * caller holds the page lock. Emptying a page needs `allow page deletion`.
   */
  private async requestMissing(page: string, missing: RelPath[], signal?: AbortSignal): Promise<void> {
    const { options, relay } = this;
    const current = await relay.readPersistentIndex(page, signal);
    const removed = missing.filter((path) => current.entries.delete(path));
    if (removed.length === 0) return;
    const cached = this.pages.get(page);
    // why: entries this client refuses (another client's names) are files of the page too: it is not empty.
    if (current.entries.size === 0 && current.kept.length === 0) {
      if (!options.allowPageDeletion) {
        options.logger.warning(`all the files of page '${page}' have disappeared; set 'allow page deletion = yes' to let escale delete the page`);
        return;
      }
      for (const path of removed) options.logger.info(`file '${path}' reported missing`);
      options.logger.warning(`removing index page '${page}'`);
      await relay.deletePersistentIndex(page, signal);
      this.pages.set(page, { entries: new Map(), spellings: new Map(), kept: [], stamp: '', ...(cached?.doneUpdate === undefined ? {} : { doneUpdate: cached.doneUpdate }) });
      return;
    }
    for (const path of removed) options.logger.info(`file '${path}' reported missing`);
    const stamp = await relay.writePersistentIndex(page, current.entries, signal, current);
    this.pages.set(page, { entries: current.entries, spellings: current.spellings, kept: current.kept, stamp, ...(cached?.doneUpdate === undefined ? {} : { doneUpdate: cached.doneUpdate }) });
  }

  /** Dry run of a page's read transaction: reads indices, takes no lock, writes nothing, reports the plan. */
  private async planPull(page: string, listed: PageFiles, local: Map<RelPath, LocalFile>, lookup: boolean, report: RoundReport, signal?: AbortSignal): Promise<{ received: number; missing: number }> {
    const { relay } = this;
    const index = (await relay.readPersistentIndex(page, signal)).entries;
    const stamps = [...listed.updates.keys()];
    const update = stamps.length === 1 && stamps[0] !== undefined ? await relay.readUpdateIndex(page, stamps[0], signal) : undefined;
    const fullPass = lookup || !this.pages.has(page);
    const content = fullPass ? new Map([...index, ...(update?.entries ?? [])]) : (update?.entries ?? new Map<RelPath, MetadataRecord>());
    for (const d of await this.decideEntries(content, local, this.pullContext(fullPass), report, signal)) {
      if (d.outcome !== 'want-new' && d.outcome !== 'want-update') continue;
      const action: Action = {
        kind: 'download',
        path: d.path,
        reason: d.outcome === 'want-new' ? 'new' : 'update',
        record: d.record,
        keepOnRelay: false,
        ...(d.local === undefined ? {} : { replaces: d.local }),
      };
      report.planned.push(action);
      this.options.onPlan?.(action);
    }
    return { received: 0, missing: 0 };
  }

  // ---------------------------------------------------------------- upload

  /**
   * The files the upload phase must look at: every file without a maintained index; else the files
   * that changed locally, those the last phase left waiting, and every file of a page whose index
   * changed since (another client's push, or a report of missing files, may want them sent). why: a
   * file unchanged against an unchanged index was found with nothing to send.
   */
  private uploadCandidates(snapshot: IndexSnapshot, local: Map<RelPath, LocalFile>, dirty: ReadonlySet<RelPath> | undefined): Map<RelPath, LocalFile> {
    const carry = this.uploadCarry;
    if (dirty === undefined || carry === undefined) return local;
    const changedPages = new Set<string>();
    for (const [page, files] of snapshot.pages) if (this.uploadStamps.get(page) !== stampOf(files.index)) changedPages.add(page);
    for (const page of this.uploadStamps.keys()) if (!snapshot.pages.has(page)) changedPages.add(page);
    const wanted = new Set([...dirty, ...carry]);
    if (changedPages.size === 0) return restrictTo(local, wanted);
    const out = new Map<RelPath, LocalFile>();
    for (const [path, file] of local) if (wanted.has(path) || changedPages.has(pageOf(path, this.options.scheme))) out.set(path, file);
    return out;
  }

  /** Runs the upload phase; returns the files left waiting (postponed pages), which the next round looks at again. */
  private async uploadPhase(local: ReadonlyMap<RelPath, LocalFile>, report: RoundReport, signal?: AbortSignal): Promise<Set<RelPath>> {
    const { options } = this;
    const queue = filesByPage(local.values(), options.scheme, (path) => this.local.access(path));
    const repeat = uploadRepeats(options.mode, options.priority) && !options.dryRun;
    let lastProgress = this.now();
    for (;;) {
      let progress = false;
      let postponed = 0;
      for (const [page, files] of queue) {
        signal?.throwIfAborted();
        const outcome = await this.onePage<PushOutcome>(page, 'update', report, { kind: 'done', sent: 0, rest: [] }, () => this.pushPage(page, files, report, signal), signal);
        if (outcome.kind === 'postponed') {
          postponed += 1;
          continue;
        }
        if (outcome.sent > 0) progress = true;
        if (outcome.rest.length === 0) queue.delete(page);
        else queue.set(page, outcome.rest);
      }
      if (queue.size === 0) return new Set();
      if (!repeat) {
        if (postponed > 0) report.deferred += postponed;
        return leftOver(queue);
      }
      if (progress) {
        lastProgress = this.now();
        continue;
      }
      const waited = this.now() - lastProgress;
      if (waited >= options.uploadMaxWaitSec * 1000) {
        const left = [...queue.values()].reduce((n, files) => n + files.length, 0);
        options.logger.info(`upload max wait (${options.uploadMaxWaitSec} s) reached with ${left} file(s) waiting on ${queue.size} postponed page(s); they wait for a later round`);
        report.deferred += queue.size;
        return leftOver(queue);
      }
      await this.sleep(Math.min(options.uploadRetryMs ?? 5000, options.uploadMaxWaitSec * 1000 - waited), signal);
    }
  }

  private async pushPage(page: string, files: LocalFile[], report: RoundReport, signal?: AbortSignal): Promise<PushOutcome> {
    const { options, relay } = this;
    if (options.dryRun) return this.planPush(page, files, report, signal);
    const before = await relay.pageFiles(page, signal);
    if (pendingStamps(before).length > 0) {
      // why: a page with nothing to send is done, not postponed: an upload client must not wait for others' downloads.
      if (await this.nothingToSend(page, before, files, report, signal)) return { kind: 'done', sent: 0, rest: [] };
      options.logger.debug(`page '${page}' has a pending update; postponed`);
      return { kind: 'postponed' };
    }
    const lock = await relay.lock(page, 'w', this.lockWait(signal));
    if (lock === 'busy') return { kind: 'postponed' };
    const stopHeartbeat = this.heartbeat(lock);
    try {
      // why: relay-format.md F-15: the pending-update check is repeated under the lock.
      const listed = await relay.pageFiles(page, signal);
      if (pendingStamps(listed).length > 0) {
        options.logger.debug(`page '${page}' has a pending update; postponed`);
        return { kind: 'postponed' };
      }
      // why: data without an update index is an orphan of a failed push, not a pending update (we hold the lock).
      const orphans = await relay.removeOrphans(page, listed, (t) => this.pushedData.has(`${page}\u0000${t}`), signal);
      if (orphans.kept > 0) {
        options.logger.debug(`page '${page}' has a recent orphan update data file of another client; postponed`);
        return { kind: 'postponed' };
      }
      const cache = await this.currentIndex(page, listed, signal);
      const batch = await this.selectBatch(files, cache.entries, report, signal);
      if (batch.send.length === 0) return { kind: 'done', sent: 0, rest: batch.rest };
      // why: a `T` above every one this client saw on the page, so that no reader mistakes the new update for one it is done with.
      const stamp = Math.max(Math.round(this.now() / 1000), (cache.doneUpdate?.t ?? 0) + 1, ...[...listed.updates.keys()].map((t) => t + 1));
      this.pushedData.add(`${page}\u0000${stamp}`);
      const changed: LocalFile[] = [];
      // why: names go into the index as it spells them (new ones into the folders as it spells them, else as the user spells them), so that 0.7 readers, which match bytes, find their files.
      const folders = folderSpellings(cache.spellings);
      const spellings = new Map(cache.spellings);
      for (const file of batch.send) {
        const inIndex = spellAs(file.path, cache.spellings, folders);
        const spelled = inIndex !== file.path ? inIndex : (this.local.spelling?.(file.path) ?? file.path);
        if (spelled !== file.path) spellings.set(file.path, spelled);
      }
      let send = batch.send;
      let sent: SentUpdate | undefined;
      while (sent === undefined && send.length > 0) {
        const attempt = await this.sendUpdate(page, stamp, send, cache, spellings, changed, report, signal);
        if (attempt.kind === 'sent') sent = attempt;
        else send = send.filter((file) => file.path !== attempt.without);
      }
      if (sent === undefined || sent.records.size === 0) {
        this.pushedData.delete(`${page}\u0000${stamp}`);
        return { kind: 'done', sent: 0, rest: [...changed, ...batch.rest] };
      }
      const { records, files: members } = sent;
      this.pushedData.delete(`${page}\u0000${stamp}`);
      let data = sent.data;
      if (data.mtimeMs === undefined) data = (await relay.pageFiles(page, signal)).updates.get(stamp)?.data ?? data;
      this.pages.set(page, { entries: sent.merged, spellings, kept: cache.kept, stamp: sent.indexStamp, doneUpdate: { t: stamp, data: stampOf(data) } });
      this.uploadStamps.set(page, sent.indexStamp);
      for (const [path, record] of records) {
        const file = members.get(path);
        if (file !== undefined) this.base.agree(path, agreedVersion(file, record, record.checksum));
      }
      options.logger.info(['successfully uploaded files:', ...transferReport([...records.keys()])].join('\n'));
      report.transferred += records.size;
      if (options.mode === 'conservative') for (const path of records.keys()) await this.local.setAccess(path, 'w-');
      return { kind: 'done', sent: records.size, rest: [...changed, ...batch.rest] };
    } finally {
      await stopHeartbeat();
      await lock.release();
    }
  }

  /** Whether every file of `files` is unchanged against the page's persistent index (read without the lock, not cached). */
  private async nothingToSend(page: string, listed: PageFiles, files: LocalFile[], report: RoundReport, signal?: AbortSignal): Promise<boolean> {
    const cache = this.pages.get(page);
    const entries = cache !== undefined && cache.stamp === stampOf(listed.index) ? cache.entries : (await this.relay.readPersistentIndex(page, signal)).entries;
    const batch = await this.selectBatch(files, entries, report, signal);
    return batch.send.length === 0 && batch.rest.length === 0;
  }

  /**
   * Undoes a failed push: deletes whatever of update `stamp` reached the relay (a failure here is
   * logged; the data stays known as ours and the next push or repair removes it), and puts back the
   * persistent index as it was when it was already rewritten.
   */
  private async rollBackPush(page: string, stamp: number, previous: PageCache | undefined): Promise<void> {
    // why: no abort signal: the rollback must run even when the round was cancelled.
    try {
      await this.relay.deleteUpdate(page, stamp);
      this.pushedData.delete(`${page}\u0000${stamp}`);
      // why: the persistent index may name the files already; restored so that this pusher sends them again.
      if (previous !== undefined) {
        if (previous.stamp === '') await this.relay.deletePersistentIndex(page);
        else await this.relay.writePersistentIndex(page, previous.entries, undefined, previous);
      }
    } catch (error) {
      this.options.logger.warning(`cannot remove the partial update ${stamp} of page '${page}' after a failed push: ${(error as Error).message}; it will be cleaned up later`);
    }
    this.needsRepair = true;
  }

  /** The next update's batch; files in their back-off, or whose checksum cannot be computed (tracked), are left out. */
  private async selectBatch(files: LocalFile[], read: ReadonlyMap<RelPath, MetadataRecord>, report: RoundReport, signal?: AbortSignal): Promise<ReturnType<typeof selectPushBatch>> {
    const { options } = this;
    const index = this.foreign.viewAll(read);
    const detectors = { useMtime: options.useMtime, useChecksum: options.checksumAlgorithm !== null };
    const ready: LocalFile[] = [];
    const throwaway = new Map<RelPath, LocalFile>();
    let budget = 0;
    let i = 0;
    // why: checksums are computed only for files the batch can still take (sync-rules.md R5.4: the batch stops early).
    for (; i < files.length && budget <= options.maxPageSizeBytes; i++) {
      const file = files[i] as LocalFile;
      const record = index.get(file.path);
      if (this.failures.blocked('file', file.path)) continue;
      let current: LocalFile | undefined | 'failed' = file;
      if (file.checksum === undefined && pushNeedsChecksum(file, record, detectors, this.base.versions.get(file.path))) current = await this.withChecksum(file, throwaway, report, signal);
      if (current === undefined || current === 'failed') continue;
      ready.push(current);
      if (record === undefined || !detectors.useMtime || record.timestamp !== mtimeSecOf(file.mtimeMs)) budget += file.size;
    }
    const batch = selectPushBatch({ ...detectors, files: ready, index, maxBytes: options.maxPageSizeBytes, base: this.base.versions, client: options.client });
    // why: files the batch leaves for a later update were not worked on: a failure of theirs is not cleared by this round.
    for (const file of batch.rest) this.failures.untried('file', file.path);
    for (const d of batch.decisions) if (d.identical !== undefined) this.agreeIdentical(d.file, d.identical);
    return { ...batch, rest: [...batch.rest, ...files.slice(i)] };
  }

  /**
   * Publishes update `stamp` of `page` with the files of `send` (the caller holds the page's write
   * lock): the archive, then the persistent index, then the update index (0.7's order, relay-format.md P4.8). Each
   * member is recorded only with the checksum of the bytes that went into the archive, and only when
   * the file was the same version from the start to the end of its read. A file that cannot be read,
   * or changed, before its member began is left out of the archive (`archiveMember`); one that fails
   * or changes while its member is being written spoils the archive: the update is deleted and the
   * caller tries again without it ('retry'). Other failures roll the push back and are thrown.
   */
  private async sendUpdate(
    page: string,
    stamp: number,
    send: LocalFile[],
    cache: PageCache,
    spellings: ReadonlyMap<RelPath, RelayPath>,
    changed: LocalFile[],
    report: RoundReport,
    signal?: AbortSignal,
  ): Promise<SentUpdate | { kind: 'retry'; without: RelPath }> {
    const { options, relay } = this;
    const records = new Map<RelPath, MetadataRecord>();
    const members = new Map<RelPath, LocalFile>();
    const spoiled: SpoiledMember[] = [];
    const sink: MemberSink = { records, members, changed, spoiled, report };
    // why: a synchronous iterable: the archive writer takes a small file, read at once, without a promise hop.
    const sources = (function* (engine: IndexEngine): Generator<ArchiveSource> {
      for (const file of send) {
        signal?.throwIfAborted();
        yield {
          // why: a member is named as the index spells its entry, so that 0.7 readers find it.
          path: spellings.get(file.path) ?? file.path,
          size: file.size,
          mtimeSec: mtimeSecOf(file.mtimeMs),
          open: () => engine.archiveMember(file, sink),
        };
      }
    })(this);
    const archive = packUpdate(sources, {
      ...(signal ? { signal } : {}),
      // why: one bzip2 stream, as 0.7 writes it, for readers that stop after the first (Python 2's bz2).
      ...(options.singleStreamArchives ? { segmentBytes: Number.POSITIVE_INFINITY } : {}),
    });
    let body: Readable = archive;
    if (options.cipher) {
      const encrypt = options.cipher.encrypt();
      archive.on('error', (error) => encrypt.destroy(error));
      body = archive.pipe(encrypt);
    }
    let indexTouched = false;
    try {
      let data: Entry;
      try {
        data = await relay.putUpdateData(page, stamp, body, signal);
      } finally {
        archive.destroy();
      }
      // why: a backend that stored the archive although its stream failed must not see it published.
      if (spoiled.length > 0) throw new EscaleError('Conflict', `update ${stamp} of page '${page}' holds a spoiled member`);
      if (records.size === 0) {
        await relay.deleteUpdate(page, stamp, signal);
        return { kind: 'sent', records, files: members, merged: cache.entries, indexStamp: cache.stamp, data };
      }
      const merged = new Map(cache.entries);
      for (const [path, record] of records) merged.set(path, record);
      // why: 0.7's order: data, then the persistent index, then the update index.
      indexTouched = true;
      const indexStamp = await relay.writePersistentIndex(page, merged, signal, { spellings, kept: cache.kept });
      await relay.writeUpdateIndex(page, stamp, records, [], signal, { spellings });
      return { kind: 'sent', records, files: members, merged, indexStamp, data };
    } catch (error) {
      const member = spoiled[0];
      if (member === undefined || indexTouched || signal?.aborted) {
        await this.rollBackPush(page, stamp, indexTouched ? cache : undefined);
        throw error;
      }
      // why: nothing was published (no index was written): the update only has to go before it is sent again without that member.
      await relay.deleteUpdate(page, stamp).catch((cleanup: unknown) => options.logger.warning(`cannot remove the abandoned update ${stamp} of page '${page}': ${(cleanup as Error).message}; it will be cleaned up later`));
      if (member.problem !== undefined) {
        this.failures.defer({ kind: 'file', path: member.file.path }, 'upload', `${member.problem}; the update is sent again without it`);
        if (member.after !== undefined) changed.push({ ...member.file, ...member.after });
      } else {
        this.fileFailed(member.file.path, 'read', member.error, report, signal);
      }
      return { kind: 'retry', without: member.file.path };
    }
  }

  /**
   * The content of one archive member, read as one consistent version of the file (see `sendUpdate`),
   * or undefined to leave the file out of the archive: it vanished, it cannot be read (a per-file
   * failure, reported with its cause; never zero-padded), or it changed during a read that ended
   * before the member began (small files are read whole first, synchronously).
   */
  private archiveMember(file: LocalFile, into: MemberSink): ArchiveContent | Promise<ArchiveContent> {
    const { options, local } = this;
    const record = (checksum: string | undefined): void => {
      into.records.set(file.path, pushedRecord(options.client, file.mtimeMs, checksum));
      into.members.set(file.path, file);
    };
    const leftOut = (problem: string, after: LocalFile | undefined): undefined => {
      this.failures.defer({ kind: 'file', path: file.path }, 'upload', `${problem}; it was left out of the update`);
      if (after !== undefined) into.changed.push(after);
      return undefined;
    };
    if (file.size <= SMALL_FILE_BYTES && local.readSmall !== undefined) {
      let read: ReturnType<NonNullable<LocalPort['readSmall']>>;
      try {
        // why: one buffer for every small file: the archive writer copies the bytes before the next file is read.
        read = local.readSmall(file.path, file.size + 1, this.smallFileBuffer);
      } catch (error) {
        this.fileFailed(file.path, 'read', error, into.report);
        return undefined;
      }
      if (read === undefined) return this.vanished(file);
      const problem = readProblem(file, read.after, read.data.length);
      if (problem !== undefined) return leftOut(problem, read.after === undefined ? undefined : localFileOf(read.after));
      record(this.checksumOf(read.data));
      return read.data;
    }
    return this.archiveStreamedMember(file, into, record, leftOut);
  }

  /** `archiveMember` for a file read as a stream: checked for consistency from its open to its end. */
  private async archiveStreamedMember(file: LocalFile, into: MemberSink, record: (checksum: string | undefined) => void, leftOut: (problem: string, after: LocalFile | undefined) => undefined): Promise<Readable | undefined> {
    const { options, local } = this;
    const consistent = new ConsistentRead(file.path, file, { algorithm: options.checksumAlgorithm, stat: () => local.stat(file.path) });
    const chunks = through(local.open(file.path, file.size), consistent.transform())[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let first: IteratorResult<Buffer>;
    try {
      // why: the first read opens the file: one that cannot be opened is left out before its member header is written.
      first = await chunks.next();
    } catch (error) {
      if (consistent.problem !== undefined) return leftOut(consistent.problem, await this.statOf(file.path));
      const translated = fromSystemError(error, file.path);
      if (hasCode(translated, 'NotFound')) return this.vanished(file);
      this.fileFailed(file.path, 'read', translated, into.report);
      return undefined;
    }
    const statOf = (path: RelPath): Promise<LocalFile | undefined> => this.statOf(path);
    return Readable.from(
      (async function* () {
        try {
          for (let next = first; next.done !== true; next = await chunks.next()) yield next.value;
        } catch (error) {
          into.spoiled.push({ file, ...(consistent.problem === undefined ? { error } : { problem: consistent.problem, after: await statOf(file.path) }) });
          throw error;
        }
        record(consistent.checksum);
      })(),
      { objectMode: false },
    );
  }

  /** The lowercase hex digest of `data` with the checksum algorithm, or undefined when checksums are off. */
  private checksumOf(data: Buffer): string | undefined {
    return this.options.checksumAlgorithm === null ? undefined : createChecksum(this.options.checksumAlgorithm).update(data).digest('hex');
  }

  private async statOf(path: RelPath): Promise<LocalFile | undefined> {
    const after = await this.local.stat(path).catch(() => undefined);
    return after === undefined ? undefined : localFileOf(after);
  }

  private vanished(file: LocalFile): undefined {
    this.options.logger.warning(`file '${file.path}' vanished before it could be sent`);
    return undefined;
  }

  /** Dry run of a page's push: reads the index, takes no lock, reports the files of the next update. */
  private async planPush(page: string, files: LocalFile[], report: RoundReport, signal?: AbortSignal): Promise<PushOutcome> {
    const index = (await this.relay.readPersistentIndex(page, signal)).entries;
    const batch = await this.selectBatch(files, index, report, signal);
    for (const d of batch.decisions) {
      if (d.outcome === 'skip-unchanged') continue;
      const action: Action = { kind: 'upload', path: d.file.path, reason: d.outcome === 'send-new' ? 'new' : 'update', local: d.file };
      report.planned.push(action);
      this.options.onPlan?.(action);
    }
    return { kind: 'done', sent: 0, rest: [] };
  }

  // ---------------------------------------------------------------- helpers

  private lockWait(signal?: AbortSignal): { pollMs: number; maxWaitMs: number; signal?: AbortSignal } {
    const pollMs = this.options.lockPollMs ?? 60_000;
    return { pollMs, maxWaitMs: this.options.lockWaitMs ?? pollMs, ...(signal ? { signal } : {}) };
  }

  /** Rewrites a held lock every third of `lock timeout`, so that no other client takes it for stale. */
  private heartbeat(lock: PageLock): () => Promise<void> {
    const timeout = this.options.lockTimeoutSec;
    if (timeout === null) return async () => undefined;
    let inFlight: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      inFlight = this.relay.refreshLock(lock.page, lock.mode).catch((error: unknown) => this.options.logger.debug(`cannot refresh the lock of page '${lock.page}': ${String(error)}`));
    }, Math.max(500, (timeout * 1000) / 3));
    timer.unref();
    // why: a refresh still on its way when the lock is released would write the lock back, for good.
    return async () => {
      clearInterval(timer);
      await inFlight;
    };
  }

  /**
   * The local files (a copy the round may change) and, with a maintained index, the paths changed
   * since the previous look (undefined: every path counts as changed).
   */
  private async scanLocal(signal?: AbortSignal): Promise<{ local: Map<RelPath, LocalFile>; dirty?: Set<RelPath> }> {
    if (this.local.view === undefined) return { local: await scanToMap(this.local, this.failures, this.options.logger, signal) };
    const view = await this.local.view(signal, scanProblemHandler(this.failures, this.options.logger), failingFolders(this.failures));
    for (const entry of this.failures.list()) if (entry.kind === 'folder') this.failures.tried('folder', entry.path);
    const local = new Map<RelPath, LocalFile>();
    for (const [path, file] of view.files) local.set(path, localFileOf(file));
    return view.changed === undefined ? { local } : { local, dirty: new Set(view.changed) };
  }

  /** Removes extraction folders left by a crash (`.escale-index-*` in the scratch folder). */
  private async cleanScratch(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.options.scratchDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(EXTRACTION_PREFIX)) await rm(join(this.options.scratchDir, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/**
 * The default plaintext limit of one update: the space available on the file system of `dir` less a
 * reserve of 5 % of it (at least 64 MiB); when that cannot be read, 16 × `maxpagesize` with a 4 GiB floor.
 */
export async function updateByteLimit(dir: string, maxPageSizeBytes: number): Promise<number> {
  try {
    const fs = await statfs(dir);
    const available = fs.bavail * fs.bsize;
    // why: an update larger than the free space fails anyway; refusing it early keeps the disk usable.
    return Math.max(0, available - Math.max(64 * 1024 ** 2, available * 0.05));
  } catch {
    return Math.max(16 * maxPageSizeBytes, 4 * 1024 ** 3);
  }
}

/** The files of the pages still queued. */
function leftOver(queue: ReadonlyMap<string, readonly LocalFile[]>): Set<RelPath> {
  return new Set([...queue.values()].flatMap((files) => files.map((file) => file.path)));
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
