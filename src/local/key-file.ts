// The only file I/O of src/crypto: reading a passphrase/key file and creating a new one.
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { EscaleError, fromSystemError } from '../core/errors.js';
import type { CipherAlgorithm } from '../crypto/cipher.js';
import { generateFernetKey } from '../crypto/fernet.js';

/** A loaded key file, with what the caller should warn about. */
export interface LoadedKeyFile {
  /** The file's exact bytes, including any trailing newline (relay-format.md P5.2). */
  readonly material: Buffer;
  /** True when group or others may read the file (POSIX only); the key should be mode 0600. */
  readonly insecurePermissions: boolean;
  /**
   * True when the file ends with LF or CR. Fernet ignores it, but Blowfish uses it as part of
   * the key, so clients whose copies differ only by that newline cannot read each other.
   */
  readonly trailingNewline: boolean;
}

/** Reads a key file's raw bytes. Throws NotFound/PermissionDenied from the file system, Crypto if it is empty. */
export async function loadKeyFile(path: string): Promise<LoadedKeyFile> {
  let material: Buffer;
  let mode: number;
  try {
    mode = (await stat(path)).mode;
    material = await readFile(path);
  } catch (error) {
    throw fromSystemError(error, path);
  }
  if (material.length === 0) throw new EscaleError('Crypto', 'the key file is empty', { path });
  const last = material[material.length - 1];
  return {
    material,
    insecurePermissions: process.platform !== 'win32' && (mode & 0o077) !== 0,
    trailingNewline: last === 0x0a || last === 0x0d,
  };
}

/**
 * Creates a new key file for `algorithm` with mode 0600, as the 0.7 wizard does: base64url of 32
 * random bytes, 44 characters, no newline (a Fernet key, and a 44-byte Blowfish key). Refuses to
 * overwrite an existing file (AlreadyExists); refuses algorithms that take no key (Usage).
 */
export async function generateKeyFile(path: string, algorithm: CipherAlgorithm): Promise<void> {
  if (algorithm === 'plain' || algorithm === 'native') {
    throw new EscaleError('Usage', `encryption '${algorithm}' uses no key file`, { hint: 'use fernet' });
  }
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    throw fromSystemError(error, path);
  }
  try {
    await handle.writeFile(generateFernetKey(), 'latin1');
    await handle.sync();
    await handle.close();
  } catch (error) {
    // why: a half-written key file would later be taken for a valid one; remove it.
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw fromSystemError(error, path);
  }
}
