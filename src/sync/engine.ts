import { pipeline, type Readable, type Transform } from 'node:stream';
import { EscaleError, hasCode, isRetryable } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RelPath } from '../core/relpath.js';
import { pushedRecord, type AccessRule, type Action, type LocalFile, type MetadataRecord, type RemoteFile, type SyncMode } from './model.js';
import type { PlanInput } from './planner.js';

/** A file found by the local scan (already filtered). */
export interface ScannedLocal {
  readonly path: RelPath;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The relay as the engine needs it (implemented by the placeholder protocol). */
export interface RelayPort<Snapshot = unknown> {
  crawl(signal?: AbortSignal): Promise<Snapshot>;
  describe(snapshot: Snapshot, signal?: AbortSignal): Promise<Map<RelPath, RemoteFile>>;
  usedBytes(snapshot: Snapshot): number;
  push(path: RelPath, record: MetadataRecord, body: () => Promise<Readable>, size: number | undefined, signal?: AbortSignal): Promise<'pushed' | 'locked'>;
  beginPull(path: RelPath, signal?: AbortSignal): Promise<PullHandle | 'locked' | 'gone'>;
  consume(path: RelPath, signal?: AbortSignal): Promise<'consumed' | 'locked' | 'gone'>;
  registerPuller(path: RelPath, checksum: string, signal?: AbortSignal): Promise<'registered' | 'changed' | 'locked' | 'gone'>;
  repair(snapshot: Snapshot, local: { checksum(path: RelPath): Promise<string | undefined> }, signal?: AbortSignal): Promise<unknown>;
}

/** A pull in progress: the relay lock is held until commit or abort. */
export interface PullHandle {
  readonly record?: MetadataRecord;
  open(signal?: AbortSignal): Promise<Readable>;
  commit(options: { keep: boolean }, signal?: AbortSignal): Promise<void>;
  abort(signal?: AbortSignal): Promise<void>;
}

/** The local repository as the engine needs it. */
export interface LocalPort {
  /** Streams the filtered upload candidates (dot files excluded). */
  scan(signal?: AbortSignal): AsyncIterable<ScannedLocal>;
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
   * after the read; undefined when it cannot be read (vanished, not a file...).
   */
  readSmall?(path: RelPath, limit: number): { data: Buffer; after: ScannedLocal | undefined } | undefined;
  /** Writes downloaded content atomically (temp file, checksum check, unchanged-target check, rename, mtime). */
  write(request: {
    path: RelPath;
    source: Readable;
    expectedChecksum?: string;
    mtimeSec?: number;
    expectedPrior: { size: number; mtimeMs: number } | null;
    signal?: AbortSignal;
  }): Promise<{ size: number; checksum?: string }>;
  /**
   * Optional: moves a finished private file (same file system) into place with the checks of
   * `write`, by rename and without syncing (see `flush`). Index downloads use it when present.
   */
  adopt?(request: {
    path: RelPath;
    tempFile: string;
    expectedChecksum?: string;
    /** The digest of `tempFile` computed while it was written (not read again when the algorithm matches). */
    contentChecksum?: { algorithm: string; digest: string };
    mtimeSec?: number;
    expectedPrior: { size: number; mtimeMs: number } | null;
    signal?: AbortSignal;
  }): Promise<{ size: number; checksum?: string }>;
  /** Optional: makes every adopted file durable at once (before the relay copy is given up). */
  flush?(): Promise<void>;
  /** Current stat of a local path, or undefined. */
  stat(path: RelPath): Promise<ScannedLocal | undefined>;
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
}

/** What one round did. */
export interface RoundReport {
  transferred: number;
  failed: number;
  planned: Action[];
  /** Transient failures (locks busy, network) that the next round retries. */
  deferred: number;
}

const MIB = 1024 * 1024;

/** Executes sync rounds for one client on the placeholder protocol: crawl, repair, download, upload. */
export class PlaceholderEngine<Snapshot = unknown> {
  private needsRepair = true;
  private warnedNoIntegrity = false;

  constructor(
    private readonly relay: RelayPort<Snapshot>,
    private readonly local: LocalPort,
    private readonly options: EngineOptions,
  ) {}

  /** Asks for the sanity checks (repair) before the next round, as after any error. */
  requestRepair(): void {
    this.needsRepair = true;
  }

  /** Runs one round. Throws on errors that abort the round (the caller's error policy decides). */
  async round(signal?: AbortSignal): Promise<RoundReport> {
    const { options, relay } = this;
    const report: RoundReport = { transferred: 0, failed: 0, planned: [], deferred: 0 };
    if (options.cipher && !options.cipher.hasIntegrity && !this.warnedNoIntegrity) {
      this.warnedNoIntegrity = true;
      options.logger.warning(`encryption '${options.cipher.name}' has no integrity check: a damaged or tampered file cannot be detected; fernet is recommended`);
    }
    let snapshot = await relay.crawl(signal);
    if (this.needsRepair && !options.dryRun) {
      await relay.repair(snapshot, { checksum: (path) => this.local.checksumOfPath(path, signal) }, signal);
      snapshot = await relay.crawl(signal);
    }
    this.needsRepair = false;
    let remote = await relay.describe(snapshot, signal);
    let local = await this.scanLocal(signal);
    if (options.dryRun) {
      // why: a dry run changes nothing, so both phases are planned from the same snapshot.
      await this.addChecksums(local, (path) => remote.has(path), signal);
      await this.execute(options.plan(this.plannerInput('both', local, remote)), report, snapshot, signal);
      return report;
    }

    if (options.mode !== 'upload') {
      await this.addChecksums(local, (path) => remote.get(path)?.record !== undefined, signal);
      const actions = options.plan(this.plannerInput('download', local, remote));
      await this.execute(actions, report, snapshot, signal);
      if (report.transferred > 0 && options.mode !== 'download') {
        local = await this.scanLocal(signal);
        snapshot = await relay.crawl(signal);
        remote = await relay.describe(snapshot, signal);
      }
    }
    if (options.mode !== 'download') {
      await this.addChecksums(local, (path) => remote.has(path), signal);
      const actions = options.plan(this.plannerInput('upload', local, remote));
      await this.execute(actions, report, snapshot, signal);
    }
    return report;
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
    };
  }

  private async scanLocal(signal?: AbortSignal): Promise<Map<RelPath, LocalFile>> {
    const files = new Map<RelPath, LocalFile>();
    for await (const file of this.local.scan(signal)) files.set(file.path, { path: file.path, size: file.size, mtimeMs: file.mtimeMs });
    return files;
  }

  /** Fills in checksums for the local files that `wanted` selects (they are compared with relay records). */
  private async addChecksums(local: Map<RelPath, LocalFile>, wanted: (path: RelPath) => boolean, signal?: AbortSignal): Promise<void> {
    if (!this.options.useChecksum) return;
    for (const [path, file] of local) {
      if (file.checksum !== undefined || !wanted(path)) continue;
      const cached = this.local.cachedChecksum?.(file);
      if (cached !== undefined) {
        local.set(path, { path: file.path, size: file.size, mtimeMs: file.mtimeMs, checksum: cached });
        continue;
      }
      try {
        const checksum = await this.local.checksum(file, signal);
        if (checksum === undefined) local.delete(path);
        else local.set(path, { ...file, checksum });
      } catch (error) {
        if (!hasCode(error, 'NotFound')) throw error;
        this.options.logger.warning(`file '${path}' vanished while escale was reading it`);
        local.delete(path);
      }
    }
  }

  /**
   * Runs the actions in plan order, up to `options.concurrency` transfers at once (actions on the
   * same path stay in order). The first error that aborts the round stops new transfers; it is
   * thrown once the running ones have finished.
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
      report.planned.push(action);
      if (options.dryRun) {
        options.onPlan?.(action);
        continue;
      }
      if (action.kind === 'note') {
        options.logger[action.level](action.message);
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
          if (signal?.aborted || !(error instanceof EscaleError) || !isHandledPerFile(error)) {
            fatal ??= { error };
            return;
          }
          report.failed += 1;
          const verb = action.kind === 'upload' ? 'upload' : action.kind === 'register-puller' ? 'record this client as puller of' : 'download';
          options.logger.error(`failed to ${verb} '${action.path}': ${error.message}`);
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

  private async apply(action: Exclude<Action, { kind: 'note' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    switch (action.kind) {
      case 'download':
        return this.download(action, signal);
      case 'upload':
        return this.upload(action, signal);
      case 'consume':
        return this.consume(action, signal);
      case 'register-puller':
        return this.registerPuller(action, signal);
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
    try {
      const raw = await handle.open(signal);
      const source = options.cipher ? through(raw, options.cipher.decrypt()) : raw;
      const prior = action.replaces ? { size: action.replaces.size, mtimeMs: action.replaces.mtimeMs } : null;
      await local.write({
        path: action.path,
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
      throw error;
    }
    await handle.commit({ keep: action.keepOnRelay });
    logger.debug(`file '${action.path}' successfully downloaded`);
    return 'done';
  }

  private async upload(action: Extract<Action, { kind: 'upload' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { options, local, relay } = this;
    const { logger } = options;
    const current = await local.stat(action.path);
    if (!current) {
      logger.warning(`file '${action.path}' vanished before it could be sent`);
      return 'skipped';
    }
    const checksum = options.useChecksum ? (action.local.checksum ?? (await local.checksum(current, signal))) : undefined;
    const record = pushedRecord(options.client, current.mtimeMs, checksum);
    logger.info(`uploading file '${action.path}'`);
    const body = async (): Promise<Readable> => {
      const plain = local.open(action.path, current.size);
      return options.cipher ? through(plain, options.cipher.encrypt({ transferInput: true })) : plain;
    };
    try {
      const outcome = await relay.push(action.path, record, body, options.cipher ? undefined : current.size, signal);
      if (outcome === 'locked') {
        logger.warning(`failed to upload '${action.path}': the file is locked by another client; retrying next round`);
        return 'deferred';
      }
    } finally {
      if (options.mode === 'conservative') await local.setAccess(action.path, 'w-');
    }
    logger.debug(`file '${action.path}' successfully uploaded`);
    return 'done';
  }

  private async consume(action: Extract<Action, { kind: 'consume' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { logger } = this.options;
    logger.info(`deleting duplicate or outdated file '${action.path}'`);
    const outcome = await this.relay.consume(action.path, signal);
    if (outcome === 'locked') return 'deferred';
    return outcome === 'consumed' ? 'done' : 'skipped';
  }

  private async registerPuller(action: Extract<Action, { kind: 'register-puller' }>, signal?: AbortSignal): Promise<'done' | 'deferred' | 'skipped'> {
    const { logger, client } = this.options;
    const outcome = await this.relay.registerPuller(action.path, action.record.checksum, signal);
    switch (outcome) {
      case 'registered':
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
}

/**
 * Pipes `source` into `transform` and returns the transform as the stream to read. An error of
 * either one is kept on the returned stream (destroyed with that error) for its reader to see.
 */
function through(source: Readable, transform: Transform): Readable {
  // why: with `source.pipe(transform)`, a small file can be read to its end and the transform's
  // final check (Fernet's HMAC) fail before the reader has attached its 'error' listener: the
  // error was then unhandled and crashed the process. pipeline() listens from the start.
  pipeline(source, transform, () => undefined);
  return transform;
}

/** Errors that fail one file and let the round go on; anything else aborts the round. */
function isHandledPerFile(error: EscaleError): boolean {
  return !isRetryable(error) || error.code === 'LockBusy' || error.code === 'Conflict';
}
