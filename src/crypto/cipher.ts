// Chooses the content cipher from the configuration (relay-format.md P5, configuration.md C6).
// Encryption applies only to relay data files, never to locks, placeholders or indices (relay-format.md P5.1).
import { PassThrough } from 'node:stream';
import type { Transform } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import { createBlowfishDecryptStream, createBlowfishEncryptStream, BlowfishBlock } from './blowfish.js';
import { createFernetDecryptStream, createFernetEncryptStream, FernetKey } from './fernet.js';

/** The cipher identifiers escale accepts (after lowercasing; every `native...` becomes `native`). */
export const CIPHER_ALGORITHMS = ['fernet', 'blowfish', 'blowfish.cryptography', 'blowfish.blowfish', 'plain', 'native'] as const;

/** One of the accepted cipher identifiers. */
export type CipherAlgorithm = (typeof CIPHER_ALGORITHMS)[number];

/** How a caller uses one cipher stream. */
export interface CipherStreamOptions {
  /**
   * The caller hands its input chunks over to the stream (a private source that nobody else
   * reads, such as a file read stream): their memory may be moved to a cipher thread instead of
   * copied, leaving the caller's chunk empty.
   */
  readonly transferInput?: boolean;
}

/** A content cipher: fresh streaming transforms for each file. */
export interface Cipher {
  /** The configured identifier, for logs. */
  readonly name: CipherAlgorithm;
  /** False for `plain`, which passes data through unchanged. */
  readonly encrypts: boolean;
  /**
   * Whether decryption detects tampering and wrong keys (Fernet). Blowfish decrypts anything to
   * something: the engine should warn once and recommend Fernet.
   */
  readonly hasIntegrity: boolean;
  /** A new Transform from plaintext to relay bytes (big streams use a second thread where the cipher can). */
  encrypt(options?: CipherStreamOptions): Transform;
  /**
   * A new Transform from relay bytes to plaintext. Its output is untrusted until it finishes
   * without error: write it to a temporary file and rename only on success.
   */
  decrypt(options?: CipherStreamOptions): Transform;
}

/** What a cipher needs from its surroundings. */
export interface CipherContext {
  /** Current time, Unix milliseconds (Fernet records it in each token). */
  now: () => number;
}

/** The cipher settings taken from a client section. */
export interface CipherConfig {
  /** The cipher identifier, or null for no encryption. */
  algorithm: CipherAlgorithm | null;
  /** The key material: a key file's exact bytes or the literal passphrase's UTF-8 bytes. */
  key: Uint8Array | null;
}

/**
 * Maps an `encryption` value to an identifier as Python does: lowercased, true-like words mean
 * `fernet`, false-like words mean none (null), `native...` means `native`. Throws Config otherwise.
 */
export function parseCipherAlgorithm(value: string | boolean | null | undefined): CipherAlgorithm | null {
  if (value === null || value === undefined || value === false) return null;
  if (value === true) return 'fernet';
  const word = value.trim().toLowerCase();
  if (['', 'no', 'off', '0', 'false'].includes(word)) return null;
  if (['yes', 'on', '1', 'true'].includes(word)) return 'fernet';
  if (word.startsWith('native')) return 'native';
  const known = CIPHER_ALGORITHMS.find((name) => name === word);
  if (known === undefined) {
    throw new EscaleError('Config', `unsupported encryption algorithm '${value}'`, {
      key: 'encryption',
      hint: `use one of: ${CIPHER_ALGORITHMS.filter((n) => n !== 'native').join(', ')}`,
    });
  }
  return known;
}

/**
 * Builds the cipher for a configuration, or null when encryption is off. Throws Config for a
 * missing key, Crypto for an unusable key, and Unsupported for `native` (never falls back to clear text).
 */
export function createCipher(config: CipherConfig, context: CipherContext): Cipher | null {
  const algorithm = config.algorithm === null ? null : parseCipherAlgorithm(config.algorithm);
  if (algorithm === null) return null;
  if (algorithm === 'plain') {
    return { name: 'plain', encrypts: false, hasIntegrity: false, encrypt: () => new PassThrough(), decrypt: () => new PassThrough() };
  }
  if (algorithm === 'native') {
    // why: 0.7 silently sent clear text for `native` on every backend but googledrive (relay-format.md F-11);
    // no backend here offers native encryption, so refuse rather than leak.
    throw new EscaleError('Unsupported', "encryption 'native' is not available: none of the supported backends offers native encryption", {
      key: 'encryption',
      hint: "use 'encryption = fernet' (and the same key file on every client)",
    });
  }
  if (config.key === null || config.key.length === 0) {
    throw new EscaleError('Config', 'missing passphrase; cannot encrypt', { key: 'passphrase' });
  }
  const material = Buffer.from(config.key);
  if (algorithm === 'fernet') {
    const key = FernetKey.parse(material);
    return {
      name: 'fernet',
      encrypts: true,
      hasIntegrity: true,
      encrypt: (options = {}) => createFernetEncryptStream(key, { now: context.now(), ...options }),
      decrypt: (options = {}) => createFernetDecryptStream(key, options),
    };
  }
  // why: relay-format.md P5.4: it was verified that the `cryptography` and `blowfish` Python backends produce the same
  // bytes (IV || standard OFB), so the three identifiers share one implementation. It runs on
  // the main thread: Blowfish is kept for old relays, not for speed.
  new BlowfishBlock(material);
  return {
    name: algorithm,
    encrypts: true,
    hasIntegrity: false,
    encrypt: () => createBlowfishEncryptStream(material),
    decrypt: () => createBlowfishDecryptStream(material),
  };
}
