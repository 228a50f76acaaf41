// Fernet (https://github.com/fernet/spec), byte-compatible with Python `cryptography`:
// token = base64url(0x80 || timestamp(8, BE) || IV(16) || AES-128-CBC(PKCS7(plaintext)) || HMAC-SHA256),
// written WITH '=' padding and no LF (relay-format.md P5.3).
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Cipher, Decipher, Hmac } from 'node:crypto';
import type { Transform, TransformCallback } from 'node:stream';
import { inspect } from 'node:util';
import { EscaleError } from '../core/errors.js';
import { Base64Decoder, Base64Encoder, toBase64Url } from './base64url.js';
import { ownsWholeMemory, ThreadedTransform, type CipherStage, type CipherThreadTask } from './cipher-thread.js';

const VERSION = 0x80;
const HEADER_LENGTH = 1 + 8 + 16;
const HMAC_LENGTH = 32;
const BLOCK = 16;
/** Python `cryptography` tolerates this much clock skew (seconds) when a TTL is checked. */
const MAX_CLOCK_SKEW = 60;

/** A parsed Fernet key: bytes 0-15 sign (HMAC-SHA256), bytes 16-31 encrypt (AES-128). */
export class FernetKey {
  readonly #signing: Buffer;
  readonly #encryption: Buffer;

  private constructor(raw: Buffer) {
    this.#signing = Buffer.from(raw.subarray(0, 16));
    this.#encryption = Buffer.from(raw.subarray(16, 32));
  }

  /**
   * Parses key material as Python's Fernet does (relay-format.md P5.2, P5.3): url-safe base64 of exactly 32 bytes;
   * bytes outside the base64 alphabets (such as a trailing LF) are skipped. Throws Crypto otherwise.
   */
  static parse(material: Uint8Array | string): FernetKey {
    const text = typeof material === 'string' ? material : Buffer.from(material).toString('latin1');
    // why: Python's urlsafe_b64decode (validate=False) maps -_ to +/ and drops every other byte
    // outside the standard alphabet, so a key file ending in LF still works there; match it.
    const kept = text.replace(/[^A-Za-z0-9+/=_-]/g, '');
    const body = kept.replace(/=+$/, '');
    const padding = kept.length - body.length;
    const valid = !body.includes('=') && (body.length + padding) % 4 === 0 && body.length === 43;
    if (!valid) {
      throw new EscaleError('Crypto', 'the Fernet key is not 32 bytes of url-safe base64 (44 characters ending with "=")', {
        hint: "generate one with 'escalectl genkey FILE'",
      });
    }
    return new FernetKey(Buffer.from(body.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url'));
  }

  /** Builds a key from 32 raw bytes (signing key first). */
  static fromBytes(raw: Uint8Array): FernetKey {
    if (raw.length !== 32) throw new EscaleError('Crypto', `a Fernet key has 32 bytes, not ${raw.length}`);
    return new FernetKey(Buffer.from(raw));
  }

  /** The HMAC-SHA256 key (internal use by this module). */
  signingKey(): Buffer {
    return this.#signing;
  }

  /** The AES-128 key (internal use by this module). */
  encryptionKey(): Buffer {
    return this.#encryption;
  }

  // why: keys must never reach a log line, even through console.log(key) or JSON.stringify.
  /** Hides the key bytes from util.inspect. */
  [inspect.custom](): string {
    return 'FernetKey [redacted]';
  }

  /** Hides the key bytes from JSON.stringify. */
  toJSON(): string {
    return '[redacted]';
  }
}

/** Returns a new random key as Python writes it: base64url of 32 random bytes, 44 characters, no LF. */
export function generateFernetKey(): string {
  return toBase64Url(randomBytes(32));
}

/** Options of the encrypting side. */
export interface FernetEncryptOptions {
  /** Current time, Unix milliseconds (like Date.now()); the token records whole seconds. */
  now: number;
  /** Fixed 16-byte IV, for test vectors only; random otherwise. */
  iv?: Uint8Array;
}

/** Options of the one-shot decryption. */
export interface FernetDecryptOptions {
  /** Reject tokens older than this many seconds (Python's `ttl`); escale itself never sets it. */
  ttl?: number;
  /** Current time, Unix milliseconds; required with `ttl`. */
  now?: number;
}

function header(now: number, iv: Uint8Array | undefined): Buffer {
  if (!Number.isFinite(now) || now < 0) throw new EscaleError('Internal', 'Fernet: the current time is not a valid timestamp');
  const useIv = iv === undefined ? randomBytes(16) : Buffer.from(iv);
  if (useIv.length !== 16) throw new EscaleError('Internal', 'Fernet: the IV must have 16 bytes');
  const head = Buffer.alloc(HEADER_LENGTH);
  head[0] = VERSION;
  head.writeBigUInt64BE(BigInt(Math.floor(now / 1000)), 1);
  useIv.copy(head, 9);
  return head;
}

function integrity(message: string, cause?: unknown): EscaleError {
  return new EscaleError('Integrity', `Fernet token rejected: ${message}`, cause === undefined ? {} : { cause });
}

/** Encrypts `plaintext` into a token text in one go (for tests and small records). */
export function fernetEncrypt(key: FernetKey, plaintext: Uint8Array, now: number, iv?: Uint8Array): string {
  const head = header(now, iv);
  const sealer = new FernetSealer(key.signingKey(), key.encryptionKey(), head);
  return toBase64Url(Buffer.concat([head, ...sealer.update(Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength)), ...sealer.final()]));
}

/**
 * Decrypts a whole token (text or its ASCII bytes) and returns the plaintext. Throws Integrity for
 * a malformed, truncated, tampered or expired token, or one made with another key.
 */
export function fernetDecrypt(key: FernetKey, token: string | Uint8Array, options: FernetDecryptOptions = {}): Buffer {
  const decoder = new Base64Decoder();
  const data = Buffer.concat([decoder.push(typeof token === 'string' ? Buffer.from(token, 'latin1') : Buffer.from(token)), decoder.end()]);
  if (data.length < HEADER_LENGTH + HMAC_LENGTH) throw integrity('too short');
  if (data[0] !== VERSION) throw integrity('unknown version byte');
  if (options.ttl !== undefined) {
    if (options.now === undefined) throw new EscaleError('Internal', 'Fernet: a TTL check needs the current time');
    const nowSeconds = Math.floor(options.now / 1000);
    const stamp = Number(data.readBigUInt64BE(1));
    if (stamp + options.ttl < nowSeconds) throw integrity('expired');
    if (nowSeconds + MAX_CLOCK_SKEW < stamp) throw integrity('timestamp in the future');
  }
  const macAt = data.length - HMAC_LENGTH;
  const opener = new FernetOpener(key.signingKey(), key.encryptionKey());
  return Buffer.concat([...opener.update(data.subarray(0, macAt)), ...opener.final(data.subarray(macAt))]);
}

/**
 * Fernet decryption of a token's binary body (version, timestamp, IV, ciphertext: everything but
 * the HMAC), fed in pieces of any size; `final` checks the HMAC and the padding. Runs on the main
 * thread or in a cipher thread. The plaintext is untrusted until `final` has returned.
 */
export class FernetOpener implements CipherStage {
  private readonly mac: Hmac;
  private head: Buffer = Buffer.alloc(0);
  private decipher: Decipher | undefined;
  private bodyLength = 0;

  constructor(
    signingKey: Uint8Array,
    private readonly encryptionKey: Uint8Array,
  ) {
    this.mac = createHmac('sha256', signingKey);
  }

  /** Takes the next bytes of the body; returns the plaintext they complete (Integrity on a bad version byte). */
  update(data: Buffer): Buffer[] {
    if (data.length === 0) return [];
    if (this.decipher === undefined) {
      const need = HEADER_LENGTH - this.head.length;
      this.head = Buffer.concat([this.head, data.subarray(0, need)]);
      if (this.head[0] !== VERSION) throw integrity('unknown version byte (not a Fernet token)');
      if (this.head.length < HEADER_LENGTH) return [];
      this.mac.update(this.head);
      this.decipher = createDecipheriv('aes-128-cbc', this.encryptionKey, this.head.subarray(9));
      data = data.subarray(need);
      if (data.length === 0) return [];
    }
    this.bodyLength += data.length;
    this.mac.update(data);
    const plain = this.decipher.update(data);
    return plain.length > 0 ? [plain] : [];
  }

  /** Checks `mac` and the padding; returns the last plaintext. Throws Integrity when the token is not genuine. */
  final(mac: Buffer = EMPTY): Buffer[] {
    if (this.decipher === undefined || mac.length !== HMAC_LENGTH) throw integrity('truncated');
    if (this.bodyLength === 0 || this.bodyLength % BLOCK !== 0) throw integrity('truncated (ciphertext is not a whole number of blocks)');
    if (!timingSafeEqual(this.mac.digest(), mac)) throw integrity('HMAC mismatch (wrong key or corrupted data)');
    let last: Buffer;
    try {
      last = this.decipher.final();
    } catch (error) {
      throw integrity('bad padding', error);
    }
    return last.length > 0 ? [last] : [];
  }
}

/**
 * Fernet encryption of a plaintext fed in pieces of any size: AES-128-CBC, and HMAC-SHA256 over the
 * header and the ciphertext; `final` gives the last ciphertext and the HMAC. Runs on the main
 * thread or in a cipher thread; the caller writes the header and encodes everything in base64.
 */
export class FernetSealer implements CipherStage {
  private readonly mac: Hmac;
  private readonly cipher: Cipher;

  constructor(signingKey: Uint8Array, encryptionKey: Uint8Array, head: Uint8Array) {
    this.mac = createHmac('sha256', signingKey).update(head);
    this.cipher = createCipheriv('aes-128-cbc', encryptionKey, head.subarray(9, HEADER_LENGTH));
  }

  /** Encrypts and signs the next plaintext; returns the ciphertext it completes. */
  update(plain: Buffer): Buffer[] {
    const ciphertext = this.cipher.update(plain);
    if (ciphertext.length === 0) return [];
    this.mac.update(ciphertext);
    return [ciphertext];
  }

  /** The last ciphertext (the padded block) and the 32-byte HMAC. */
  final(): Buffer[] {
    const last = this.cipher.final();
    this.mac.update(last);
    return [last, this.mac.digest()];
  }
}

/** Decodes a token's text and holds back its last 32 bytes (maybe the HMAC) until more arrive. */
class TokenBodyReader {
  private readonly decoder = new Base64Decoder();
  private tail: Buffer = Buffer.alloc(0);
  private checked = false;

  /**
   * Decodes a chunk of text; returns the body bytes that cannot belong to the HMAC, in memory that
   * the caller owns (it may move it to another thread), possibly empty.
   */
  push(text: Buffer): Buffer {
    // why: the held-back bytes are decoded into room kept at the start of the new buffer, so no
    // chunk is ever copied behind them (Buffer.concat of the whole chunk before).
    const decoded = this.decoder.push(text, this.tail.length);
    this.tail.copy(decoded, 0);
    if (!this.checked && decoded.length > 0) {
      if (decoded[0] !== VERSION) throw integrity('unknown version byte (not a Fernet token)');
      this.checked = true;
    }
    const ready = decoded.length - HMAC_LENGTH;
    if (ready <= 0) {
      this.tail = decoded;
      return EMPTY;
    }
    this.tail = Buffer.from(decoded.subarray(ready));
    return decoded.subarray(0, ready);
  }

  /** The rest of the body and the HMAC; throws Integrity for bad padding or a token without room for an HMAC. */
  end(): { body: Buffer; mac: Buffer } {
    const all = Buffer.concat([this.tail, this.decoder.end()]);
    if (all.length < HMAC_LENGTH) throw integrity('truncated');
    return { body: all.subarray(0, all.length - HMAC_LENGTH), mac: all.subarray(all.length - HMAC_LENGTH) };
  }
}

const EMPTY = Buffer.alloc(0);

/** Input bytes after which a Fernet stream moves its work to a second thread, by default. */
// why: a thread costs ~25 ms of start-up and a few MiB, about what one core needs for 8 MiB; and
// what is held until the decision counts in the peak memory (push of 1 GiB: 121-126 MiB peak
// with 16 MiB held, 110-120 with 8).
// The split: the thread does AES and HMAC, this thread base64, the reads and writes, and the
// plaintext hash (upload consistency check or download checksum), which balances the two cores.
export const DEFAULT_THREAD_FROM = 8 * 1024 * 1024;

/** Options of both streaming directions. */
export interface FernetStreamOptions {
  /**
   * Input bytes held before the stream decides: a stream that reaches it moves its work to a
   * second thread, a shorter one is done here at its end (DEFAULT_THREAD_FROM; 0: a thread at
   * once; Infinity: never a thread, and nothing held).
   */
  threadFrom?: number;
  /**
   * The caller hands its input chunks over: the memory of a chunk that is the only view of it may
   * be moved to the thread (the chunk is then empty for the caller). Only for private sources,
   * such as a file read stream nobody else reads.
   */
  transferInput?: boolean;
}

/** Plaintext in, token text out: AES and HMAC here or on a thread (FernetSealer), base64 here. */
class FernetEncryptStream extends ThreadedTransform {
  private readonly encoder = new Base64Encoder();
  private readonly transferInput: boolean;

  constructor(
    private readonly key: FernetKey,
    private readonly head: Buffer,
    options: FernetStreamOptions,
  ) {
    super(options.threadFrom ?? DEFAULT_THREAD_FROM);
    this.transferInput = options.transferInput ?? false;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.feed(chunk, this.transferInput && ownsWholeMemory(chunk));
      this.settle(done);
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.finish(done);
    } catch (error) {
      done(error as Error);
    }
  }

  protected task(): CipherThreadTask {
    return { kind: 'fernet-seal', signingKey: this.key.signingKey(), encryptionKey: this.key.encryptionKey(), head: this.head };
  }

  protected inlineStage(): CipherStage {
    return new FernetSealer(this.key.signingKey(), this.key.encryptionKey(), this.head);
  }

  protected decided(): void {
    this.output(this.encoder.push(this.head));
  }

  /** Encodes ciphertext (one text chunk for all the parts). */
  protected fromStage(parts: Buffer[]): void {
    if (parts.length > 0) this.output(this.encoder.pushAll(parts));
  }

  /** Encodes the last block and the HMAC, then the padding. */
  protected lastFromStage(parts: Buffer[]): void {
    this.output(Buffer.concat([this.encoder.pushAll(parts), this.encoder.end()]));
  }
}

/** Token text in, plaintext out: base64 and the HMAC split here, HMAC and AES here or on a thread (FernetOpener). */
class FernetDecryptStream extends ThreadedTransform {
  private readonly reader = new TokenBodyReader();

  constructor(
    private readonly key: FernetKey,
    threadFrom: number,
  ) {
    super(threadFrom);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.feed(this.reader.push(chunk), true);
      this.settle(done);
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      const { body, mac } = this.reader.end();
      // why: not owned: the end of the body is a view of a small buffer that may be pooled.
      this.feed(body, false);
      this.finish(done, mac);
    } catch (error) {
      done(error as Error);
    }
  }

  protected task(): CipherThreadTask {
    return { kind: 'fernet-open', signingKey: this.key.signingKey(), encryptionKey: this.key.encryptionKey() };
  }

  protected inlineStage(): CipherStage {
    return new FernetOpener(this.key.signingKey(), this.key.encryptionKey());
  }

  protected decided(): void {
    // why: plaintext starts with the first result; a token has nothing before it.
  }

  protected fromStage(parts: Buffer[]): void {
    for (const part of parts) this.output(part);
  }

  protected lastFromStage(parts: Buffer[]): void {
    this.fromStage(parts);
  }
}

/**
 * A Transform from plaintext bytes to Fernet token text (ASCII bytes). A stream bigger than
 * `threadFrom` runs AES and the HMAC on a second thread; below it, the plaintext is held, then
 * sealed here at the end. Memory stays bounded (`threadFrom` plus a few chunks).
 */
export function createFernetEncryptStream(key: FernetKey, options: FernetEncryptOptions & FernetStreamOptions): Transform {
  return new FernetEncryptStream(key, header(options.now, options.iv), options);
}

/**
 * A Transform from Fernet token text to plaintext bytes. Streams bigger than `threadFrom` run the
 * HMAC and AES on a second thread (below it, the body is held, then decrypted here at the end).
 *
 * UNTRUSTED UNTIL THE END: the HMAC covers the whole token, so plaintext is emitted before it can
 * be verified. Consumers must write the output to a temporary file and use it only once the
 * stream has finished without error; the stream errors with EscaleError('Integrity') on a bad
 * version byte, malformed base64, truncation, HMAC mismatch (tampering or wrong key) or bad padding.
 */
export function createFernetDecryptStream(key: FernetKey, options: FernetStreamOptions = {}): Transform {
  return new FernetDecryptStream(key, options.threadFrom ?? DEFAULT_THREAD_FROM);
}
