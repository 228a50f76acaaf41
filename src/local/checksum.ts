import { createHash, getHashes, type Hash } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';

/** Buffer size of whole-file local reads (hashing, uploading, copying). */
// why: the default 64 KiB costs a read call, a stream chunk and a hash/cipher call per 64 KiB;
// 1 MiB cut W2's per-chunk overhead while keeping peak RSS far below its 150 MiB target.
export const LOCAL_READ_BUFFER = 256 * 1024;

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
  try {
    handle = await open(absPath, 'r');
    const { size } = await handle.stat();
    // why: one buffer sized to the file and reused for every read: a read stream allocated a
    // fresh buffer per read, i.e. garbage for every small file of a cold round.
    const buffer = Buffer.allocUnsafe(Math.max(64, Math.min(LOCAL_READ_BUFFER, size + 1)));
    for (;;) {
      throwIfAborted(signal);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } catch (error) {
    throw fromSystemError(error, absPath);
  } finally {
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
