import { closeSync, constants as fsConstants, createReadStream, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
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
import { localPathOf, localPathProblem, scanLocal, type ScannedFile } from '../local/scanner.js';
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
  /** why: a name stored on disk in another Unicode form (NFD) is opened by its disk name. */
  private readonly diskPaths = new Map<RelPath, string>();
  /** why: a dangling link is reported once, not at every scan. */
  private readonly danglingLinks = new ReportOnce();

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
    this.diskPaths.clear();
    const onError = onProblem ?? ((path: string, error: Error): void => this.logger.warning(`cannot read '${path}': ${error.message}`));
    const refusedNow = new Set<string>();
    const onRefused = (path: string, problem: string): void => {
      refusedNow.add(path);
      this.refused.refuse('local', path, problem);
    };
    const dangling = new Set<string>();
    const onDanglingLink = (path: string): void => {
      dangling.add(path);
      if (this.danglingLinks.isNew(path, 'dangling')) this.logger.warning(`skipping '${path}': it is a symbolic link whose target does not exist`);
    };
    const skip = ownFileMatcher(this.ownFiles);
    for await (const file of scanLocal(this.root, this.filter, { ...(signal ? { signal } : {}), onError, onRefused, onDanglingLink, skip })) {
      // why: a new resource is pushed in the disk spelling, which may be longer than the NFC name.
      const relayProblem = this.relayNameProblem(file.path) ?? (file.diskPath === undefined ? undefined : this.relayNameProblem(file.diskPath as RelayPath));
      if (relayProblem !== undefined) {
        onRefused(file.diskPath ?? file.path, relayProblem);
        continue;
      }
      if (file.diskPath !== undefined) this.diskPaths.set(file.path, file.diskPath);
      yield file;
    }
    // why: a name that left the folder (renamed, deleted) is reported again if it comes back.
    this.refused.retain('local', (name) => refusedNow.has(name));
    this.danglingLinks.retain((path) => dangling.has(path));
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
    return this.cached(request.path, await writeFileAtomically({ root: this.root, createRoot: false, algorithm: this.algorithm, ...this.diskSpelling(request.path, spelling), ...rest }));
  }

  async adopt(request: Parameters<NonNullable<LocalPort['adopt']>>[0]): Promise<WriteFileResult> {
    const { spelling, ...rest } = request;
    return this.cached(request.path, await adoptFileAtomically({ root: this.root, createRoot: false, algorithm: this.algorithm, ...this.diskSpelling(request.path, spelling), ...rest }));
  }

  /** Caches the checksum of a file just written, for the identity it has now (its mtime set, renamed into place). */
  private cached(path: RelPath, result: WriteFileResult): WriteFileResult {
    if (result.checksum !== undefined && this.algorithm !== null) this.checksums.record(path, result, result.checksum, this.algorithm);
    return result;
  }

  async flush(): Promise<void> {
    const failure = await syncFileSystem(this.root);
    if (failure !== undefined) this.logger.debug(`cannot sync the local file system: ${failure.message}`);
  }

  async stat(path: RelPath): Promise<ScannedLocal | undefined> {
    const full = localPathOf(this.root, this.withDiskPath({ path }));
    try {
      // why: stat, not lstat: a symbolic link to a file is followed, as the scanner follows it (0.7 sends both kinds of links).
      const info = await stat(full, { bigint: true });
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
    return this.diskPaths.get(path) as RelayPath | undefined;
  }

  /**
   * why: a download replaces the file the user has, in the spelling it has on disk (NFD stays NFD);
   * a new file takes the relay's spelling, as the client that pushed it spelled it.
   */
  private diskSpelling(path: RelPath, relaySpelling: RelayPath | undefined): { diskPath?: string } {
    const diskPath = this.diskPaths.get(path) ?? (relaySpelling !== path ? relaySpelling : undefined);
    return diskPath === undefined ? {} : { diskPath };
  }

  private withDiskPath<T extends { path: RelPath }>(file: T): T & ScannedFile {
    const diskPath = this.diskPaths.get(file.path);
    return { size: 0, mtimeMs: 0, ...file, ...(diskPath === undefined ? {} : { diskPath }) } as T & ScannedFile;
  }
}

/**
 * A scanner `skip` test for escale's own files: by identity (device and inode, taken once per scan)
 * for those that exist, by absolute path for those not written yet.
 */
function ownFileMatcher(ownFiles: readonly string[]): ((absPath: string, id: { readonly dev: bigint; readonly ino: bigint }) => boolean) | undefined {
  if (ownFiles.length === 0) return undefined;
  const paths = new Set(ownFiles);
  const ids = new Set<string>();
  for (const file of ownFiles) {
    try {
      const info = statSync(file, { bigint: true, throwIfNoEntry: false });
      if (info !== undefined) ids.add(`${info.dev}:${info.ino}`);
    } catch {
      // why: an own file that cannot be stat'ed is still matched by its path; the scan reports what it cannot read.
    }
  }
  return (absPath, id) => paths.has(absPath) || ids.has(`${id.dev}:${id.ino}`);
}
