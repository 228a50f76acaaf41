import { EscaleError } from '../../core/errors.js';
import { relayPath, relPathProblem, type RelayPath, type RelPath } from '../../core/relpath.js';
import type { MetadataRecord } from './records.js';
import { formatMetadata, parseMetadata, PULLERS_MARKER } from './placeholder.js';

/** Line that opens a group block of the persistent index (relay-format.md P4.3). */
export const GROUP_BEGIN = '---group---';

/** Line that closes a group block: eleven `-` (relay-format.md P4.3). */
export const GROUP_END = '-----------';

/** Default size limit of a (decompressed) persistent index: 256 MiB. */
export const DEFAULT_MAX_PERSISTENT_INDEX_SIZE = 256 * 1024 * 1024;

/** Default size limit of an update index: 64 MiB. */
export const DEFAULT_MAX_UPDATE_INDEX_SIZE = 64 * 1024 * 1024;

/** The value an entry with count 0 ("no metadata") is read back as: a record with no fields. */
export const EMPTY_RECORD: MetadataRecord = Object.freeze({ pullers: Object.freeze([]) as readonly string[] });

/** An index entry that was left out while parsing, and why. */
export interface SkippedIndexEntry {
  /** The entry name exactly as written in the index. */
  readonly name: string;
  /** InvalidName for a name escale does not sync, CorruptRecord for a body that is not a metadata record. */
  readonly error: EscaleError;
  /** For a refused name: what is wrong with it (`relPathProblem`'s words, or two spellings of one name). */
  readonly problem?: string;
}

/** An index entry with a name escale does not synchronise, kept to be written back as it was. */
export interface KeptEntry {
  /** The name exactly as written in the index. */
  readonly name: string;
  readonly record: MetadataRecord;
}

/**
 * What an index holds besides the entries escale synchronises. Both are written back when escale
 * rewrites the index, so that other clients (0.7 ones match names byte for byte) find their entries
 * as they wrote them.
 */
export interface IndexExtras {
  /** The name as the index spells it, for entries whose name is not in NFC (keyed by the NFC name). */
  readonly spellings: ReadonlyMap<RelPath, RelayPath>;
  /** Entries whose names are refused (see `SkippedIndexEntry.problem`), in file order. */
  readonly kept: readonly KeptEntry[];
}

/** A parsed index: the entries escale synchronises, by NFC name, and the extras to write back. */
export interface ParsedIndex extends IndexExtras {
  readonly entries: Map<RelPath, MetadataRecord>;
}

/** Options of the index parsers. */
export interface IndexParseOptions {
  /**
   * Largest input accepted: bytes for a byte array, UTF-16 units for a string. Defaults:
   * DEFAULT_MAX_PERSISTENT_INDEX_SIZE or DEFAULT_MAX_UPDATE_INDEX_SIZE.
   */
  readonly maxSize?: number;
  /**
   * Called for each entry whose name escale does not sync (not a safe relative path, or one name
   * spelled in two Unicode forms) or whose body is not a metadata record; the entry is then left out
   * of `entries` (a refused name with a good record goes to `kept`) and parsing goes on. Without it
   * such an entry makes the whole parse fail (InvalidName or CorruptRecord naming the entry).
   * Structural damage (bad count, truncated body, unterminated group) always fails with CorruptRecord.
   */
  readonly onSkip?: (skipped: SkippedIndexEntry) => void;
}

/** A parsed update index (relay-format.md P4.5). */
export interface UpdateIndex extends ParsedIndex {
  /** Resource (NFC) → record, in file order (a repeated name keeps its last value, as in Python). */
  readonly entries: Map<RelPath, MetadataRecord>;
  /**
   * The consumption block exactly as Python reads it: blank lines are kept as `''`, and the end of
   * the file adds one more `''` (`---pullers---\nbob` gives `['bob', '']`). Empty without a block.
   */
  readonly pullers: string[];
}

/**
 * Parses a decompressed persistent index `.<P>.index` (grouped, relay-format.md P4.4). Counts are
 * read as **bytes**, as Python reads them; a string is first encoded to UTF-8. A pullers block, which
 * Python never writes there, is ignored. Throws CorruptRecord (or InvalidName, see `onSkip`).
 */
export function parsePersistentIndex(input: Uint8Array | string, options: IndexParseOptions = {}): Map<RelPath, MetadataRecord> {
  return parsePersistentIndexContent(input, options).entries;
}

/** Parses a persistent index like `parsePersistentIndex`, with the spellings and kept entries to write back. */
export function parsePersistentIndexContent(input: Uint8Array | string, options: IndexParseOptions = {}): ParsedIndex {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  checkSize(bytes.length, options.maxSize ?? DEFAULT_MAX_PERSISTENT_INDEX_SIZE, 'persistent index');
  // why: a latin1 string has one character per byte, so one scanner serves both count units.
  return scan(bytes.toString('latin1'), { grouped: true, bytes: true }, options);
}

/**
 * Parses an update index `.<P>.<T>.index` (relay-format.md P4.5): UTF-8 text, universal newlines
 * (CRLF and CR read as LF), counts in code points, an optional pullers block. Throws CorruptRecord
 * (or InvalidName, see `onSkip`).
 */
export function parseUpdateIndex(input: Uint8Array | string, options: IndexParseOptions = {}): UpdateIndex {
  const max = options.maxSize ?? DEFAULT_MAX_UPDATE_INDEX_SIZE;
  let text: string;
  if (typeof input === 'string') {
    checkSize(input.length, max, 'update index');
    text = input;
  } else {
    checkSize(input.byteLength, max, 'update index');
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch (cause) {
      throw new EscaleError('CorruptRecord', 'update index is not valid UTF-8', { cause });
    }
  }
  return scan(text.replace(/\r\n?/g, '\n'), { grouped: false, bytes: false }, options);
}

/**
 * Writes a persistent index text (relay-format.md P4.4): entries grouped by their header and
 * `pusher` lines (groups in order of first appearance, entries in the given order), no pullers
 * block. `count` is the body's UTF-8 byte length, which is what Python's reader uses (equal to its
 * own character count for the ASCII bodies it writes). Names are written as `extras` spells them,
 * and its kept entries follow. The caller UTF-8-encodes and bzip2-compresses it.
 */
export function formatPersistentIndex(entries: Iterable<readonly [RelPath, MetadataRecord]>, extras?: Partial<IndexExtras>): string {
  const groups = new Map<string, string[]>();
  for (const [name, record] of writtenEntries(entries, extras)) {
    const grouped: string[] = [];
    const rest: string[] = [];
    for (const line of formatMetadata(record).split('\n')) {
      // why: Python groups on the keys `placeholder` and `pusher` by prefix (relay/index.py write_index).
      (line.startsWith('placeholder') || line.startsWith('pusher') ? grouped : rest).push(line);
    }
    const body = rest.join('\n') + '\n';
    const key = grouped.join('\n');
    let chunks = groups.get(key);
    if (chunks === undefined) groups.set(key, (chunks = []));
    chunks.push(`${name} ${Buffer.byteLength(body, 'utf8')}\n${body}`);
  }
  let out = '';
  for (const [key, chunks] of groups) {
    out += `${GROUP_BEGIN}\n${key === '' ? '' : key + '\n'}${GROUP_END}\n${chunks.join('')}`;
  }
  return out;
}

/**
 * Writes an update index text (relay-format.md P4.5): each entry is `<name> <count>\n<record>\n`
 * with count in code points; when `pullers` is non-empty, the consumption block
 * `---pullers---` + (`\n` + name)* follows with no trailing LF, names written as given (empty ones too).
 * Entry names are written as `extras` spells them, and its kept entries follow.
 */
export function formatUpdateIndex(entries: Iterable<readonly [RelPath, MetadataRecord]>, pullers: readonly string[] = [], extras?: Partial<IndexExtras>): string {
  let out = '';
  for (const [name, record] of writtenEntries(entries, extras)) {
    let body = formatMetadata(record);
    if (!body.endsWith('\n')) body += '\n';
    out += `${name} ${codePointLength(body)}\n${body}`;
  }
  if (pullers.length > 0) {
    for (const puller of pullers) {
      if (/[\r\n]/.test(puller)) throw new EscaleError('InvalidName', `puller name ${JSON.stringify(puller)} contains a line break`);
    }
    out += PULLERS_MARKER + pullers.map((p) => '\n' + p).join('');
  }
  return out;
}

function checkSize(size: number, max: number, what: string): void {
  if (size > max) throw new EscaleError('CorruptRecord', `${what} is ${size} long, over the limit of ${max}`);
}

// why: Python's str.isspace() set, which `rstrip()`/`rsplit()` use on update-index text.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
// why: bytes.isspace() is ASCII only; in the latin1 view of UTF-8 bytes 0x85/0xA0 are parts of characters.
const BYTE_SPACE = '\\t\\n\\v\\f\\r ';
const SPACE_CLASSES = {
  text: { trailing: new RegExp(`[${PY_SPACE}]+$`), split: new RegExp(`^(.*?)[${PY_SPACE}]+([^${PY_SPACE}]+)$`, 's') },
  bytes: { trailing: new RegExp(`[${BYTE_SPACE}]+$`), split: new RegExp(`^(.*?)[${BYTE_SPACE}]+([^${BYTE_SPACE}]+)$`, 's') },
};

/** The entries as written: each name in its index spelling (checked), then the kept entries. */
function* writtenEntries(entries: Iterable<readonly [RelPath, MetadataRecord]>, extras: Partial<IndexExtras> | undefined): Generator<readonly [string, MetadataRecord]> {
  for (const [key, record] of entries) {
    const name = extras?.spellings?.get(key) ?? key;
    relayPath(name);
    checkLineSafe(name);
    yield [name, record];
  }
  for (const kept of extras?.kept ?? []) {
    checkLineSafe(kept.name);
    yield [kept.name, kept.record];
  }
}

/** Why a name cannot be an index entry of any protocol reader, or undefined (see `indexNameProblem`). */
function lineProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (/[\r\n]/.test(name)) return 'contains a line break';
  // why: the reader strips trailing whitespace from the entry line, so such a name would come back changed.
  if (SPACE_CLASSES.text.trailing.test(name)) return 'ends with whitespace, which an index entry cannot keep';
  return undefined;
}

function checkLineSafe(name: string): void {
  const problem = lineProblem(name);
  if (problem !== undefined) throw new EscaleError('InvalidName', `index entry ${JSON.stringify(name)} cannot be stored: it ${problem}`, { path: name });
}

/**
 * Why a resource cannot be listed in an index although its name is safe, or undefined: a name that
 * ends with whitespace (Python's `str.isspace` set: space, tab, NBSP…) loses it when read back.
 */
export function indexNameProblem(name: RelayPath): string | undefined {
  return lineProblem(name);
}

function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Index of the position after `count` code points from `start`, or -1 if the text ends first. */
function advanceCodePoints(text: string, start: number, count: number): number {
  let i = start;
  for (let n = 0; n < count; n++) {
    if (i >= text.length) return -1;
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  return i;
}

interface ScanMode {
  readonly grouped: boolean;
  /** The text is a latin1 view of bytes: counts are bytes, names and bodies are UTF-8. */
  readonly bytes: boolean;
}

/** The reader of relay-format.md P4.3, shared by both index kinds. */
function scan(text: string, mode: ScanMode, options: IndexParseOptions): UpdateIndex {
  const space = mode.bytes ? SPACE_CLASSES.bytes : SPACE_CLASSES.text;
  const decode = mode.bytes ? (s: string) => Buffer.from(s, 'latin1').toString('utf8') : (s: string) => s;
  const entries = new Map<RelPath, MetadataRecord>();
  const spellings = new Map<RelPath, RelayPath>();
  const kept: KeptEntry[] = [];
  /** NFC names written in two spellings: every entry of them goes to `kept`. */
  const ambiguous = new Map<RelPath, string[]>();
  const pullers: string[] = [];
  let pos = 0;
  /** Python readline(): the next line with its LF, or '' at the end. */
  const readLine = (): string => {
    if (pos >= text.length) return '';
    const lf = text.indexOf('\n', pos);
    const end = lf < 0 ? text.length : lf + 1;
    const line = text.slice(pos, end);
    pos = end;
    return line;
  };
  const rstrip = (s: string) => s.replace(space.trailing, '');
  let group = '';

  for (;;) {
    const line = rstrip(readLine());
    if (line === '') break; // an empty line or the end of the text ends the entries
    if (mode.grouped && line === GROUP_BEGIN) {
      const lines: string[] = [];
      for (;;) {
        const raw = readLine();
        if (raw === '') throw new EscaleError('CorruptRecord', `index group block is not closed by '${GROUP_END}'`);
        const groupLine = rstrip(raw);
        if (groupLine === GROUP_END) break;
        lines.push(groupLine);
      }
      group = lines.length === 0 ? '' : lines.join('\n') + '\n';
      continue;
    }
    if (line === PULLERS_MARKER) {
      // why: Python's loop appends the final '' read at the end of the file (relay-format.md P4.3).
      for (;;) {
        const raw = readLine();
        pullers.push(decode(rstrip(raw)));
        if (raw === '') break;
      }
      break;
    }
    const split = space.split.exec(line);
    const shownName = decode(split?.[1] ?? line);
    if (split === null || split[1] === '' || split[2] === undefined) {
      throw new EscaleError('CorruptRecord', `index line ${JSON.stringify(shownName.slice(0, 200))} is not '<name> <count>'`);
    }
    const countText = split[2];
    if (!/^[0-9]{1,12}$/.test(countText)) {
      throw new EscaleError('CorruptRecord', `index entry ${JSON.stringify(shownName)}: count ${JSON.stringify(countText.slice(0, 40))} is not a non-negative decimal integer`, { path: shownName });
    }
    const count = Number(countText);
    const end = mode.bytes ? (pos + count <= text.length ? pos + count : -1) : advanceCodePoints(text, pos, count);
    if (end < 0) {
      throw new EscaleError('CorruptRecord', `index entry ${JSON.stringify(shownName)}: count ${count} runs past the end of the index`, { path: shownName });
    }
    const body = text.slice(pos, end);
    pos = end;
    const value = group + decode(body);
    let record: MetadataRecord;
    try {
      record = count === 0 ? EMPTY_RECORD : parseEntryRecord(shownName, value);
    } catch (error) {
      const escale = error instanceof EscaleError ? error : new EscaleError('CorruptRecord', String(error), { path: shownName, cause: error });
      const named = escale.message.includes(JSON.stringify(shownName))
        ? escale
        : new EscaleError(escale.code, `index entry ${JSON.stringify(shownName)}: ${escale.message}`, { path: shownName, cause: escale });
      if (options.onSkip === undefined) throw named;
      options.onSkip({ name: shownName, error: named });
      continue;
    }
    const problem = relPathProblem(shownName);
    if (problem !== undefined) {
      refuseEntry(options, shownName, problem);
      kept.push({ name: shownName, record });
      continue;
    }
    const key = shownName.normalize('NFC') as RelPath;
    const spelledAs = ambiguous.get(key) ?? [spellings.get(key) ?? (entries.has(key) ? key : shownName)];
    if (!spelledAs.includes(shownName)) spelledAs.push(shownName);
    if (spelledAs.length > 1) {
      // why: matching is by NFC name, so two spellings would be one file: neither is synchronised.
      if (!ambiguous.has(key)) {
        const earlier = entries.get(key);
        if (earlier !== undefined) kept.push({ name: spelledAs[0] as string, record: earlier });
        entries.delete(key);
        spellings.delete(key);
        ambiguous.set(key, spelledAs);
      }
      kept.push({ name: shownName, record });
      continue;
    }
    if (shownName !== key) spellings.set(key, shownName as RelayPath);
    entries.set(key, record);
  }
  for (const names of ambiguous.values()) {
    for (const name of names) {
      const others = names.filter((other) => other !== name).map((other) => JSON.stringify(other)).join(', ');
      refuseEntry(options, name, `has the same Unicode NFC form as ${others} in the index (one name spelled two ways); rename one of them`);
    }
  }
  return { entries, spellings, kept, pullers };
}

/** Reports an entry whose name escale does not sync; without `onSkip` it fails the parse. */
function refuseEntry(options: IndexParseOptions, name: string, problem: string): void {
  const error = new EscaleError('InvalidName', `index entry ${JSON.stringify(name)}: the name ${problem}`, { path: name });
  if (options.onSkip === undefined) throw error;
  options.onSkip({ name, error, problem });
}

function parseEntryRecord(name: string, value: string): MetadataRecord {
  try {
    return parseMetadata(value);
  } catch (cause) {
    if (cause instanceof EscaleError && cause.code === 'CorruptRecord') throw cause;
    throw new EscaleError('CorruptRecord', `index entry ${JSON.stringify(name)} has a broken record: ${String(cause)}`, { path: name, cause });
  }
}
