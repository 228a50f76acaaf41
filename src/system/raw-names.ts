import { readdirSync } from 'node:fs';
import { decodeName } from '../core/relpath.js';

/**
 * The names in `folder` that Node's UTF-8 decoding turns into `lossy` (a name holding U+FFFD), each
 * decoded with `decodeName` (bytes that are not UTF-8 as lone surrogates), so that a name that is
 * not UTF-8 can be reported as it is. why: listings read names as text, which costs half of what
 * reading them as bytes does; the folder is read again as bytes only when such a name shows up.
 * An unreadable folder gives `lossy` itself.
 */
export function namesDecodingTo(folder: string | Buffer, lossy: string): string[] {
  try {
    const names = readdirSync(folder, { encoding: 'buffer' }).filter((raw) => raw.toString('utf8') === lossy).map(decodeName);
    return names.length > 0 ? names : [lossy];
  } catch {
    return [lossy];
  }
}
