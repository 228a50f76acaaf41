import { createHash, getHashes, type Hash } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';

/** Buffer size of whole-file local reads (hashing, uploading, copying). */
// why: the default 64 KiB costs a read call, a stream chunk and a hash/cipher call per 64 KiB;
// 1 MiB cut W2's per-chunk overhead while keeping peak RSS far below its 150 MiB target.
export const LOCAL_READ_BUFFER = 256 * 1024;

/** Buffer size of whole-file reads of big files (BIG_FILE_BYTES and more). */
// why: each read through the thread pool costs 40-100 µs of dispatch here: reading 1 GiB took
// 545 ms with 256 KiB reads and 215 ms with 1 MiB reads (issue 13, W2).
export const BIG_FILE_READ_BUFFER = 1024 * 1024;
const BIG_FILE_BYTES = 8 * 1024 * 1024;

/** The read buffer for a whole-file read of `size` bytes: sized down for small files, bigger for big ones. */
export function readBufferFor(size: number): number {
  if (size >= BIG_FILE_BYTES) return BIG_FILE_READ_BUFFER;
  return Math.max(64, Math.min(LOCAL_READ_BUFFER, size + 1));
}

// why: the `checksum` option takes Python hashlib names; these are the ones whose Node name differs.
const PYTHON_NAMES: Readonly<Record<string, string>> = {
  sha3_224: 'sha3-224',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
  blake2b: 'blake2b512',
  blake2s: 'blake2s256',
  sha512_224: 'sha512-224',
  sha512_256: 'sha512-256',
};

/** The Node.js name of a hash algorithm given by its Python `hashlib` or Node name, or undefined if unsupported. */
export function nodeHashName(algorithm: string): string | undefined {
  const lower = algorithm.toLowerCase();
  const name = PYTHON_NAMES[lower] ?? lower;
  return getHashes().includes(name) ? name : undefined;
}

/** A new hash object for `algorithm` (Python or Node name); throws Config for an unsupported one. */
export function createChecksum(algorithm: string): Hash {
  const name = nodeHashName(algorithm);
  if (name === undefined) throw new EscaleError('Config', `unsupported hash algorithm '${algorithm}'`);
  return createHash(name);
}

/** Files up to this size are hashed from one synchronous read. */
const SMALL_HASH_BYTES = 64 * 1024;

/**
 * The lowercase hex digest of the file at `absPath`. Throws NotFound, PermissionDenied... for
 * file-system failures, Aborted when `signal` fires, Config for an unsupported algorithm. A small
 * file is read at once with synchronous calls (a thread-pool round trip per call cost more than
 * reading it), a larger one through the thread pool.
 */
export async function hashFile(absPath: string, algorithm: string, signal?: AbortSignal): Promise<string> {
  const hash = createChecksum(algorithm);
  throwIfAborted(signal);
  if (hashSmallFile(absPath, hash)) return hash.digest('hex');
  let handle: FileHandle | undefined;
  let ahead: Promise<unknown> | undefined;
  try {
    handle = await open(absPath, 'r');
    const { size } = await handle.stat();
    // why: buffers sized to the file and reused for every read: a read stream allocated a fresh
    // buffer per read, i.e. garbage for every small file of a cold round.
    const length = readBufferFor(size);
    const file = handle;
    const read = (buffer: Buffer): Promise<{ bytesRead: number; buffer: Buffer }> => file.read(buffer, 0, length, null);
    // why: a file of more than one buffer is read one buffer ahead, so that the thread pool reads
    // while this thread hashes (a big file's checksum took read time + hash time before, issue 13).
    let spare: Buffer | undefined = size >= length ? Buffer.allocUnsafe(length) : undefined;
    let next = read(Buffer.allocUnsafe(length));
    ahead = next;
    for (;;) {
      const { bytesRead, buffer } = await next;
      if (bytesRead === 0) break;
      throwIfAborted(signal);
      if (spare !== undefined) {
        next = read(spare);
        ahead = next;
        spare = buffer;
        hash.update(buffer.subarray(0, bytesRead));
      } else {
        hash.update(buffer.subarray(0, bytesRead));
        next = read(buffer);
        ahead = next;
      }
    }
    ahead = undefined;
  } catch (error) {
    throw fromSystemError(error, absPath);
  } finally {
    // why: a read still running when an abort or an error ends the loop must not reject unheard.
    await ahead?.catch(() => undefined);
    await handle?.close().catch(() => undefined);
  }
  return hash.digest('hex');
}

/**
 * Feeds a small regular file to `hash` from one synchronous read; false (nothing fed) when the file
 * is larger than SMALL_HASH_BYTES, grows while read, or is no regular file (a FIFO put in its place
 * is opened without blocking and left to the streamed path).
 */
function hashSmallFile(absPath: string, hash: Hash): boolean {
  let fd: number;
  try {
    fd = openSync(absPath, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (error) {
    throw fromSystemError(error, absPath);
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile() || info.size > SMALL_HASH_BYTES) return false;
    const buffer = Buffer.allocUnsafe(info.size + 1);
    let filled = 0;
    for (;;) {
      const got = readSync(fd, buffer, filled, buffer.length - filled, null);
      if (got === 0) break;
      filled += got;
      if (filled === buffer.length) return false;
    }
    hash.update(buffer.subarray(0, filled));
    return true;
  } catch (error) {
    throw fromSystemError(error, absPath);
  } finally {
    closeSync(fd);
  }
}
