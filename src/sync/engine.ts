import { pipeline, type Readable, type Transform } from 'node:stream';
import { hasCode, type EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';
import type { RelayPath, RelPath } from '../core/relpath.js';
import { BaseStore, type BaseVersion } from '../local/base-store.js';
import { sameIdentity, type FileIdentity } from '../local/file-identity.js';
import { agreedVersion } from './base.js';
import { ConsistentRead } from './consistent-read.js';
import { classifyFailure, FailureTracker } from './failure-tracker.js';
import { pushedRecord, type AccessRule, type Action, type LocalFile, type MetadataRecord, type PushOptions, type RemoteFile, type SyncMode } from './model.js';
import type { PlanInput } from './planner.js';
import { MAX_RESEND_REQUESTS, ResendLog } from './resend-log.js';

/** A file found by the local scan (already filtered). */
export interface ScannedLocal {
  readonly path: RelPath;
  readonly size: number;
  readonly mtimeMs: number;
  /** Status-change time and inode number (see `FileIdentity`); the scanner and `stat` give them. */
  readonly ctimeMs?: number;
  readonly ino?: string;
}

/** A file written into place by `LocalPort.write`/`adopt`: its identity after its mtime was set and it was renamed, and its checksum. */
export type PlacedFile = FileIdentity & { readonly checksum?: string };

/** The base state as the engines use it (implemented by `BaseStore`). */
export interface BasePort {
  /** Every path's base (the planners' `base` input). */
  readonly versions: ReadonlyMap<RelPath, BaseVersion>;
  /** Records that this client and the relay agree on `version` of `path`. */
  agree(path: RelPath, version: BaseVersion): void;
  /** Makes the recorded changes durable (once per round). */
  flush(): void;
}

/** The relay as the engine needs it (implemented by the placeholder protocol). */
export interface RelayPort<Snapshot = unknown> {
  crawl(signal?: AbortSignal): Promise<Snapshot>;
  /**
   * The records of the snapshot's resources. A resource whose record cannot be read (for a reason
   * that is not the relay as a whole failing) is left out and given to `onFailure`.
   */
  describe(snapshot: Snapshot, signal?: AbortSignal, onFailure?: (path: RelPath, error: unknown) => void): Promise<Map<RelPath, RemoteFile>>;
  usedBytes(snapshot: Snapshot): number;
  /** Pushes a resource; `path` may be spelled otherwise than in NFC (a new resource takes that spelling, an existing one keeps the relay's). */
  push(path: RelayPath, record: MetadataRecord, body: () => Promise<Readable>, options?: PushOptions): Promise<'pushed' | 'locked'>;
  beginPull(path: RelPath, signal?: AbortSignal): Promise<PullHandle | 'locked' | 'gone'>;
  consume(path: RelPath, signal?: AbortSignal): Promise<'consumed' | 'locked' | 'gone'>;
  registerPuller(path: RelPath, checksum: string, signal?: AbortSignal): Promise<'registered' | 'changed' | 'locked' | 'gone'>;
  /** Deletes the placeholder of a version whose data left too early, so that its pusher sends it again (row resend-missing). */
  requestResend(path: RelPath, record: MetadataRecord, signal?: AbortSignal): Promise<'requested' | 'changed' | 'has-data' | 'gone' | 'locked'>;
  /**
   * Repairs interrupted transfers: every lock ('all'), or only locks past the lock timeout
   * ('expired'); a resource whose repair failed (not the relay as a whole) is listed in `failed`.
   */
  repair(
    snapshot: Snapshot,
    local: { checksum(path: RelPath): Promise<string | undefined> },
    signal?: AbortSignal,
    scope?: 'all' | 'expired',
  ): Promise<{ readonly repaired: readonly unknown[]; readonly failed?: readonly { readonly path: RelPath; readonly error: unknown }[] }>;
}

/** A pull in progress: the relay lock is held until commit or abort. */
export interface PullHandle {
  readonly record?: MetadataRecord;
  /** The relay's name of the resource when it is not spelled in NFC: a new local file takes it. */
  readonly spelling?: RelayPath;
  open(signal?: AbortSignal): Promise<Readable>;
  commit(options: { keep: boolean }, signal?: AbortSignal): Promise<void>;
  abort(signal?: AbortSignal): Promise<void>;
}

/** The local repository as the engine needs it. */
export interface LocalPort {
  /**
   * Streams the filtered upload candidates (dot files excluded). Entries the walk must skip (an
   * unreadable folder, an unsafe name) go to `onProblem` when given, else they are logged.
   */
  scan(signal?: AbortSignal, onProblem?: (path: string, error: EscaleError) => void): AsyncIterable<ScannedLocal>;
  /** The plaintext checksum (through the cache); undefined when checksums are disabled or the file vanished. */
  checksum(file: ScannedLocal, signal?: AbortSignal): Promise<string | undefined>;
  /** The checksum when the cache already holds it for this mtime (as `checksum` would return it), without I/O; else undefined. */
  cachedChecksum?(file: ScannedLocal): string | undefined;
  /** Checksum of a path, scanning it first; undefined when missing or checksums are off. */
  checksumOfPath(path: RelPath, signal?: AbortSignal): Promise<string | undefined>;
  /** Opens a local file for upload. */
  open(path: RelPath, sizeHint?: number): Readable;
  /**
   * Optional: reads at most `limit` bytes of a small file at once, without a stream, and stats it
   * after the read; undefined when it vanished or is not a regular file; throws (PermissionDenied,
   * Unavailable...) when it cannot be read. With `into` (at least `limit` bytes), the data is read
   * there (a view of it is returned, valid until the caller reuses the buffer).
   */
  readSmall?(path: RelPath, limit: number, into?: Buffer): { data: Buffer; after: ScannedLocal | undefined } | undefined;
  /**
   * Writes downloaded content atomically (temp file, checksum check, unchanged-target check, rename,
   * mtime). An existing file is replaced in its own spelling; a new one takes `spelling` (the relay's
   * name of it, when not in NFC).
   */
  write(request: {
    path: RelPath;
    spelling?: RelayPath;
    source: Readable;
    expectedChecksum?: string;
    mtimeSec?: number;
    expectedPrior: { size: number; mtimeMs: number } | null;
    signal?: AbortSignal;
  }): Promise<PlacedFile>;
  /**
   * Optional: moves a finished private file (same file system) into place with the checks of
   * `write`, by rename and without syncing (see `flush`). Index downloads use it when present.
   */
  adopt?(request: {
    path: RelPath;
    spelling?: RelayPath;
    tempFile: string;
    expectedChecksum?: string;
    /** The digest of `tempFile` computed while it was written (not read again when the algorithm matches). */
    contentChecksum?: { algorithm: string; digest: string };
    mtimeSec?: number;
    expectedPrior: { size: number; mtimeMs: number } | null;
    signal?: AbortSignal;
  }): Promise<PlacedFile>;
  /** Optional: makes every adopted file durable at once (before the relay copy is given up). */
  flush?(): Promise<void>;
  /** Current stat of a local path, or undefined. */
  stat(path: RelPath): Promise<ScannedLocal | undefined>;
  /** Optional: why a relay file `path` cannot be written in this folder (its full path would be too long), or undefined. */
  nameProblem?(path: RelPath): string | undefined;
  /** Optional: how the folder spells a scanned file when not in NFC (a new relay resource takes that spelling). */
  spelling?(path: RelPath): RelayPath | undefined;
  access(path: RelPath): AccessRule;
  setAccess(path: RelPath, modifiers: string): Promise<void>;
}

/** Streaming encryption of file contents. */
export interface CipherPort {
  readonly name: string;
  readonly hasIntegrity: boolean;
  encrypt(): Transform;
  decrypt(): Transform;
}

/** What the planner receives (the engine fills it, always with a phase). */
export type PlannerInput = PlanInput & { readonly phase: NonNullable<PlanInput['phase']> };

/** Settings of one client's engine. */
export interface EngineOptions {
  readonly client: string;
  readonly mode: SyncMode;
  readonly pullerCount?: number;
  readonly useMtime: boolean;
  readonly useChecksum: boolean;
  /** Hash algorithm of the checksums (the bytes of each upload are hashed with it); needed when `useChecksum`. */
  readonly checksumAlgorithm?: string;
  /** The base state (default: in memory, empty at start). */
  readonly base?: BasePort;
  readonly quotaBytes?: number;
  readonly cipher: CipherPort | null;
  readonly acceptsRemote: (path: RelPath) => boolean;
  readonly plan: (input: PlannerInput) => Action[];
  readonly logger: Logger;
  /** How many transfers run at once (default 1); actions on the same path always run in plan order. */
  readonly concurrency?: number;
  /** Print the plan instead of executing it. */
  readonly dryRun?: boolean;
  /** Receives each planned action in dry-run mode. */
  readonly onPlan?: (action: Action) => void;
  /** Where per-file failures are recorded (default: a tracker of its own, logging to `logger`). */
  readonly failures?: FailureTracker;
  /** Told when the round enters a phase (the daemon's status model). */
  readonly onPhase?: (phase: RoundPhase) => void;
  /** This client's re-send requests (row resend-missing), kept across restarts by the daemon; default: in memory. */
  readonly resends?: ResendLog;
  /** How many times one version is asked for again before this client gives up asking (default MAX_RESEND_REQUESTS). */
  readonly maxResendRequests?: number;
}

/** What a round is doing: reading both sides, downloading, uploading. */
export type RoundPhase = 'scanning' | 'pulling' | 'pushing';

/** What one round did. */
export interface RoundReport {
  transferred: number;
  /** Files (or pages) that failed in this round; each is tracked and retried with back-off. */
  failed: number;
  planned: Action[];
  /** Transient failures (locks busy, network) that the next round retries. */
  deferred: number;
  /** Files, folders or pages failing or stuck after the round (refused names are not counted). */
  failing?: number;
}

/**
 * Reports an entry that the local scan had to skip: an unsafe name is a warning (as before), any
 * other problem (an unreadable folder) is a failure of that folder, tracked like a file's.
 */
export function scanProblemHandler(failures: FailureTracker, logger: Logger): (path: string, error: EscaleError) => void {
  return (path, error) => {
    if (hasCode(error, 'InvalidName')) logger.warning(`cannot read '${path}': ${error.message}`);
    else failures.fail({ kind: 'folder', path }, 'scan', error);
  };
}

const MIB = 1024 * 1024;

/** Executes sync rounds for one client on the placeholder protocol: crawl, repair, download, upload. */
export class PlaceholderEngine<Snapshot = unknown> {
  private needsRepair = true;
  private warnedNoIntegrity = false;
  /** Per-file failures and their back-off. */
  readonly failures: FailureTracker;
  private readonly resends: ResendLog;
  /** why: a warning note that the plan repeats every round (metadata left on the relay) is logged once per path and text. */
  private readonly warned = new ReportOnce();
  private readonly base: BasePort;
  /** why: a base that cannot be saved is reported once per cause. */
  private readonly reported = new ReportOnce();

  constructor(
    private readonly relay: RelayPort<Snapshot>,
    private readonly local: LocalPort,
    private readonly options: EngineOptions,
  ) {
    this.failures = options.failures ?? new FailureTracker({ logger: options.logger });
    this.resends = options.resends ?? ResendLog.inMemory();
    this.base = options.base ?? BaseStore.inMemory();
  }

  /** Asks for the sanity checks (repair) before the next round, as after any error. */
  requestRepair(): void {
    this.needsRepair = true;
  }

  /**
   * Runs one round. A file that fails (its checksum, its relay record, its transfer) is tracked in
   * `failures` and the round goes on with the others; throws only when the round cannot go on: the
   * listing fails, the relay as a whole fails (`failsWholeRelay`), the signal fires (the caller's
   * error policy decides).
   */
  async round(signal?: AbortSignal): Promise<RoundReport> {
    try {
      return await this.phases(signal);
    } finally {
      // why: once per round, so that a round of many transfers costs one sync of the base file.
      if (!this.options.dryRun) saveBase(this.base, this.options.logger, this.reported);
    }
  }

  private async phases(signal?: AbortSignal): Promise<RoundReport> {
    const { options, relay, failures } = this;
    const report: RoundReport = { transferred: 0, failed: 0, planned: [], deferred: 0 };
    if (options.cipher && !options.cipher.hasIntegrity && !this.warnedNoIntegrity) {
      this.warnedNoIntegrity = true;
      options.logger.warning(`encryption '${options.cipher.name}' has no integrity check: a damaged or tampered file cannot be detected; fernet is recommended`);
    }
    failures.beginRound();
    options.onPhase?.('scanning');
    let snapshot = await relay.crawl(signal);
    if (!options.dryRun) {
      // why: every round, locks without owner or unreadable ones expire once past the lock timeout;
      // a full repair (every own lock) runs at start and after an error.
      const scope = this.needsRepair ? 'all' : 'expired';
      const repairs = await relay.repair(snapshot, { checksum: (path) => this.local.checksumOfPath(path, signal) }, signal, scope);
      for (const { path, error } of repairs.failed ?? []) this.fileFailed(path, 'repair the interrupted transfer of', error, report);
      if (scope === 'all' || repairs.repaired.length > 0) snapshot = await relay.crawl(signal);
    }
    this.needsRepair = false;
    let [local, remote] = await this.readBothSides(snapshot, report, signal);
    this.resends.settle((path) => remote.get(path)?.record, options.client);
    if (options.dryRun) {
      // why: a dry run changes nothing, so both phases are planned from the same snapshot.
      await this.addChecksums(local, remote, (path) => remote.has(path), report, signal);
      await this.execute(options.plan(this.plannerInput('both', local, remote)), report, snapshot, signal);
      return this.finish(report);
    }

    if (options.mode !== 'upload') {
      await this.addChecksums(local, remote, (path) => remote.get(path)?.record !== undefined, report, signal);
      const actions = options.plan(this.plannerInput('download', local, remote));
      options.onPhase?.('pulling');
      await this.execute(actions, report, snapshot, signal);
      if (report.transferred > 0 && options.mode !== 'download') {
        options.onPhase?.('scanning');
        snapshot = await relay.crawl(signal);
        [local, remote] = await this.readBothSides(snapshot, report, signal);
      }
    }
    if (options.mode !== 'download') {
      await this.addChecksums(local, remote, (path) => remote.has(path), report, signal);
      const actions = options.plan(this.plannerInput('upload', local, remote));
      options.onPhase?.('pushing');
      await this.execute(actions, report, snapshot, signal);
    }
    return this.finish(report);
  }

  /** Ends a completed round: clears the files that were retried and did not fail; counts those still failing. */
  private finish(report: RoundReport): RoundReport {
    this.failures.endRound(true);
    report.failing = this.failures.failingCount;
    // why: a warning that did not come again this round is news when it comes back.
    const warnedNow = new Set(report.planned.filter((a) => a.kind === 'note' && a.level === 'warning').map((a) => a.path as string));
    this.warned.retain((path) => warnedNow.has(path));
    return report;
  }

  /**
   * The relay records and the local files of a snapshot, without the paths in back-off (or failed
   * this round): the planner never sees them, so nothing is planned for them on either side.
   */
  private async readBothSides(snapshot: Snapshot, report: RoundReport, signal?: AbortSignal): Promise<[Map<RelPath, LocalFile>, Map<RelPath, RemoteFile>]> {
    const { failures } = this;
    const remote = await this.relay.describe(snapshot, signal, (path, error) => this.fileFailed(path, 'read the relay record of', error, report));
    const local = await this.scanLocal(signal);
    failures.forgetAbsent('file', (path) => local.has(path as RelPath) || remote.has(path as RelPath));
    // why: only tracked paths are looked at, so that an idle round costs nothing per file.
    for (const path of failures.blockedOf('file')) {
      local.delete(path as RelPath);
      remote.delete(path as RelPath);
    }
    return [local, remote];
  }

  /** Records the failure of one file (see `classifyFailure`); rethrows what must end the round. */
  private fileFailed(path: RelPath, action: string, error: unknown, report: RoundReport, signal?: AbortSignal): void {
    const verdict = classifyFailure(error, signal);
    if (verdict === 'aborted') throw error;
    if (verdict === 'deferred') {
      report.deferred += 1;
      this.options.logger.info(`'${path}' is deferred to the next round: ${(error as Error).message}`);
      return;
    }
    if (this.failures.fail({ kind: 'file', path }, action, error)) report.failed += 1;
    if (verdict === 'relay') throw error;
  }

  private plannerInput(phase: PlannerInput['phase'], local: Map<RelPath, LocalFile>, remote: Map<RelPath, RemoteFile>): PlannerInput {
    const { options } = this;
    return {
      phase,
      mode: options.mode,
      client: options.client,
      ...(options.pullerCount === undefined ? {} : { pullerCount: options.pullerCount }),
      useMtime: options.useMtime,
      useChecksum: options.useChecksum,
      local,
      remote,
      access: (path) => this.local.access(path),
      acceptsRemote: options.acceptsRemote,
      resends: {
        mayAsk: (path, record) => this.resends.asks(path, record) < (options.maxResendRequests ?? MAX_RESEND_REQUESTS),
        pending: (path) => this.resends.get(path)?.record,
      },
      base: this.base.versions,
    };
  }

  private async scanLocal(signal?: AbortSignal): Promise<Map<RelPath, LocalFile>> {
    return scanToMap(this.local, this.failures, this.options.logger, signal);
  }

  /**
   * Fills in checksums for the local files that `wanted` selects (they are compared with relay
   * records). A file that cannot be read fails alone: it leaves both maps for this round.
   */
  private async addChecksums(local: Map<RelPath, LocalFile>, remote: Map<RelPath, RemoteFile>, wanted: (path: RelPath) => boolean, report: RoundReport, signal?: AbortSignal): Promise<void> {
    if (!this.options.useChecksum) return;
    for (const [path, file] of local) {
      if (file.checksum !== undefined || !wanted(path)) continue;
      const cached = this.local.cachedChecksum?.(file);
      if (cached !== undefined) {
        local.set(path, { ...file, checksum: cached });
        continue;
      }
      try {
        const checksum = await this.local.checksum(file, signal);
        if (checksum === undefined) local.delete(path);
        else local.set(path, { ...file, checksum });
      } catch (error) {
        if (hasCode(error, 'NotFound')) {
          this.options.logger.warning(`file '${path}' vanished while escale was reading it`);
          local.delete(path);
          continue;
        }
        // why: planned without its local side, the file could be taken for absent and downloaded over.
        local.delete(path);
        remote.delete(path);
        this.fileFailed(path, 'read', error, report, signal);
      }
    }
  }

  /**
   * Runs the actions in plan order, up to `options.concurrency` transfers at once (actions on the
   * same path stay in order). A failed action fails its file only (tracked, retried with back-off);
   * the first error that ends the round (the relay as a whole fails, the signal fires) stops new
   * transfers and is thrown once the running ones have finished.
   */
  private async execute(actions: Action[], report: RoundReport, snapshot: Snapshot, signal?: AbortSignal): Promise<void> {
    const { options } = this;
    // why: uploads reserve their size when they start, so that parallel uploads cannot overshoot the quota.
    let usedBytes = options.quotaBytes === undefined ? 0 : this.relay.usedBytes(snapshot);
    let quotaReported = false;
    const width = Math.max(1, Math.floor(options.concurrency ?? 1));
    const running = new Set<Promise<void>>();
    const lastOnPath = new Map<RelPath, Promise<void>>();
    let fatal: { error: unknown } | undefined;
    for (const action of actions) {
      if (action.kind === 'record-base') {
        // why: bookkeeping only: not a transfer, not shown by dry runs, and never a reason to call a round busy.
        if (!options.dryRun) this.base.agree(action.path, agreedVersion(action.local, action.record, action.local.checksum));
        continue;
      }
      report.planned.push(action);
      if (options.dryRun) {
        options.onPlan?.(action);
        continue;
      }
      if (action.kind === 'note') {
        if (action.level !== 'warning' || this.warned.isNew(action.path, action.message)) options.logger[action.level](action.message);
        else options.logger.debug(action.message);
        continue;
      }
      if (action.kind === 'upload' && options.quotaBytes !== undefined && usedBytes + action.local.size > options.quotaBytes) {
        if (!quotaReported) {
          options.logger.info(`quota exceeded (used: ${(usedBytes / MIB).toFixed(1)} of ${(options.quotaBytes / MIB).toFixed(1)} MB); no more files can be sent`);
          quotaReported = true;
        }
        continue;
      }
      while (running.size >= width && fatal === undefined) await Promise.race(running);
      if (fatal !== undefined) break;
      signal?.throwIfAborted();
      const reserved = action.kind === 'upload' ? action.local.size : 0;
      usedBytes += reserved;
      const before = lastOnPath.get(action.path);
      const task: Promise<void> = (async () => {
        if (before !== undefined) await before;
        try {
          const outcome = await this.apply(action, signal);
          if (outcome === 'done') report.transferred += 1;
          else {
            usedBytes -= reserved;
            if (outcome === 'deferred') report.deferred += 1;
          }
        } catch (error) {
          usedBytes -= reserved;
          try {
            this.fileFailed(action.path, ACTION_VERBS[action.kind], error, report, signal);
          } catch (ending) {
            fatal ??= { error: ending };
          }
        }
      })().finally(() => {
        running.delete(task);
        if (lastOnPath.get(action.path) === task) lastOnPath.delete(action.path);
      });
      running.add(task);
      lastOnPath.set(action.path, task);
    }
    await Promise.all(running);
    if (fatal !== undefined) throw fatal.error;
  }

  private async apply(action: Exclude<Action, { kind: 'note' | 'record-base' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    switch (action.kind) {
      case 'download':
        return this.download(action, signal);
      case 'upload':
        return this.upload(action, signal);
      case 'consume':
        return this.consume(action, signal);
      case 'register-puller':
        return this.registerPuller(action, signal);
      case 'request-resend':
        return this.requestResend(action, signal);
      case 'set-access':
        await this.local.setAccess(action.path, action.modifiers);
        return 'skipped';
    }
  }

  private async download(action: Extract<Action, { kind: 'download' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { options, local, relay } = this;
    const { logger } = options;
    logger.info(action.reason === 'new' ? `downloading file '${action.path}'` : `updating local file '${action.path}'`);
    if (options.mode === 'conservative') await local.setAccess(action.path, 'w+');
    const handle = await relay.beginPull(action.path, signal);
    if (handle === 'locked') {
      logger.warning(`failed to download '${action.path}': the file is locked by another client; retrying next round`);
      return 'deferred';
    }
    if (handle === 'gone') {
      logger.debug(`file '${action.path}' left the relay before it could be downloaded`);
      return 'skipped';
    }
    // why: the record re-read under our lock is the truth; the planned one may be a round old.
    const record = handle.record ?? action.record;
    let placed: PlacedFile;
    try {
      const raw = await handle.open(signal);
      const source = options.cipher ? through(raw, options.cipher.decrypt()) : raw;
      const prior = action.replaces ? { size: action.replaces.size, mtimeMs: action.replaces.mtimeMs } : null;
      placed = await local.write({
        path: action.path,
        ...(handle.spelling === undefined ? {} : { spelling: handle.spelling }),
        source,
        ...(options.useChecksum && record?.checksum ? { expectedChecksum: record.checksum } : {}),
        ...(options.useMtime && record?.timestamp !== undefined ? { mtimeSec: record.timestamp } : {}),
        expectedPrior: prior,
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      // why: release our lock with a fresh signal, so that even an interrupted pull leaves no lock.
      await handle.abort().catch((abortError: unknown) => logger.error(`cannot release the lock of '${action.path}': ${String(abortError)}`));
      if (hasCode(error, 'Conflict')) {
        logger.info(`local file '${action.path}' changed during the download; it will be compared again next round`);
        return 'deferred';
      }
      if (hasCode(error, 'NotFound') && !signal?.aborted) {
        // why: 0.7 locks are not atomic: another puller may take the last copy while ours is read.
        logger.info(`file '${action.path}' vanished during the download (the relay copy or its local folder); it will be compared again next round`);
        return 'deferred';
      }
      throw error;
    }
    await handle.commit({ keep: action.keepOnRelay });
    this.resends.forget(action.path);
    if (record !== undefined) this.base.agree(action.path, agreedVersion(placed, record, placed.checksum));
    logger.debug(`file '${action.path}' successfully downloaded`);
    return 'done';
  }

  /**
   * Sends one local file. The record announces the checksum of the version about to be read (the
   * planned one when the file kept its identity since the scan, else computed again); the bytes sent
   * are checked against it and against the file's identity after the read (`ConsistentRead`), and a
   * file that changed meanwhile is rolled back by the relay (data and record removed under the lock)
   * and sent again in a later round: a record never describes other bytes than those stored.
   */
  private async upload(action: Extract<Action, { kind: 'upload' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { options, local, relay } = this;
    const { logger } = options;
    const current = await local.stat(action.path);
    if (!current) {
      logger.warning(`file '${action.path}' vanished before it could be sent`);
      return 'skipped';
    }
    const planned = action.local.checksum !== undefined && sameIdentity(current, action.local) ? action.local.checksum : undefined;
    const checksum = options.useChecksum ? (planned ?? (await local.checksum(current, signal))) : undefined;
    const record = pushedRecord(options.client, current.mtimeMs, checksum);
    const read = new ConsistentRead(action.path, current, {
      algorithm: options.useChecksum ? options.checksumAlgorithm : null,
      ...(checksum === undefined ? {} : { announced: checksum }),
      stat: () => local.stat(action.path),
    });
    logger.info(`uploading file '${action.path}'`);
    const body = async (): Promise<Readable> => {
      const plain = through(local.open(action.path, current.size), read.transform());
      return options.cipher ? through(plain, options.cipher.encrypt()) : plain;
    };
    try {
      // why: a resource new to the relay is pushed in the user's spelling (what 0.7 clients, which match bytes, see).
      const outcome = await relay.push(local.spelling?.(action.path) ?? action.path, record, body, {
        ...(options.cipher ? {} : { size: current.size }),
        ...(signal ? { signal } : {}),
        ...(action.replacesData ? { replacesData: true } : {}),
        confirm: () => read.confirm(),
      });
      if (outcome === 'locked') {
        logger.warning(`failed to upload '${action.path}': the file is locked by another client; retrying next round`);
        return 'deferred';
      }
    } catch (error) {
      if (read.problem === undefined || signal?.aborted) throw error;
      logger.info(`file '${action.path}' changed while it was uploaded (${read.problem}); the upload was rolled back and the file will be sent again in a later round`);
      return 'deferred';
    } finally {
      if (options.mode === 'conservative') await local.setAccess(action.path, 'w-');
    }
    this.base.agree(action.path, agreedVersion(current, record, read.checksum ?? checksum));
    logger.debug(`file '${action.path}' successfully uploaded`);
    return 'done';
  }

  private async consume(action: Extract<Action, { kind: 'consume' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { logger } = this.options;
    logger.info(`deleting duplicate or outdated file '${action.path}'`);
    const outcome = await this.relay.consume(action.path, signal);
    if (outcome === 'locked') return 'deferred';
    if (outcome !== 'consumed') return 'skipped';
    if (action.local !== undefined && action.record !== undefined) this.base.agree(action.path, agreedVersion(action.local, action.record, action.local.checksum));
    return 'done';
  }

  private async registerPuller(action: Extract<Action, { kind: 'register-puller' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { logger, client } = this.options;
    const outcome = await this.relay.registerPuller(action.path, action.record.checksum, signal);
    switch (outcome) {
      case 'registered':
        this.base.agree(action.path, agreedVersion(action.local, action.record, action.local.checksum));
        logger.info(`file '${action.path}' is already up to date here; '${client}' recorded as one of its pullers`);
        return 'done';
      case 'locked':
        logger.debug(`file '${action.path}' is locked by a transfer; its puller record waits for the next round`);
        return 'deferred';
      case 'changed':
        logger.debug(`file '${action.path}' changed on the relay since the plan; compared again next round`);
        return 'deferred';
      case 'gone':
        return 'skipped';
    }
  }

  /**
   * Row resend-missing: deletes the placeholder of a version whose data left the relay before
   * `puller count` pullers had it, so that its pusher sends it again. Warns on the first request of
   * a version (a puller on the relay does not record itself) and when it stops asking for it.
   */
  private async requestResend(action: Extract<Action, { kind: 'request-resend' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { logger, pullerCount } = this.options;
    const outcome = await this.relay.requestResend(action.path, action.record, signal);
    if (outcome === 'locked') return 'deferred';
    if (outcome !== 'requested') {
      logger.debug(`file '${action.path}' changed on the relay since the plan (${outcome}); no re-send asked`);
      return 'skipped';
    }
    const asks = this.resends.recordAsk(action.path, action.record);
    const max = this.options.maxResendRequests ?? MAX_RESEND_REQUESTS;
    const pusher = action.record.pusher ?? '(unknown)';
    const pulled = action.record.pullers.filter((name) => name !== '');
    if (asks === 1) {
      logger.warning(
        `file '${action.path}' left the relay before ${String(pullerCount)} clients had it (pullers recorded: ${pulled.length === 0 ? 'none' : pulled.join(', ')}), and this client does not have it: a puller on the relay does not record itself (an escale 0.7 client with 'puller count' of 2 or more, or a client with a lower puller count); asked '${pusher}' to send it again`,
      );
    } else logger.info(`file '${action.path}' left the relay again before this client got it; asked '${pusher}' to send it again (${asks} of ${max})`);
    if (asks >= max) {
      logger.warning(`file '${action.path}': asked ${asks} times for this version and another puller took it each time; not asking again until '${pusher}' sends a new version`);
    }
    return 'done';
  }
}

/**
 * Saves the base state at the end of a round. A failure (disk full, folder gone) is a warning, once
 * per cause: it loses only recent agreements, and the paths concerned are decided by the rules
 * without a base until their next transfer; the round's own work stands.
 */
export function saveBase(base: BasePort, logger: Logger, reported: ReportOnce): void {
  try {
    base.flush();
    if (reported.clear('base')) logger.info('the base state is saved again');
  } catch (error) {
    const message = (error as Error).message;
    if (reported.isNew('base', message)) logger.warning(`cannot save the base state (what this client last agreed on with the relay): ${message}; retried after each round`);
  }
}

/** The planner's view of a scanned file (identity included, no checksum yet). */
export function localFileOf(file: ScannedLocal): LocalFile {
  return {
    path: file.path,
    size: file.size,
    mtimeMs: file.mtimeMs,
    ...(file.ctimeMs === undefined ? {} : { ctimeMs: file.ctimeMs }),
    ...(file.ino === undefined ? {} : { ino: file.ino }),
  };
}

/**
 * Pipes `source` into `transform` and returns the transform as the stream to read. An error of
 * either one is kept on the returned stream (destroyed with that error) for its reader to see.
 */
export function through(source: Readable, transform: Transform): Readable {
  // why: with `source.pipe(transform)`, a small file can be read to its end and the transform's
  // final check (Fernet's HMAC) fail before the reader has attached its 'error' listener: the
  // error was then unhandled and crashed the process. pipeline() listens from the start.
  pipeline(source, transform, () => undefined);
  return transform;
}

/** How a failed action is named in the log (`failed to <verb> 'path'`). */
const ACTION_VERBS: Record<Exclude<Action, { kind: 'note' }>['kind'], string> = {
  download: 'download',
  upload: 'upload',
  consume: 'remove the relay copy of',
  'register-puller': 'record this client as puller of',
  'request-resend': 'ask for a re-send of',
  'record-base': 'record the agreed version of',
  'set-access': 'set the access modifiers of',
};

/**
 * Scans the local folder into a map; entries the scan skips are reported through
 * `scanProblemHandler`, and the folders that failed before and read now are tried again.
 */
export async function scanToMap(local: LocalPort, failures: FailureTracker, logger: Logger, signal?: AbortSignal): Promise<Map<RelPath, LocalFile>> {
  const files = new Map<RelPath, LocalFile>();
  for await (const file of local.scan(signal, scanProblemHandler(failures, logger))) files.set(file.path, localFileOf(file));
  // why: every scan tries every folder again; one that failed before and was read this time is cleared at the end of the round.
  for (const entry of failures.list()) if (entry.kind === 'folder') failures.tried('folder', entry.path);
  return files;
}
