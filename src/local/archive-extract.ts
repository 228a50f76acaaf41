import type { Hash } from 'node:crypto';
import { closeSync, constants as fsConstants, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { EscaleError, fromSystemError } from '../core/errors.js';
import type { RelPath } from '../core/relpath.js';
import { throwIfUnpackAborted } from '../relay/protocol/archive.js';
import { BLOCK, MAX_META_BYTES, TarParser, type TarEntry, type TarHandlers } from '../relay/protocol/tar.js';
import { bzip2DecompressParallel, type Bzip2Options } from '../system/bzip2.js';
import { createChecksum } from './checksum.js';

/** Limits and cancellation of `unpackUpdate`. */
export interface UnpackOptions {
  /** Largest total size of the regular-file members, in bytes (also bounds the decompressor). */
  readonly maxBytes: number;
  /** Largest number of members (files and folders). */
  readonly maxEntries: number;
  readonly signal?: AbortSignal;
  /** Passed to the bzip2 decompressor (executable). */
  readonly bzip2?: Omit<Bzip2Options, 'signal'>;
  /** Hash algorithm (Python or Node name) of the members' checksums, computed while they are written; null or absent: none. */
  readonly algorithm?: string | null;
  /** Receives members skipped for a name escale does not sync (see `ReadTarOptions.onRefused`). */
  readonly onRefused?: (name: string, problem: string) => void;
}

/** A regular file extracted by `unpackUpdate`. */
export interface UnpackedFile {
  /** The member name in NFC: the file is at this path below the target folder. */
  readonly path: RelPath;
  readonly size: number;
  /** Lowercase hex digest of the extracted content, when `algorithm` was given. */
  readonly checksum?: string;
}

/** Decompressed bytes allowed per member on top of file contents: headers, a long name, padding. */
const OVERHEAD_PER_ENTRY = 3 * BLOCK + 2 * MAX_META_BYTES;

/**
 * Extracts an update archive (bzip2 tar, already decrypted) into `targetDir`, a private folder the
 * caller owns (created if missing) and removes after use. The members are read and refused as
 * `TarParser` says (bad names, links, devices, limits); on top of that the decompressed stream is
 * bounded as a bzip2-bomb guard. Nothing is ever written outside `targetDir`, and no link is
 * created. A repeated member replaces the earlier one, as with Python. Returns the regular files
 * extracted. On failure, files already extracted stay in `targetDir`.
 */
export async function unpackUpdate(source: Readable, targetDir: string, options: UnpackOptions): Promise<UnpackedFile[]> {
  const { maxBytes, maxEntries, signal } = options;
  const maxTarBytes = maxBytes + (maxEntries + 1) * OVERHEAD_PER_ENTRY + 20 * BLOCK;
  try {
    mkdirSync(targetDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    source.destroy();
    throw fromSystemError(error, targetDir);
  }
  const decompressor = bzip2DecompressParallel({ ...options.bzip2, maxOutputBytes: maxTarBytes, signal });
  // why: pipeline destroys both ends on any error (no lingering bzip2 process).
  pipeline(source, decompressor, () => undefined);
  const tree = new ExtractedTree(targetDir, options.algorithm ?? null);
  const parser = new TarParser({ maxBytes, maxEntries, label: 'update archive', ...(options.onRefused === undefined ? {} : { onRefused: options.onRefused }) }, tree);
  try {
    // why: one synchronous pass per decompressed chunk (about 14 members of 4 KiB): each member is
    // written with synchronous calls, where three thread-pool hops per file cost more than the calls.
    for await (const chunk of decompressor) {
      throwIfUnpackAborted(signal);
      parser.write(chunk as Buffer);
      if (parser.finished) break;
    }
    throwIfUnpackAborted(signal);
    parser.end();
    return tree.files();
  } catch (error) {
    throw error instanceof EscaleError ? error : fromSystemError(error, targetDir);
  } finally {
    tree.close();
    decompressor.destroy();
  }
}

/** The file being extracted. */
interface OpenMember {
  readonly entry: TarEntry;
  readonly fd: number;
  readonly hash: Hash | undefined;
}

/** Writes the members `TarParser` announces below `root` with synchronous calls, hashing each file on the way. */
class ExtractedTree implements TarHandlers {
  private readonly extracted = new Map<RelPath, UnpackedFile>();
  private readonly folders = new Set<string>();
  private current: OpenMember | undefined;

  constructor(
    private readonly root: string,
    private readonly algorithm: string | null,
  ) {
    this.folders.add(root);
  }

  member(entry: TarEntry): void {
    const target = join(this.root, ...entry.path.split('/'));
    if (entry.kind === 'dir') {
      this.folder(target);
      return;
    }
    this.folder(dirname(target));
    const fd = openMember(target, entry.rawName);
    this.current = { entry, fd, hash: this.algorithm === null ? undefined : createChecksum(this.algorithm) };
  }

  content(part: Buffer): void {
    const member = this.current as OpenMember;
    member.hash?.update(part);
    let offset = 0;
    while (offset < part.length) offset += writeSync(member.fd, part, offset, part.length - offset);
  }

  end(): void {
    const member = this.current as OpenMember;
    this.current = undefined;
    closeSync(member.fd);
    const { path, size } = member.entry;
    // why: a repeated member replaces the earlier one, in the order of its last occurrence.
    this.extracted.delete(path);
    this.extracted.set(path, member.hash === undefined ? { path, size } : { path, size, checksum: member.hash.digest('hex') });
  }

  /** The regular files extracted, in archive order. */
  files(): UnpackedFile[] {
    return [...this.extracted.values()];
  }

  /** Closes the file left open by a failure. */
  close(): void {
    if (this.current !== undefined) closeSync(this.current.fd);
    this.current = undefined;
  }

  private folder(dir: string): void {
    if (this.folders.has(dir)) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.folders.add(dir);
  }
}

/** Opens a member's file for writing. why: O_NOFOLLOW so that even a planted link in the private folder is never written through. */
function openMember(target: string, name: string): number {
  try {
    return openSync(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw new EscaleError('CorruptRecord', `update archive: cannot extract member ${JSON.stringify(name)}: ${(error as Error).message}`, { path: name, cause: error });
  }
}
