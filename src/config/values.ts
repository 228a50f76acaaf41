/**
 * Conversions of raw configuration text into typed values (configuration.md C2, C3, C4).
 * Pure: no I/O. Each reader returns the value, or a `problem` sentence saying what was expected.
 */
import type { Pattern } from './schema.js';

/** A converted value or the reason it could not be read. */
export type Read<T> = { ok: true; value: T } | { ok: false; problem: string };

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const bad = <T>(problem: string): Read<T> => ({ ok: false, problem });

const TRUE_WORDS = ['1', 'yes', 'true', 'on'];
const FALSE_WORDS = ['0', 'no', 'false', 'off'];

/** Reads a boolean word (case-insensitive 1/yes/true/on, 0/no/false/off); undefined when not one. */
export function asBoolean(text: string): boolean | undefined {
  const lower = text.trim().toLowerCase();
  if (TRUE_WORDS.includes(lower)) return true;
  if (FALSE_WORDS.includes(lower)) return false;
  return undefined;
}

/** Reads a boolean or explains what is accepted. */
export function readBoolean(text: string): Read<boolean> {
  const value = asBoolean(text);
  return value === undefined ? bad(`expected yes/no (or true/false, on/off, 1/0), got '${text}'`) : ok(value);
}

/** Reads a decimal integer (optional sign, `_` separators as in Python). */
export function readInteger(text: string): Read<number> {
  const t = text.trim().replace(/(\d)_(?=\d)/g, '$1');
  return /^[+-]?\d+$/.test(t) ? ok(Number.parseInt(t, 10)) : bad(`expected a whole number, got '${text}'`);
}

/** Reads a decimal number (integer, decimal or exponent form). */
export function readNumber(text: string): Read<number> {
  const t = text.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? ok(Number.parseFloat(t)) : bad(`expected a number, got '${text}'`);
}

/** Splits a comma-separated list; items are trimmed and empty items dropped (`a, ,b,` = a, b). */
export function readList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

const MIB = 1024 * 1024;

// why: the original's units (configuration.md C3), exact case: a lower-case `b` after an upper-case prefix is a bit.
const EXACT_UNITS: Record<string, number> = {
  Kb: 1 / 8192,
  Mb: 1 / 8,
  Gb: 128,
  Tb: 131072,
  Pb: 134217728,
  Eb: 137438953472,
};

// Every other spelling is a byte unit, case-insensitively; all prefixes are binary (MB = MiB).
const BYTE_UNITS: Record<string, number> = { '': 1, b: 1 / MIB, byte: 1 / MIB, bytes: 1 / MIB, o: 1 / MIB };
['k', 'm', 'g', 't', 'p', 'e'].forEach((prefix, i) => {
  const factor = 1024 ** (i - 1);
  for (const suffix of ['', 'b', 'o', 'ib']) BYTE_UNITS[prefix + suffix] = factor;
});

/**
 * Reads a storage size into bytes. No unit = MB; MB = MiB; units are those of the original
 * (`KB`, `K`, `Ko`, `MB`, ... `EB`, `MiB`, `GiB`...) plus any case spelling, `KiB` and `B` (bytes);
 * `Kb`, `Mb`, `Gb`, `Tb`, `Pb`, `Eb` written exactly so are bits, as in the original. A comma may be
 * the decimal separator.
 */
export function readSize(text: string): Read<number> {
  const match = /^([0-9]+(?:[.,][0-9]+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (match === null) return bad(`expected a size such as 500MB or 2 GiB (no unit = MB), got '${text}'`);
  const amount = Number.parseFloat((match[1] ?? '0').replace(',', '.'));
  const unit = match[2] ?? '';
  const factor = EXACT_UNITS[unit] ?? BYTE_UNITS[unit.toLowerCase()];
  if (factor === undefined) return bad(`unknown storage unit '${unit}' in '${text}'; use B, KB, MB, GB, TB (or KiB, MiB, GiB, TiB)`);
  return ok(Math.round(amount * factor * MIB));
}

/** Replaces a leading `~` (alone or followed by `/`) with `home`; backslashes become `/` as in the original. */
export function expandHome(text: string, home: string): string {
  const t = text.trim().replace(/\\/g, '/');
  if (t === '~') return home;
  if (t.startsWith('~/')) return home.replace(/\/+$/, '') + t.slice(1);
  return t;
}

/** Compiles one pattern item (configuration.md C4): `/regex/` or a wildcard where only `.` and `*` are special. */
export function readPattern(item: string): Read<Pattern> {
  const isRegex = item.startsWith('/');
  let body: string;
  if (isRegex) {
    body = item.slice(1);
    if (body.endsWith('/') && !body.endsWith('\\/')) body = body.slice(0, -1);
    // why: Python named groups `(?P<n>...)` / `(?P=n)` have JavaScript equivalents.
    body = body.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  } else {
    body = item.replace(/\./g, '\\.').replace(/\*/g, '.*');
  }
  try {
    return ok({ source: item, kind: isRegex ? 'regex' : 'wildcard', regex: new RegExp(`^(?:${body})`) });
  } catch (error) {
    return bad(`'${item}' is not a valid pattern (${(error as Error).message.replace(/^Invalid regular expression: /, '')})`);
  }
}

/** Whether `name` matches a pattern: at its start only, like Python's `re.match`. */
export function matchesPattern(pattern: Pattern, name: string): boolean {
  return pattern.regex.test(name);
}

/** Levenshtein edit distance between two strings. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/** The closest candidate to `word` if it is close enough to be a likely typo. */
export function closestMatch(word: string, candidates: Iterable<string>): string | undefined {
  const limit = word.length <= 4 ? 1 : word.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    // why: the distance is at least the length difference; skipping keeps a huge mistyped value cheap.
    if (Math.abs(word.length - candidate.length) > limit) continue;
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
