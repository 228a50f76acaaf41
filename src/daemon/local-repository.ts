import { closeSync, constants as fsConstants, createReadStream, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fromSystemError, hasCode, type EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { RefusedNames } from '../core/refused-names.js';
import { ReportOnce } from '../core/report-once.js';
import type { RelayPath, RelPath } from '../core/relpath.js';
import type { AccessStore } from '../local/access.js';
import type { ChecksumCache } from '../local/checksum-cache.js';
import { LOCAL_READ_BUFFER } from '../local/checksum.js';
import type { FileFilter } from '../local/filter.js';
import { adoptFileAtomically, syncFileSystem, writeFileAtomically, type WriteFileResult } from '../local/local-writer.js';
import { identityOf } from '../local/file-identity.js';
import { LocalIndex } from '../local/local-index.js';
import { ownFileMatcher } from '../local/own-files.js';
import { localPathOf, localPathProblem, scanLocal, scanSubtree, type ScannedFile } from '../local/scanner.js';
import { SettleQueue, type SettleStat } from '../local/settle-queue.js';
import { networkFileSystemOf, TreeWatcher, type WatchFolder } from '../local/tree-watcher.js';
import type { AccessRule } from '../sync/model.js';
import type { LocalPort, ScannedLocal } from '../sync/engine.js';

/** The optional parts of a local repository. */
export interface LocalRepositoryOptions {
  /** Where names the scan refuses are reported, once each (shared with the client's relay side). */
  readonly refused?: RefusedNames;
  /** Why the relay protocol cannot carry a local file's name (a placeholder name too long…), or undefined. */
  readonly relayNameProblem?: (path: RelayPath) => string | undefined;
  /** escale's own files inside the root (absolute paths), never scanned. */
  readonly ownFiles?: readonly string[];
}

/** How a running client learns of local changes (see `LocalRepository.watch`). */
export interface LocalWatchOptions {
  /** Quiet time after the last event before a path counts as settled (default SETTLE_MS). */
  readonly settleMs?: number;
  /** A full scan runs at least this often, events or not (the `full scan interval` option). */
  readonly fullScanIntervalMs: number;
  /** Called when settled changes wait for a round (the daemon wakes its loop). */
  readonly onChange: () => void;
  /** Watches one folder (tests inject faults; default `fs.watch`). */
  readonly watchFolder?: WatchFolder;
  /** Monotonic and wall clocks in milliseconds (tests). */
  readonly monotonic?: () => number;
  readonly wallClock?: () => number;
}

/** How the local folder is followed: file-system events, or full scans every round (and why). */
export interface LocalWatchState {
  readonly mode: 'events' | 'scans';
  /** Why it is not `events` (watch = no, a network file system, the watch limit...), or undefined. */
  readonly reason?: string;
  /** Folders watched. */
  readonly folders: number;
}

/** Default quiet time of a changed path before it is pushed (ms): long enough to see a writer at work, short enough for "within a second". */
export const SETTLE_MS = 300;

/** The local files as the maintained index has them, and what changed since the previous view. */
export interface LocalView {
  readonly files: ReadonlyMap<RelPath, ScannedLocal>;
  /** Paths that appeared, vanished or changed since the previous view; undefined for the first view. */
  readonly changed?: ReadonlySet<RelPath>;
}

/**
 * The local repository of one client, as the engine sees it: scanner, checksum cache, access store,
 * atomic writer. It never creates its root: a missing root fails the write (NotFound); the daemon's
 * local root guard creates the root of a new client and pauses a client whose root vanished.
 * Symbolic links to files are followed like links to folders (their target is read and sent under
 * the link's name). escale's own files (`ownFiles`: stores, logs, PID file) are never scanned,
 * wherever they are, whatever their names.
 */
export class LocalRepository implements LocalPort {
  private readonly refused: RefusedNames;
  private readonly relayNameProblem: (path: RelayPath) => string | undefined;
  private readonly ownFiles: readonly string[];
  /** The maintained index: the last full scan, kept up to date by events and by escale's own writes. */
  private readonly index = new LocalIndex();
  /** Whether the engine looked at the index before (its first view has no change set). */
  private viewed = false;
  /** Set when events may have been missed: the next view scans everything. */
  private fullScanDue = true;
  private lastFullScanMono = Number.NEGATIVE_INFINITY;
  private watching: { readonly options: LocalWatchOptions; readonly watcher: TreeWatcher; readonly queue: SettleQueue; readonly settled: Set<string>; timer?: NodeJS.Timeout } | undefined;
  private watchState: LocalWatchState = { mode: 'scans', reason: 'not watching (a single round)', folders: 0 };
  /** When watching is tried again after it was lost (monotonic ms). */
  private watchRetryMono = Number.NEGATIVE_INFINITY;
  /** why: the reason to scan instead of watching is said once per cause. */
  private readonly watchReports = new ReportOnce();
  /** why: an entry that is not a regular file or folder (a dangling link, a named pipe) is reported once, not at every scan. */
  private readonly unsupported = new ReportOnce();
  /** The real path of the root in this round (see `rootOfRound`). */
  private resolvedRoot: string | undefined;

  constructor(
    private readonly root: string,
    private readonly filter: FileFilter,
    private readonly checksums: ChecksumCache,
    private readonly accessStore: AccessStore,
    private readonly algorithm: string | null,
    private readonly logger: Logger,
    options: LocalRepositoryOptions = {},
  ) {
    this.refused = options.refused ?? new RefusedNames(logger);
    this.relayNameProblem = options.relayNameProblem ?? (() => undefined);
    this.ownFiles = options.ownFiles ?? [];
  }

  async *scan(signal?: AbortSignal, onProblem?: (path: string, error: EscaleError) => void): AsyncIterable<ScannedLocal> {
    const started = this.monotonic();
    this.resolvedRoot = undefined;
    const refusedNow = new Set<string>();
    const unsupportedNow = new Set<string>();
    const found: ScannedFile[] = [];
    for await (const file of this.walk('', signal, onProblem, refusedNow, unsupportedNow)) {
      found.push(file);
      yield file;
    }
    this.index.replaceAll(found);
    this.fullScanDue = false;
    this.lastFullScanMono = started;
    // why: a name that left the folder (renamed, deleted) is reported again if it comes back.
    this.refused.retain('local', (name) => refusedNow.has(name));
    this.unsupported.retain((path) => unsupportedNow.has(path));
  }

  /** The files at or below `diskRel` ('' for the whole tree), with every rule of the scan, noting refused names and entries that are not files or folders. */
  private async *walk(diskRel: string, signal: AbortSignal | undefined, onProblem: ((path: string, error: EscaleError) => void) | undefined, refusedNow: Set<string>, unsupportedNow: Set<string>): AsyncIterable<ScannedFile> {
    const onError = onProblem ?? ((path: string, error: Error): void => this.logger.warning(`cannot read '${path}': ${error.message}`));
    const onRefused = (path: string, problem: string): void => {
      refusedNow.add(path);
      this.refused.refuse('local', path, problem);
    };
    const onUnsupported = (path: string, why: string): void => {
      unsupportedNow.add(path);
      if (this.unsupported.isNew(path, why)) this.logger.warning(`skipping '${path}': ${why}`);
    };
    const skip = ownFileMatcher(this.ownFiles);
    const options = { ...(signal ? { signal } : {}), onError, onRefused, onUnsupported, skip };
    for await (const file of diskRel === '' ? scanLocal(this.root, this.filter, options) : scanSubtree(this.root, this.filter, diskRel, options)) {
      // why: a new resource is pushed in the disk spelling, which may be longer than the NFC name.
      const relayProblem = this.relayNameProblem(file.path) ?? (file.diskPath === undefined ? undefined : this.relayNameProblem(file.diskPath as RelayPath));
      if (relayProblem !== undefined) {
        onRefused(file.diskPath ?? file.path, relayProblem);
        continue;
      }
      yield file;
    }
  }

  /**
   * Follows the local folder with file-system events from now on (a running client), so that a
   * view re-reads only what changed, and `onChange` hears of settled changes. Falls back to a full
   * scan every round, saying why once, when events cannot be trusted: `enabled` false (`watch = no`),
   * a network or FUSE file system (other machines' writes raise no event), or a watch that cannot be
   * set up (the limit of watched folders); a lost event queue or a watcher error costs one full scan.
   */
  watch(enabled: boolean, options: LocalWatchOptions): void {
    if (this.watching !== undefined) return;
    if (!enabled) {
      this.watchState = { mode: 'scans', reason: "'watch = no'", folders: 0 };
      return;
    }
    const network = networkFileSystemOf(this.root);
    if (network !== undefined) {
      this.watchState = { mode: 'scans', reason: `the local folder is on a ${network} file system, where changes made by other machines raise no event`, folders: 0 };
      this.logger.info(`not watching '${this.root}' for changes: ${this.watchState.reason}; it is scanned every round instead (set 'watch = no' to silence this line)`);
      return;
    }
    const monotonic = options.monotonic ?? (() => performance.now());
    const watcher = new TreeWatcher({
      root: this.root,
      entersDir: (path) => this.filter.entersDir(path),
      ...(options.watchFolder ? { watchFolder: options.watchFolder } : {}),
      onEvent: (diskRel) => this.onEvent(diskRel),
      onLost: (reason, limit) => this.onLost(reason, limit),
    });
    const queue = new SettleQueue({
      settleMs: options.settleMs ?? SETTLE_MS,
      monotonic,
      wallClock: options.wallClock ?? Date.now,
      stat: (diskRel) => settleStat(join(this.root, diskRel)),
    });
    this.watching = { options, watcher, queue, settled: new Set() };
    this.startWatcher();
  }

  /** How the local folder is followed now. */
  get watchStatus(): LocalWatchState {
    return this.watchState;
  }

  /** Whether settled changes wait for the next view. */
  get hasPendingChanges(): boolean {
    return this.fullScanDue || (this.watching?.settled.size ?? 0) > 0;
  }

  /** Simulates an overflow of the event queue (tests): the next view scans everything. */
  simulateOverflow(): void {
    this.watching?.watcher.overflow();
  }

  /** Stops watching (the client closes). */
  close(): void {
    const watching = this.watching;
    if (watching === undefined) return;
    if (watching.timer !== undefined) clearTimeout(watching.timer);
    watching.watcher.close();
    this.watching = undefined;
  }

  /**
   * The local files, up to date: a full scan when one is due (the first view, `full scan interval`
   * elapsed, events lost or not followed), else the index with the settled paths looked at again.
   */
  async view(signal?: AbortSignal, onProblem?: (path: string, error: EscaleError) => void, lookAgainAt: readonly string[] = []): Promise<LocalView> {
    this.resolvedRoot = undefined;
    const watching = this.watching;
    const interval = watching?.options.fullScanIntervalMs ?? 0;
    if (watching !== undefined && !watching.watcher.healthy && this.monotonic() >= this.watchRetryMono) this.startWatcher();
    const eventsTrusted = watching !== undefined && watching.watcher.healthy;
    if (!eventsTrusted || this.fullScanDue || !this.index.ready || this.monotonic() - this.lastFullScanMono >= interval) {
      watching?.settled.clear();
      watching?.queue.clear();
      for await (const _ of this.scan(signal, onProblem)) void _;
    } else {
      // why: a folder that failed is read again each round, as a full scan reads it: its failure counts towards 'stuck', its repair is seen.
      const paths = [...new Set([...watching.settled, ...lookAgainAt])];
      watching.settled.clear();
      for (const diskRel of paths) await this.lookAgain(diskRel, signal, onProblem);
    }
    const changed = this.index.takeChanged();
    const first = !this.viewed;
    this.viewed = true;
    return first ? { files: this.index.files } : { files: this.index.files, changed };
  }

  /** Looks again at one path that events named: the file, or the folder and everything below it. */
  private async lookAgain(diskRel: string, signal: AbortSignal | undefined, onProblem: ((path: string, error: EscaleError) => void) | undefined): Promise<void> {
    const watcher = this.watching?.watcher;
    const nowFolder = isFolder(join(this.root, diskRel));
    const wasFolder = watcher?.watches(diskRel) === true;
    // why: a new folder is watched before it is read, so that a file created in it meanwhile raises an event.
    if (watcher !== undefined && wasFolder && !nowFolder) watcher.remove(diskRel);
    else if (watcher !== undefined && nowFolder && !wasFolder) watcher.add(diskRel);
    const found: ScannedFile[] = [];
    for await (const file of this.walk(diskRel, signal, onProblem, new Set(), new Set())) found.push(file);
    this.index.refresh(diskRel.normalize('NFC') as RelPath, found, nowFolder || wasFolder);
  }

  private startWatcher(): void {
    const watching = this.watching;
    if (watching === undefined) return;
    // why: watched before the scan that follows, so that nothing changed in between goes unseen.
    if (watching.watcher.start()) {
      this.watchState = { mode: 'events', folders: watching.watcher.folders };
      if (this.watchReports.clear('watch')) this.logger.info(`watching '${this.root}' for changes again (${watching.watcher.folders} folders)`);
    }
    this.fullScanDue = true;
  }

  private onEvent(diskRel: string): void {
    const watching = this.watching;
    if (watching === undefined) return;
    // why: hidden names (escale's temporaries and markers among them) are never synchronised.
    if (diskRel.split('/').some((name) => name.startsWith('.'))) return;
    watching.queue.add(diskRel);
    this.schedule();
  }

  private onLost(reason: string, limit = false): void {
    const watching = this.watching;
    this.fullScanDue = true;
    // why: a lost queue or an error is retried at the next round; the watch limit only once a full scan interval passed.
    this.watchRetryMono = limit ? this.monotonic() + (watching?.options.fullScanIntervalMs ?? 0) : Number.NEGATIVE_INFINITY;
    this.watchState = { mode: 'scans', reason, folders: 0 };
    if (this.watchReports.isNew('watch', reason)) this.logger.warning(`local changes: ${reason}; the folder is scanned in full until watching works again`);
    watching?.queue.clear();
    watching?.options.onChange();
  }

  /** Arms the settle timer for the earliest pending path. */
  private schedule(delayMs?: number): void {
    const watching = this.watching;
    if (watching === undefined || watching.timer !== undefined) return;
    const delay = delayMs ?? watching.options.settleMs ?? SETTLE_MS;
    watching.timer = setTimeout(() => {
      watching.timer = undefined;
      const { settled, nextInMs } = watching.queue.take();
      for (const path of settled) watching.settled.add(path);
      if (nextInMs !== undefined) this.schedule(Math.max(10, nextInMs));
      if (settled.length > 0) watching.options.onChange();
    }, delay);
    watching.timer.unref();
  }

  private monotonic(): number {
    return (this.watching?.options.monotonic ?? (() => performance.now()))();
  }

  /** Why a relay file `path` cannot be written below this root (its full path would be too long), or undefined. */
  nameProblem(path: RelPath): string | undefined {
    return localPathProblem(this.root, path);
  }

  async checksum(file: ScannedLocal, signal?: AbortSignal): Promise<string | undefined> {
    if (this.algorithm === null) return undefined;
    return this.checksums.checksumOf(this.root, this.withDiskPath(file), this.algorithm, signal);
  }

  cachedChecksum(file: ScannedLocal): string | undefined {
    return this.algorithm === null ? undefined : this.checksums.cachedChecksum(file, this.algorithm);
  }

  async checksumOfPath(path: RelPath, signal?: AbortSignal): Promise<string | undefined> {
    const file = await this.stat(path);
    if (!file) return undefined;
    return this.checksum(file, signal);
  }

  open(path: RelPath, sizeHint?: number): Readable {
    // why: a read stream allocates a whole buffer per read (and one more to find the end), so a
    // 4 KiB file read with 256 KiB buffers cost 512 KiB of garbage; size the buffer to the file.
    const buffer = sizeHint === undefined ? LOCAL_READ_BUFFER : Math.max(64, Math.min(LOCAL_READ_BUFFER, sizeHint + 1));
    return createReadStream(localPathOf(this.root, this.withDiskPath({ path })), { highWaterMark: buffer });
  }

  readSmall(path: RelPath, limit: number, into?: Buffer): { data: Buffer; after: ScannedLocal | undefined } | undefined {
    // why: synchronous: for many small files, a read stream's open/read/read/close through the
    // thread pool cost several times the system calls themselves (issue 9, W1).
    const full = localPathOf(this.root, this.withDiskPath({ path }));
    let data: Buffer;
    try {
      // why: O_NONBLOCK: a file replaced by a FIFO since the scan must not block the event loop.
      const fd = openSync(full, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      try {
        if (!fstatSync(fd).isFile()) return undefined;
        const buffer = into !== undefined && into.length >= limit ? into : Buffer.allocUnsafe(limit);
        let filled = 0;
        while (filled < limit) {
          const got = readSync(fd, buffer, filled, limit - filled, null);
          if (got === 0) break;
          filled += got;
        }
        data = buffer.subarray(0, filled);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      // why: a file that vanished is simply not there; any other failure (EACCES, EIO) is the file's, with its cause.
      const translated = fromSystemError(error, path);
      if (hasCode(translated, 'NotFound')) return undefined;
      throw translated;
    }
    try {
      // why: stat, not lstat: a symbolic link to a file is read through, and so is its state compared.
      const info = statSync(full, { bigint: true });
      return { data, after: info.isFile() ? { path, ...identityOf(info) } : undefined };
    } catch {
      return { data, after: undefined };
    }
  }

  async write(request: Parameters<LocalPort['write']>[0]): Promise<WriteFileResult> {
    const { spelling, ...rest } = request;
    const spelled = this.diskSpelling(request.path, spelling);
    return this.cached(request.path, await writeFileAtomically({ root: this.root, ...this.rootOfRound(), createRoot: false, algorithm: this.algorithm, ...spelled, ...rest }), spelled.diskPath);
  }

  async adopt(request: Parameters<NonNullable<LocalPort['adopt']>>[0]): Promise<WriteFileResult> {
    const { spelling, ...rest } = request;
    const spelled = this.diskSpelling(request.path, spelling);
    return this.cached(request.path, await adoptFileAtomically({ root: this.root, ...this.rootOfRound(), createRoot: false, algorithm: this.algorithm, ...spelled, ...rest }), spelled.diskPath);
  }

  /** Caches the checksum of a file just written, for the identity it has now (its mtime set, renamed into place), and indexes it. */
  /** The root's real path, resolved once per round (a view starts each); nothing when it cannot be resolved (the writer reports why). */
  private rootOfRound(): { resolvedRoot?: string } {
    if (this.resolvedRoot === undefined) {
      try {
        this.resolvedRoot = realpathSync.native(this.root);
      } catch {
        return {};
      }
    }
    return { resolvedRoot: this.resolvedRoot };
  }

  private cached(path: RelPath, result: WriteFileResult, diskPath?: string): WriteFileResult {
    if (result.checksum !== undefined && this.algorithm !== null) this.checksums.record(path, result, result.checksum, this.algorithm);
    if (this.index.ready) this.index.written(path, result, diskPath);
    return result;
  }

  async flush(): Promise<void> {
    const failure = await syncFileSystem(this.root);
    if (failure !== undefined) this.logger.debug(`cannot sync the local file system: ${failure.message}`);
  }

  async stat(path: RelPath): Promise<ScannedLocal | undefined> {
    const full = localPathOf(this.root, this.withDiskPath({ path }));
    try {
      // why: stat, not lstat: a symbolic link to a file is followed, as the scanner follows it (0.7 sends both kinds of links);
      // synchronous, as the scanner's: a thread-pool round trip costs more than the call.
      const info = statSync(full, { bigint: true });
      if (!info.isFile()) return undefined;
      return { path, ...identityOf(info) };
    } catch (error) {
      const translated = fromSystemError(error, path);
      if (hasCode(translated, 'NotFound')) return undefined;
      throw translated;
    }
  }

  /** Whether `path` names one of escale's own files in the local root (never downloaded over, never sent). */
  isOwnFile(path: RelPath): boolean {
    return this.ownFiles.includes(join(this.root, path));
  }

  access(path: RelPath): AccessRule {
    return this.accessStore.get(path);
  }

  async setAccess(path: RelPath, modifiers: string): Promise<void> {
    this.accessStore.set(path, modifiers);
    await this.accessStore.flush();
  }

  /** How the folder spells a scanned file when not in NFC (from the last scan), or undefined. */
  spelling(path: RelPath): RelayPath | undefined {
    return this.index.get(path)?.diskPath as RelayPath | undefined;
  }

  /**
   * why: a download replaces the file the user has, in the spelling it has on disk (NFD stays NFD);
   * a new file takes the relay's spelling, as the client that pushed it spelled it.
   */
  private diskSpelling(path: RelPath, relaySpelling: RelayPath | undefined): { diskPath?: string } {
    const diskPath = this.index.get(path)?.diskPath ?? (relaySpelling !== path ? relaySpelling : undefined);
    return diskPath === undefined ? {} : { diskPath };
  }

  private withDiskPath<T extends { path: RelPath }>(file: T): T & ScannedFile {
    const diskPath = this.index.get(file.path)?.diskPath;
    return { size: 0, mtimeMs: 0, ...file, ...(diskPath === undefined ? {} : { diskPath }) } as T & ScannedFile;
  }
}

/** What the settle queue sees of a path: a file's size and mtime (following a link), or 'other'. */
function settleStat(absPath: string): SettleStat {
  try {
    const info = statSync(absPath, { throwIfNoEntry: false });
    return info?.isFile() === true ? { size: info.size, mtimeMs: info.mtimeMs } : 'other';
  } catch {
    return 'other';
  }
}

/** Whether `absPath` is a folder now (following a link). */
function isFolder(absPath: string): boolean {
  try {
    return statSync(absPath, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}
