import { getMaxListeners, setMaxListeners } from 'node:events';
import { pipeline, Readable, type Transform } from 'node:stream';
import { hasCode, type EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';
import type { RelayPath, RelPath } from '../core/relpath.js';
import { BaseStore, type BaseVersion } from '../local/base-store.js';
import { sameIdentity, type FileIdentity } from '../local/file-identity.js';
import { agreedVersion } from './base.js';
import { ConsistentRead } from './consistent-read.js';
import { classifyFailure, FailureTracker } from './failure-tracker.js';
import { ForeignChecksums } from './foreign-checksums.js';
import type { AccessRule, Action, LocalFile, SyncMode } from './model.js';
import { pushedRecord, type MetadataRecord, type PushOptions, type RemoteFile } from '../relay/protocol/records.js';
import type { PlanInput } from './planner.js';
import { MAX_RESEND_REQUESTS, ResendLog } from './resend-log.js';
import { changedRemotePaths, restrictTo } from './round-scope.js';

/** A file found by the local scan (already filtered). */
export interface ScannedLocal {
  readonly path: RelPath;
  readonly size: number;
  readonly mtimeMs: number;
  /** Status-change time and inode number (see `FileIdentity`); the scanner and `stat` give them. */
  readonly ctimeMs?: number;
  readonly ino?: string;
}

/** The local files as a maintained index has them, and what changed since the previous view. */
export interface LocalView {
  readonly files: ReadonlyMap<RelPath, ScannedLocal>;
  /** Paths that appeared, vanished or changed since the previous view; undefined when unknown (the first view). */
  readonly changed?: ReadonlySet<RelPath>;
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
   * Optional: whether the relay may have changed since `snapshot` was listed, at the cost of one
   * small request (the change marker our pushers touch); true when it cannot tell.
   */
  changedSince?(snapshot: Snapshot, signal?: AbortSignal): Promise<boolean>;
  /** Optional: tells the other clients that this one changed the relay (touches the change marker); never throws. */
  markChanged?(signal?: AbortSignal): Promise<void>;
  /**
   * The records of the snapshot's resources. A resource whose record cannot be read (for a reason
   * that is not the relay as a whole failing) is left out and given to `onFailure`.
   */
  describe(snapshot: Snapshot, signal?: AbortSignal, onFailure?: (path: RelPath, error: unknown) => void): Promise<Map<RelPath, RemoteFile>>;
  usedBytes(snapshot: Snapshot): number;
  /**
   * Optional: the snapshot with what this client changed on the relay since it was taken applied,
   * instead of a new listing; undefined when that is not known (a change whose reply was lost).
   */
  patched?(snapshot: Snapshot): Snapshot | undefined;
  /**
   * Pushes a resource; `path` may be spelled otherwise than in NFC (a new resource takes that
   * spelling, an existing one keeps the relay's). `body` gives the content, as a stream or at once.
   */
  push(path: RelayPath, record: MetadataRecord, body: () => Promise<Readable | Uint8Array>, options?: PushOptions): Promise<'pushed' | 'locked'>;
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
  /**
   * Optional: the local files from a maintained index (a running client that follows file-system
   * events), with the paths changed since the previous view; the engines then plan only those.
   * Entries the walk must skip go to `onProblem` as for `scan`; `lookAgainAt` (disk paths: the
   * folders that failed) are read again whatever the events say, as a full scan would.
   */
  view?(signal?: AbortSignal, onProblem?: (path: string, error: EscaleError) => void, lookAgainAt?: readonly string[]): Promise<LocalView>;
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
  /**
   * `transferInput`: the source is private to the stream, which may move the chunks' memory to a
   * cipher thread (the engine sets it for local file reads, never for relay streams, whose chunks
   * a backend may still hold).
   */
  encrypt(options?: { readonly transferInput?: boolean }): Transform;
  decrypt(options?: { readonly transferInput?: boolean }): Transform;
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

/** How the caller wants a round run. */
export interface RoundOptions {
  /** List the relay even when its change marker says nothing changed (the daemon does so every `refresh`). */
  readonly list?: boolean;
}

/** Both sides as one read of a round found them, and the paths to plan (undefined: all). */
interface RoundSides<Snapshot> {
  readonly snapshot: Snapshot;
  readonly remote: ReadonlyMap<RelPath, RemoteFile>;
  readonly files: ReadonlyMap<RelPath, ScannedLocal>;
  readonly dirty?: ReadonlySet<RelPath>;
  /** For a read again after downloads: what changed since the round's first read. */
  readonly delta?: ReadonlySet<RelPath>;
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
/** Files up to this size are sent from one read (`LocalPort.readSmall`), not through a read stream. */
const SMALL_FILE_BYTES = 64 * 1024;

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
  /** Records whose checksums another algorithm made are decided without them. */
  private readonly foreign: ForeignChecksums;
  /** What the last completed round read of both sides (the next one plans only what changed since). */
  private last: { readonly snapshot: Snapshot; readonly remote: ReadonlyMap<RelPath, RemoteFile> } | undefined;
  /** Paths the last round acted on: planned again next round. */
  private carry = new Set<RelPath>();
  /** Whether this round changed the relay besides its transfers (a repair): the change marker is touched. */
  private repairedRelay = false;

  constructor(
    private readonly relay: RelayPort<Snapshot>,
    private readonly local: LocalPort,
    private readonly options: EngineOptions,
  ) {
    this.failures = options.failures ?? new FailureTracker({ logger: options.logger });
    this.resends = options.resends ?? ResendLog.inMemory();
    this.base = options.base ?? BaseStore.inMemory();
    this.foreign = new ForeignChecksums(options.useChecksum ? (options.checksumAlgorithm ?? null) : null, options.logger);
  }

  /** Asks for the sanity checks (repair) before the next round, as after any error. */
  requestRepair(): void {
    this.needsRepair = true;
  }

  /** Whether the relay may have changed since the last round's listing (one small request; true when it cannot tell). */
  async relayChanged(signal?: AbortSignal): Promise<boolean> {
    const last = this.last;
    if (last === undefined || this.relay.changedSince === undefined) return true;
    return this.relay.changedSince(last.snapshot, signal);
  }

  /**
   * Runs one round. A file that fails (its checksum, its relay record, its transfer) is tracked in
   * `failures` and the round goes on with the others; throws only when the round cannot go on: the
   * listing fails, the relay as a whole fails (`failsWholeRelay`), the signal fires (the caller's
   * error policy decides).
   *
   * The relay is listed unless its change marker says nothing changed since the last listing
   * (`options.list` forces a listing: the daemon does every `refresh`). When the local side comes
   * from a maintained index (`LocalPort.view`), only the paths that changed on either side since
   * the last round, or that the last round acted on or failed, are planned: an idle round costs
   * nothing per file.
   */
  async round(signal?: AbortSignal, options: RoundOptions = {}): Promise<RoundReport> {
    try {
      return await this.phases(signal, options);
    } catch (error) {
      // why: a round cut short leaves no trustworthy "before" for the next one: it plans every path.
      this.last = undefined;
      throw error;
    } finally {
      // why: once per round, so that a round of many transfers costs one sync of the base file.
      if (!this.options.dryRun) saveBase(this.base, this.options.logger, this.reported);
    }
  }

  private async phases(signal: AbortSignal | undefined, roundOptions: RoundOptions): Promise<RoundReport> {
    const { options, relay, failures } = this;
    const report: RoundReport = { transferred: 0, failed: 0, planned: [], deferred: 0 };
    if (options.cipher && !options.cipher.hasIntegrity && !this.warnedNoIntegrity) {
      this.warnedNoIntegrity = true;
      options.logger.warning(`encryption '${options.cipher.name}' has no integrity check: a damaged or tampered file cannot be detected; fernet is recommended`);
    }
    failures.beginRound();
    options.onPhase?.('scanning');
    const last = this.last;
    const reuse = last !== undefined && roundOptions.list !== true && !this.needsRepair && relay.changedSince !== undefined && !(await relay.changedSince(last.snapshot, signal));
    let snapshot = reuse ? last.snapshot : await relay.crawl(signal);
    if (!options.dryRun && !reuse) {
      // why: every round, locks without owner or unreadable ones expire once past the lock timeout;
      // a full repair (every own lock) runs at start and after an error.
      const scope = this.needsRepair ? 'all' : 'expired';
      const repairs = await relay.repair(snapshot, { checksum: (path) => this.local.checksumOfPath(path, signal) }, signal, scope);
      for (const { path, error } of repairs.failed ?? []) this.fileFailed(path, 'repair the interrupted transfer of', error, report);
      // why: one listing per round: what the repair changed is applied to it (a new one only when that is not known).
      snapshot = await this.afterOwnChanges(snapshot, signal);
      if (repairs.repaired.length > 0) this.repairedRelay = true;
    }
    this.needsRepair = false;
    let sides = await this.readBothSides(snapshot, report, signal);
    let [local, remote] = this.scoped(sides);
    this.resends.settle((path) => sides.remote.get(path)?.record, options.client);
    if (options.dryRun) {
      // why: a dry run changes nothing, so both phases are planned from the same snapshot.
      await this.addChecksums(local, remote, (path) => remote.has(path), report, signal);
      await this.execute(options.plan(this.plannerInput('both', local, remote)), report, snapshot, signal);
      return this.finish(report, sides);
    }

    if (options.mode !== 'upload') {
      await this.addChecksums(local, remote, (path) => remote.get(path)?.record !== undefined, report, signal);
      const actions = options.plan(this.plannerInput('download', local, remote));
      options.onPhase?.('pulling');
      await this.execute(actions, report, snapshot, signal);
      if (report.transferred > 0 && options.mode !== 'download') {
        options.onPhase?.('scanning');
        snapshot = await this.afterOwnChanges(snapshot, signal);
        sides = await this.readBothSides(snapshot, report, signal, sides);
        [local, remote] = this.scoped(sides);
      }
    }
    if (options.mode !== 'download') {
      await this.addChecksums(local, remote, (path) => remote.has(path), report, signal);
      const actions = options.plan(this.plannerInput('upload', local, remote));
      options.onPhase?.('pushing');
      await this.execute(actions, report, snapshot, signal);
    }
    return this.finish(report, sides);
  }

  /** The round's snapshot with this client's own changes applied (`RelayPort.patched`), or a new listing when they are not known. */
  private async afterOwnChanges(snapshot: Snapshot, signal?: AbortSignal): Promise<Snapshot> {
    return this.relay.patched?.(snapshot) ?? (await this.relay.crawl(signal));
  }

  /**
   * Ends a completed round: tells the other clients when the relay changed, clears the files that
   * were retried and did not fail, counts those still failing, and keeps what the next round needs
   * to plan only what changes.
   */
  private async finish(report: RoundReport, sides: RoundSides<Snapshot>): Promise<RoundReport> {
    this.failures.endRound(true);
    report.failing = this.failures.failingCount;
    // why: a warning that did not come again this round is news when it comes back (a path not planned this round keeps its warning).
    const warnedNow = new Set(report.planned.filter((a) => a.kind === 'note' && a.level === 'warning').map((a) => a.path as string));
    this.warned.retain((path) => warnedNow.has(path) || (sides.dirty !== undefined && !sides.dirty.has(path as RelPath)));
    // why: a path acted on (or deferred) is planned again next round, whatever changes; so is one that
    // changed while this round downloaded (seen by the upload phase only, never planned for download).
    this.carry = new Set([...report.planned.filter((a) => a.kind !== 'note').map((a) => a.path), ...(sides.delta ?? [])]);
    this.last = { snapshot: sides.snapshot, remote: sides.remote };
    if ((report.transferred > 0 || this.repairedRelay) && !this.options.dryRun) await this.relay.markChanged?.();
    this.repairedRelay = false;
    return report;
  }

  /**
   * The relay records and the local files of a snapshot, and the paths to plan: every one (the
   * first round, a local side without index) or those that changed since the round before
   * (`before`: earlier in this round), were acted on last round, are failing or wait for a re-send.
   */
  private async readBothSides(snapshot: Snapshot, report: RoundReport, signal?: AbortSignal, before?: RoundSides<Snapshot>): Promise<RoundSides<Snapshot>> {
    const { failures } = this;
    const previous = before ?? this.last;
    const onFailure = (path: RelPath, error: unknown): void => this.fileFailed(path, 'read the relay record of', error, report);
    const remote = previous !== undefined && snapshot === previous.snapshot ? previous.remote : this.foreignViewed(await this.relay.describe(snapshot, signal, onFailure));
    const handler = scanProblemHandler(failures, this.options.logger);
    const view = this.local.view ? await this.local.view(signal, handler, failingFolders(failures)) : { files: await scanToMap(this.local, failures, this.options.logger, signal) };
    if (this.local.view) for (const entry of failures.list()) if (entry.kind === 'folder') failures.tried('folder', entry.path);
    failures.forgetAbsent('file', (path) => view.files.has(path as RelPath) || remote.has(path as RelPath));
    // why: what changed since the previous read (last round, or this round's first read).
    const delta = previous === undefined || view.changed === undefined ? undefined : new Set(view.changed);
    if (delta !== undefined && previous !== undefined && remote !== previous.remote) for (const path of changedRemotePaths(previous.remote, remote)) delta.add(path);
    let dirty: Set<RelPath> | undefined;
    if (delta !== undefined && (before === undefined || before.dirty !== undefined)) {
      dirty = new Set(delta);
      for (const path of before?.dirty ?? this.carry) dirty.add(path);
      for (const entry of failures.list()) if (entry.kind === 'file') dirty.add(entry.path as RelPath);
      for (const path of this.resends.paths()) dirty.add(path);
    }
    return { snapshot, remote, files: view.files, ...(dirty === undefined ? {} : { dirty }), ...(before !== undefined && delta !== undefined ? { delta } : {}) };
  }

  /** The relay records with the checksums another algorithm made hidden (see ForeignChecksums). */
  private foreignViewed(remote: Map<RelPath, RemoteFile>): Map<RelPath, RemoteFile> {
    for (const [path, file] of remote) {
      const seen = file.record === undefined ? undefined : this.foreign.view(file.record);
      if (seen !== file.record) remote.set(path, { ...file, record: seen as MetadataRecord });
    }
    return remote;
  }

  /**
   * The planner's maps for the paths to plan, without the paths in back-off (or failed this round):
   * the planner never sees them, so nothing is planned for them on either side.
   */
  private scoped(sides: RoundSides<Snapshot>): [Map<RelPath, LocalFile>, Map<RelPath, RemoteFile>] {
    const local = new Map<RelPath, LocalFile>();
    const files = sides.dirty === undefined ? sides.files : restrictTo(sides.files, sides.dirty);
    for (const [path, file] of files) local.set(path, localFileOf(file));
    const remote = sides.dirty === undefined ? new Map(sides.remote) : restrictTo(sides.remote, sides.dirty);
    // why: only tracked paths are looked at, so that an idle round costs nothing per file.
    for (const path of this.failures.blockedOf('file')) {
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
        local.set(path, localFileOf(file, cached));
        continue;
      }
      try {
        const checksum = await this.local.checksum(file, signal);
        if (checksum === undefined) local.delete(path);
        else local.set(path, localFileOf(file, checksum));
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
    // why: each transfer in flight may listen to the round's signal a few times (streams, calls).
    if (signal !== undefined) setMaxListeners(Math.max(getMaxListeners(signal), 10 + 4 * width), signal);
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
    const record = handle.record === undefined ? action.record : this.foreign.view(handle.record);
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
    // why: agreed before the relay is told: a kill between the two must not leave a downloaded version
    // without its base (it would look like a local edit); an unregistered puller is found again (D4-register).
    if (record !== undefined) this.base.agree(action.path, agreedVersion(placed, record, placed.checksum));
    await handle.commit({ keep: action.keepOnRelay });
    this.resends.forget(action.path);
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
    const body = async (): Promise<Readable | Uint8Array> => {
      if (current.size <= SMALL_FILE_BYTES && local.readSmall !== undefined) {
        // why: a small file is read in one go and judged at once (no stream of one chunk); a file
        // replaced since, or vanished, fails here, before anything of it is sent.
        const small = local.readSmall(action.path, current.size + 1);
        const data = small?.data ?? Buffer.alloc(0);
        read.whole(data, small?.after);
        return options.cipher ? through(Readable.from([data]), options.cipher.encrypt()) : data;
      }
      const plain = through(local.open(action.path, current.size), read.transform());
      // why: transferInput: the file's chunks pass through `read` unchanged and nobody else holds them.
      return options.cipher ? through(plain, options.cipher.encrypt({ transferInput: true })) : plain;
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
      // why: with a back-off, so that a file always being written (a log) is not read whole every round.
      this.failures.defer({ kind: 'file', path: action.path }, 'upload', `${read.problem}; the upload was rolled back`);
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
    const outcome = await this.relay.requestResend(action.path, this.foreign.original(action.record), signal);
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

/** The planner's view of a scanned file (identity included), with `checksum` when given. */
export function localFileOf(file: ScannedLocal, checksum?: string): LocalFile {
  const { path, size, mtimeMs, ctimeMs, ino } = file;
  // why: one per local file in a round; the usual shapes are literals, every field in the object
  // (a spread of optional fields made a dictionary-mode object of ~400 bytes per file).
  if (ctimeMs !== undefined && ino !== undefined) return checksum === undefined ? { path, size, mtimeMs, ctimeMs, ino } : { path, size, mtimeMs, ctimeMs, ino, checksum };
  const local: { -readonly [K in keyof LocalFile]: LocalFile[K] } = { path, size, mtimeMs };
  if (ctimeMs !== undefined) local.ctimeMs = ctimeMs;
  if (ino !== undefined) local.ino = ino;
  if (checksum !== undefined) local.checksum = checksum;
  return local;
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
/** The folders the tracker holds as failing (read again every round, as every full scan does). */
export function failingFolders(failures: FailureTracker): string[] {
  return failures.list().filter((entry) => entry.kind === 'folder').map((entry) => entry.path);
}

export async function scanToMap(local: LocalPort, failures: FailureTracker, logger: Logger, signal?: AbortSignal): Promise<Map<RelPath, LocalFile>> {
  const files = new Map<RelPath, LocalFile>();
  for await (const file of local.scan(signal, scanProblemHandler(failures, logger))) files.set(file.path, localFileOf(file));
  // why: every scan tries every folder again; one that failed before and was read this time is cleared at the end of the round.
  for (const entry of failures.list()) if (entry.kind === 'folder') failures.tried('folder', entry.path);
  return files;
}
