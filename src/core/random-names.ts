import { randomFillSync } from 'node:crypto';

/** Random bytes drawn at once and handed out in pieces. */
const pool = Buffer.alloc(4096);
let offset = pool.length;

/**
 * 16 random hexadecimal digits (64 bits) for the name of a temporary file. why: drawn from a pool
 * filled 4 KiB at a time, because a draw per name (with OpenSSL's fork check) cost more than the
 * rest of naming a file, in rounds of many small files.
 */
export function randomHex16(): string {
  if (offset + 8 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + 8);
  offset += 8;
  return hex;
}
