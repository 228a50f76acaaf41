// Streaming base64 codecs for Fernet tokens (relay-format.md P5.3): url-safe alphabet with '='
// padding on the way out; both alphabets, whitespace and strict padding on the way in.
import { EscaleError } from '../core/errors.js';

// why: strings over 128 KiB go to V8's large-object space (a fresh mapping per string); converting
// a 256 KiB chunk in pieces of 24 KiB (encode) or 32 KiB (decode) measured 3-4x faster.
/** Input bytes per string when encoding (a multiple of 3, so that no piece is padded). */
const ENCODE_PIECE = 24 * 1024;
/** Input characters per string when decoding (a multiple of 4). */
const DECODE_PIECE = 32 * 1024;

/** Base64 with the url-safe alphabet and '=' padding, as Python's urlsafe_b64encode writes it. */
export function toBase64Url(bytes: Uint8Array): string {
  // why: Node's 'base64url' drops the '=' padding, which Python's tokens and keys carry.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function malformed(message: string): EscaleError {
  return new EscaleError('Integrity', `Fernet token rejected: ${message}`);
}

/** Streaming base64url encoder that pads the end with '=' as Python does. */
export class Base64Encoder {
  /** Up to 2 bytes left over from the previous chunk (base64 encodes 3 bytes at a time). */
  private readonly carry = Buffer.alloc(3);
  private carried = 0;

  /** Encodes what can be encoded of `bytes` (whole groups of 3) and keeps the rest for later. */
  push(bytes: Buffer): Buffer {
    return this.pushAll([bytes]);
  }

  /** Encodes the pieces as if concatenated, into one buffer (no piece is copied to join them). */
  pushAll(pieces: readonly Buffer[]): Buffer {
    const total = pieces.reduce((sum, piece) => sum + piece.length, this.carried);
    const out = Buffer.allocUnsafe(Math.floor(total / 3) * 4);
    let o = 0;
    for (const piece of pieces) o = this.encodeInto(piece, out, o);
    return out;
  }

  private encodeInto(bytes: Buffer, out: Buffer, start: number): number {
    let at = 0;
    let o = start;
    if (this.carried > 0) {
      // why: the carry is completed from the chunk's first bytes and encoded on its own, so that
      // the chunk itself is never copied behind it (a whole-chunk copy per chunk before).
      at = Math.min(3 - this.carried, bytes.length);
      bytes.copy(this.carry, this.carried, 0, at);
      this.carried += at;
      if (this.carried < 3) return o;
      o += out.write(this.carry.toString('base64url'), o, 'latin1');
      this.carried = 0;
    }
    const whole = at + Math.floor((bytes.length - at) / 3) * 3;
    // why: a multiple of 3 bytes encodes without padding, so 'base64url' is exact here.
    for (let p = at; p < whole; p += ENCODE_PIECE) o += out.write(bytes.toString('base64url', p, Math.min(whole, p + ENCODE_PIECE)), o, 'latin1');
    this.carried = bytes.copy(this.carry, 0, whole);
    return o;
  }

  /** Encodes the bytes left over, with '=' padding. */
  end(): Buffer {
    const text = toBase64Url(this.carry.subarray(0, this.carried));
    this.carried = 0;
    return Buffer.from(text, 'latin1');
  }
}

// why: decoding straight from the bytes with a lookup table avoids turning every chunk into a
// string, regex-scanning it and concatenating the carry (a quarter of a pull's CPU before).
const SKIP = 64;
const PAD = 65;
const BAD = 255;
const DECODE: Uint8Array = (() => {
  const table = new Uint8Array(256).fill(BAD);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  table[0x2d] = 62; // '-'
  table[0x2b] = 62; // '+'
  table[0x5f] = 63; // '_'
  table[0x2f] = 63; // '/'
  for (const c of [0x09, 0x0a, 0x0d, 0x20]) table[c] = SKIP;
  table[0x3d] = PAD; // '='
  return table;
})();

/**
 * Streaming base64 decoder for tokens: accepts both alphabets, ignores ASCII whitespace, requires
 * correct '=' padding at the very end (as Python's decoder does), and rejects anything else
 * (Integrity).
 */
export class Base64Decoder {
  /** Sextets of the incomplete quad, most significant first. */
  private acc = 0;
  /** How many sextets `acc` holds (0-3). */
  private count = 0;
  private padding = 0;

  /**
   * Decodes a chunk. The result is a new buffer that owns its memory (never a slice of a shared
   * pool, so it may be moved to another thread), with `headroom` bytes left free at its start for
   * the caller, followed by the decoded bytes.
   */
  push(chunk: Buffer, headroom = 0): Buffer {
    const length = chunk.length;
    if (this.count === 0 && this.padding === 0 && length >= 1024) {
      // why: Node's native decoder is several times faster than a JS loop but skips bad bytes
      // and stops at '='; it yields exactly 3 bytes per 4 characters only when every character
      // is in the alphabet, so that count validates the chunk (otherwise the table path decides).
      const whole = length - (length & 3);
      const fast = Buffer.allocUnsafeSlow(headroom + (whole >> 2) * 3);
      let o = headroom;
      for (let at = 0; at < whole; at += DECODE_PIECE) o += fast.write(chunk.toString('latin1', at, Math.min(whole, at + DECODE_PIECE)), o, 'base64url');
      if (o === fast.length) {
        if (whole < length) this.decode(chunk.subarray(whole), 0);
        return fast;
      }
    }
    return this.decode(chunk, headroom);
  }

  /** Table decoder: validates and decodes every byte, carrying an incomplete quad. */
  private decode(chunk: Buffer, headroom: number): Buffer {
    const length = chunk.length;
    const out = Buffer.allocUnsafeSlow(headroom + ((this.count + length) >> 2) * 3);
    const table = DECODE;
    let o = headroom;
    let i = 0;
    let acc = this.acc;
    let count = this.count;
    for (;;) {
      // Fast path: whole quads of alphabet characters.
      if (count === 0 && this.padding === 0) {
        const last = length - 4;
        while (i <= last) {
          const a = table[chunk[i]!]!;
          const b = table[chunk[i + 1]!]!;
          const c = table[chunk[i + 2]!]!;
          const d = table[chunk[i + 3]!]!;
          if ((a | b | c | d) >= 64) break;
          const v = (a << 18) | (b << 12) | (c << 6) | d;
          out[o] = v >>> 16;
          out[o + 1] = (v >>> 8) & 0xff;
          out[o + 2] = v & 0xff;
          o += 3;
          i += 4;
        }
      }
      if (i >= length) break;
      // Slow path: one character (whitespace, padding, an invalid byte or a quad across chunks).
      const v = table[chunk[i++]!]!;
      if (v < 64) {
        if (this.padding > 0) throw malformed('data after the base64 padding');
        acc = (acc << 6) | v;
        if (++count === 4) {
          out[o] = acc >>> 16;
          out[o + 1] = (acc >>> 8) & 0xff;
          out[o + 2] = acc & 0xff;
          o += 3;
          acc = 0;
          count = 0;
        }
      } else if (v === PAD) {
        if (++this.padding > 2) throw malformed('malformed base64 (too much padding)');
      } else if (v !== SKIP) {
        throw malformed('malformed base64 (invalid character)');
      }
    }
    this.acc = acc;
    this.count = count;
    return o === out.length ? out : out.subarray(0, o);
  }

  /** The last 0-2 bytes of an incomplete quad; throws Integrity when the padding is wrong. */
  end(): Buffer {
    const rest = this.count;
    const acc = this.acc;
    this.acc = 0;
    this.count = 0;
    if (rest === 1 || (rest === 0 && this.padding > 0) || (rest > 0 && rest + this.padding !== 4)) {
      throw malformed('malformed base64 (incorrect padding)');
    }
    // why: like Node's and Python's decoders, the unused low bits of the last quad are ignored.
    if (rest === 2) return Buffer.from([acc >>> 4]);
    if (rest === 3) return Buffer.from([acc >>> 10, (acc >>> 2) & 0xff]);
    return Buffer.alloc(0);
  }
}
