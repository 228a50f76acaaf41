// Blowfish-OFB as escale 0.7 writes it (relay-format.md P5.4): file = IV(8 random bytes) ||
// (plaintext XOR keystream), keystream O1 = E(IV), O(i+1) = E(O(i)), last block cut short, no
// padding, no MAC. The key is the key material's raw bytes (4-56 bytes), never base64-decoded.
//
// why a pure implementation: Node 20's OpenSSL 3 has Blowfish only in the legacy provider,
// which needs a Node flag (`--openssl-legacy-provider`) that users must never have to pass.
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import { piHexWords } from './pi-hex-words.js';

/** Length of the IV that prefixes every Blowfish file. */
export const BLOWFISH_IV_LENGTH = 8;
const ROUNDS = 16;

let initial: Uint32Array | undefined;

/** The 18 P-array words followed by the 4 x 256 S-box words, from the digits of pi (cached). */
function initialState(): Uint32Array {
  initial ??= piHexWords(18 + 4 * 256);
  return initial;
}

/** A keyed Blowfish block function (16 rounds, big-endian 32-bit halves). */
export class BlowfishBlock {
  private readonly p: Uint32Array;
  private readonly s: Uint32Array;
  private readonly signed: Int32Array;
  private readonly pair = new Uint32Array(2);

  /** Runs the key schedule; `key` must have 4 to 56 bytes (the sizes Python's backends accept). */
  constructor(key: Uint8Array) {
    if (key.length < 4 || key.length > 56) {
      throw new EscaleError('Crypto', `a Blowfish key has 4 to 56 bytes; the key material has ${key.length}`, {
        hint: "generate a key file with 'escalectl genkey FILE'",
      });
    }
    const state = initialState();
    this.p = state.slice(0, 18);
    this.s = state.slice(18);
    this.signed = new Int32Array(this.s.buffer, this.s.byteOffset, this.s.length);
    let at = 0;
    for (let i = 0; i < 18; i++) {
      let word = 0;
      for (let b = 0; b < 4; b++) {
        word = ((word << 8) | key[at]!) >>> 0;
        at = (at + 1) % key.length;
      }
      this.p[i] = (this.p[i]! ^ word) >>> 0;
    }
    const pair = this.pair;
    pair[0] = 0;
    pair[1] = 0;
    for (let i = 0; i < 18; i += 2) {
      this.encryptPair(pair);
      this.p[i] = pair[0]!;
      this.p[i + 1] = pair[1]!;
    }
    for (let i = 0; i < 1024; i += 2) {
      this.encryptPair(pair);
      this.s[i] = pair[0]!;
      this.s[i + 1] = pair[1]!;
    }
  }

  /** Encrypts the 64-bit block held as [left, right] in place. */
  encryptPair(pair: Uint32Array): void {
    const p = this.p;
    const s = this.signed;
    let left = pair[0]!;
    let right = pair[1]!;
    for (let i = 0; i < ROUNDS; i += 2) {
      // why: `| 0` after each addition keeps the arithmetic in int32 (mod 2^32), which V8 runs
      // without boxing doubles; the S-boxes are read through a signed view for the same reason.
      left ^= p[i]!;
      right ^= ((((s[left >>> 24]! + s[256 | ((left >>> 16) & 0xff)]!) | 0) ^ s[512 | ((left >>> 8) & 0xff)]!) + s[768 | (left & 0xff)]!) | 0;
      right ^= p[i + 1]!;
      left ^= ((((s[right >>> 24]! + s[256 | ((right >>> 16) & 0xff)]!) | 0) ^ s[512 | ((right >>> 8) & 0xff)]!) + s[768 | (right & 0xff)]!) | 0;
    }
    pair[0] = (right ^ p[17]!) >>> 0;
    pair[1] = (left ^ p[16]!) >>> 0;
  }

  /** Encrypts one 8-byte block (ECB), returning a new buffer. */
  encryptBlock(block: Uint8Array): Buffer {
    if (block.length !== 8) throw new EscaleError('Internal', 'Blowfish blocks have 8 bytes');
    const pair = new Uint32Array([readWord(block, 0), readWord(block, 4)]);
    this.encryptPair(pair);
    const out = Buffer.alloc(8);
    out.writeUInt32BE(pair[0]!, 0);
    out.writeUInt32BE(pair[1]!, 4);
    return out;
  }
}

function readWord(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** OFB keystream generator: XORs data with E(IV), E(E(IV)), ... across calls. */
export class BlowfishOfb {
  private readonly block: BlowfishBlock;
  private readonly pair: Uint32Array;
  private readonly stream = Buffer.alloc(8);
  private used = 8;

  /** Starts the keystream for a key (raw bytes or an already keyed block) and the 8-byte `iv`. */
  constructor(key: Uint8Array | BlowfishBlock, iv: Uint8Array) {
    if (iv.length !== BLOWFISH_IV_LENGTH) throw new EscaleError('Internal', 'the Blowfish IV has 8 bytes');
    this.block = key instanceof BlowfishBlock ? key : new BlowfishBlock(key);
    this.pair = new Uint32Array([readWord(iv, 0), readWord(iv, 4)]);
  }

  /** Returns `data` XOR the next `data.length` keystream bytes (OFB encryption and decryption are the same). */
  apply(data: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(data.length);
    const pair = this.pair;
    const ks = this.stream;
    let i = 0;
    while (i < data.length && this.used < 8) out[i] = data[i++]! ^ ks[this.used++]!;
    // why: the whole-block loop XORs two words at a time; it is the hot path for large files.
    while (i + 8 <= data.length) {
      this.block.encryptPair(pair);
      const l = pair[0]!;
      const r = pair[1]!;
      out[i] = data[i]! ^ (l >>> 24);
      out[i + 1] = data[i + 1]! ^ ((l >>> 16) & 0xff);
      out[i + 2] = data[i + 2]! ^ ((l >>> 8) & 0xff);
      out[i + 3] = data[i + 3]! ^ (l & 0xff);
      out[i + 4] = data[i + 4]! ^ (r >>> 24);
      out[i + 5] = data[i + 5]! ^ ((r >>> 16) & 0xff);
      out[i + 6] = data[i + 6]! ^ ((r >>> 8) & 0xff);
      out[i + 7] = data[i + 7]! ^ (r & 0xff);
      i += 8;
    }
    if (i < data.length) {
      this.block.encryptPair(pair);
      ks.writeUInt32BE(pair[0]!, 0);
      ks.writeUInt32BE(pair[1]!, 4);
      this.used = 0;
      while (i < data.length) out[i] = data[i++]! ^ ks[this.used++]!;
    }
    return out;
  }
}

/** Options of the encrypting side. */
export interface BlowfishEncryptOptions {
  /** Fixed 8-byte IV, for tests only; random otherwise. */
  iv?: Uint8Array;
}

/** Encrypts a whole buffer: IV || OFB(plaintext). */
export function blowfishEncrypt(key: Uint8Array, plaintext: Uint8Array, options: BlowfishEncryptOptions = {}): Buffer {
  const iv = options.iv === undefined ? randomBytes(BLOWFISH_IV_LENGTH) : Buffer.from(options.iv);
  return Buffer.concat([iv, new BlowfishOfb(key, iv).apply(plaintext)]);
}

/** Decrypts a whole buffer made of IV || OFB(plaintext). A wrong key gives garbage, not an error. */
export function blowfishDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  if (data.length < BLOWFISH_IV_LENGTH) throw new EscaleError('Integrity', 'Blowfish data is shorter than its 8-byte IV (truncated)');
  return new BlowfishOfb(key, data.subarray(0, BLOWFISH_IV_LENGTH)).apply(data.subarray(BLOWFISH_IV_LENGTH));
}

/** A Transform from plaintext to IV || Blowfish-OFB ciphertext. */
export function createBlowfishEncryptStream(key: Uint8Array, options: BlowfishEncryptOptions = {}): Transform {
  const iv = options.iv === undefined ? randomBytes(BLOWFISH_IV_LENGTH) : Buffer.from(options.iv);
  const ofb = new BlowfishOfb(key, iv);
  let started = false;
  const start = (stream: Transform): void => {
    if (!started) stream.push(iv);
    started = true;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      start(this);
      done(null, ofb.apply(chunk));
    },
    flush(done: TransformCallback) {
      start(this);
      done();
    },
  });
}

/**
 * A Transform from IV || Blowfish-OFB ciphertext to plaintext. Blowfish has no integrity check:
 * a wrong key or altered data decrypts to garbage silently; only a file shorter than the IV errors.
 */
export function createBlowfishDecryptStream(key: Uint8Array): Transform {
  // why: key the block now, so that a bad key fails before any data flows.
  const block = new BlowfishBlock(key);
  let iv = Buffer.alloc(0);
  let ofb: BlowfishOfb | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      if (ofb === undefined) {
        iv = Buffer.concat([iv, chunk]);
        if (iv.length < BLOWFISH_IV_LENGTH) return done();
        chunk = iv.subarray(BLOWFISH_IV_LENGTH);
        ofb = new BlowfishOfb(block, iv.subarray(0, BLOWFISH_IV_LENGTH));
      }
      done(null, chunk.length === 0 ? undefined : ofb.apply(chunk));
    },
    flush(done: TransformCallback) {
      if (ofb === undefined) return done(new EscaleError('Integrity', 'Blowfish data is shorter than its 8-byte IV (truncated)'));
      done();
    },
  });
}
