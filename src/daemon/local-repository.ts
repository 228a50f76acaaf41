import { closeSync, constants as fsConstants, createReadStream, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { fromSystemError, hasCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RelPath } from '../core/relpath.js';
import type { AccessStore } from '../local/access.js';
import type { ChecksumCache } from '../local/checksum-cache.js';
import { LOCAL_READ_BUFFER } from '../local/checksum.js';
import type { FileFilter } from '../local/filter.js';
import { adoptFileAtomically, syncFileSystem, writeFileAtomically, type WriteFileResult } from '../local/local-writer.js';
import { identityOf } from '../local/file-identity.js';
import { localPathOf, scanLocal, type ScannedFile } from '../local/scanner.js';
import type { AccessRule } from '../sync/model.js';
import type { LocalPort, ScannedLocal } from '../sync/engine.js';

/** The local repository of one client, as the engine sees it: scanner, checksum cache, access store, atomic writer. */
export class LocalRepository implements LocalPort {
  /** why: a name stored on disk in another Unicode form (NFD) is opened by its disk name. */
  private readonly diskPaths = new Map<RelPath, string>();

  constructor(
    private readonly root: string,
    private readonly filter: FileFilter,
    private readonly checksums: ChecksumCache,
    private readonly accessStore: AccessStore,
    private readonly algorithm: string | null,
    private readonly logger: Logger,
  ) {}

  async *scan(signal?: AbortSignal): AsyncIterable<ScannedLocal> {
    this.diskPaths.clear();
    const onError = (path: string, error: Error): void => this.logger.warning(`cannot read '${path}': ${error.message}`);
    for await (const file of scanLocal(this.root, this.filter, { ...(signal ? { signal } : {}), onError })) {
      if (file.diskPath !== undefined) this.diskPaths.set(file.path, file.diskPath);
      yield file;
    }
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

  readSmall(path: RelPath, limit: number): { data: Buffer; after: ScannedLocal | undefined } | undefined {
    // why: synchronous: for many small files, a read stream's open/read/read/close through the
    // thread pool cost several times the system calls themselves (issue 9, W1).
    const full = localPathOf(this.root, this.withDiskPath({ path }));
    let data: Buffer;
    try {
      // why: O_NONBLOCK: a file replaced by a FIFO since the scan must not block the event loop.
      const fd = openSync(full, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      try {
        if (!fstatSync(fd).isFile()) return undefined;
        const buffer = Buffer.allocUnsafe(limit);
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
      const info = lstatSync(full, { bigint: true });
      return { data, after: info.isFile() ? { path, ...identityOf(info) } : undefined };
    } catch {
      return { data, after: undefined };
    }
  }

  async write(request: Parameters<LocalPort['write']>[0]): Promise<WriteFileResult> {
    return this.cached(request.path, await writeFileAtomically({ root: this.root, algorithm: this.algorithm, ...request }));
  }

  async adopt(request: Parameters<NonNullable<LocalPort['adopt']>>[0]): Promise<WriteFileResult> {
    return this.cached(request.path, await adoptFileAtomically({ root: this.root, algorithm: this.algorithm, ...request }));
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
      const info = await lstat(full, { bigint: true });
      if (!info.isFile()) return undefined;
      return { path, ...identityOf(info) };
    } catch (error) {
      const translated = fromSystemError(error, path);
      if (hasCode(translated, 'NotFound')) return undefined;
      throw translated;
    }
  }

  access(path: RelPath): AccessRule {
    return this.accessStore.get(path);
  }

  async setAccess(path: RelPath, modifiers: string): Promise<void> {
    this.accessStore.set(path, modifiers);
    await this.accessStore.flush();
  }

  private withDiskPath<T extends { path: RelPath }>(file: T): T & ScannedFile {
    const diskPath = this.diskPaths.get(file.path);
    return { size: 0, mtimeMs: 0, ...file, ...(diskPath === undefined ? {} : { diskPath }) } as T & ScannedFile;
  }
}
