import { createHash, getHashes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EscaleError, fromSystemError, throwIfAborted } from '../core/errors.js';

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

/**
 * The lowercase hex digest of the file at `absPath`, read as a stream. Throws NotFound,
 * PermissionDenied... for file-system failures, Aborted when `signal` fires, Config for an
 * unsupported algorithm.
 */
export async function hashFile(absPath: string, algorithm: string, signal?: AbortSignal): Promise<string> {
  const hash = createChecksum(algorithm);
  throwIfAborted(signal);
  try {
    await pipeline(
      createReadStream(absPath),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback();
        },
      }),
      { signal },
    );
  } catch (error) {
    throw fromSystemError(error, absPath);
  }
  return hash.digest('hex');
}
