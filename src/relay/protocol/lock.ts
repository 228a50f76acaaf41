import { EscaleError } from '../../core/errors.js';
import type { LockRecord } from './records.js';

/** Largest lock record accepted when parsing, in bytes (a real one is under 300 bytes). */
export const MAX_LOCK_BYTES = 64 * 1024;

/** Version written in every lock header (`lock%1.0`). */
export const LOCK_VERSION = '1.0';

const HEADER = 'lock%';

/**
 * Parses a lock file (relay-format.md P2.1): the `lock%<version>` form with `owner:`/`mode:` lines,
 * the legacy headerless form (the first line, as read and including its LF, is the owner), and the
 * empty unclaimed lock. LF, CRLF and CR line ends are accepted. Throws CorruptRecord for a record
 * larger than MAX_LOCK_BYTES, invalid UTF-8, or a mode other than `r`/`w`.
 */
export function parseLock(content: Uint8Array | string): LockRecord {
  const text = decode(content);
  if (text === '') return {};
  // why: Python reads the file in text mode with universal newlines, so CRLF and CR become LF.
  const normalised = text.replace(/\r\n?/g, '\n');
  const firstEnd = normalised.indexOf('\n');
  const first = firstEnd < 0 ? normalised : normalised.slice(0, firstEnd + 1);
  if (!first.startsWith(HEADER)) {
    // why: 0.7 keeps the legacy owner exactly as read, LF included, so `alice\n` never equals
    // `alice` and such a lock stays foreign to everybody; we keep that meaning.
    return { owner: first };
  }
  const version = first.slice(HEADER.length).trimEnd();
  let owner: string | undefined;
  let mode: string | undefined;
  for (const line of normalised.slice(first.length).split('\n')) {
    if (line.startsWith('owner:')) owner = line.slice('owner:'.length).trim();
    else if (line.startsWith('mode:')) mode = line.slice('mode:'.length).trim();
  }
  if (mode !== undefined && mode !== 'r' && mode !== 'w') {
    throw new EscaleError('CorruptRecord', `lock record has an unknown mode ${JSON.stringify(mode.slice(0, 40))}`);
  }
  return { version, ...(owner === undefined ? {} : { owner }), ...(mode === undefined ? {} : { mode }) };
}

/**
 * Writes a lock record: `lock%1.0\nowner: <owner>[\nmode: <r|w>]`, no trailing LF (29 bytes for
 * `alice`/`w`). Throws InvalidName when the owner is missing or could not be read back unchanged.
 */
export function formatLock(record: LockRecord): string {
  const owner = record.owner;
  if (owner === undefined || owner === '' || owner !== owner.trim() || hasControl(owner)) {
    throw new EscaleError('InvalidName', `cannot write a lock for owner ${JSON.stringify(owner ?? null)}`);
  }
  const lines = [`${HEADER}${LOCK_VERSION}`, `owner: ${owner}`];
  if (record.mode !== undefined) lines.push(`mode: ${record.mode}`);
  return lines.join('\n');
}

function decode(content: Uint8Array | string): string {
  const size = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  if (size > MAX_LOCK_BYTES) throw new EscaleError('CorruptRecord', `lock record is larger than ${MAX_LOCK_BYTES} bytes (${size})`);
  if (typeof content === 'string') return content;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch (cause) {
    throw new EscaleError('CorruptRecord', 'lock record is not valid UTF-8', { cause });
  }
}

function hasControl(text: string): boolean {
  // eslint-disable-next-line no-control-regex -- why: control characters are exactly what we look for
  return /[\x00-\x1f\x7f-\x9f]/.test(text);
}
