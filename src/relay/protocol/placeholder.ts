import { EscaleError } from '../../core/errors.js';
import { detached, sharedList } from '../../core/intern.js';
import { metadataRecord, type MetadataRecord } from './records.js';

/** Largest metadata record accepted, in bytes (a real one is about 200 bytes plus one line per puller). */
export const MAX_RECORD_BYTES = 64 * 1024;

/** The line that starts the puller list; always written, even with no pullers. */
export const PULLERS_MARKER = '---pullers---';

/** Version written in every metadata header (`placeholder%1.0`). */
export const METADATA_VERSION = '1.0';

/** The legacy (pre-0.5.1) timestamp format: `%y%m%d_%H%M%S`, read as UTC. */
export const LEGACY_TIMESTAMP_FORMAT = '%y%m%d_%H%M%S';

/** Largest timestamp magnitude accepted (9999-12-31T23:59:59Z); catches milliseconds passed as seconds. */
export const MAX_SANE_SECONDS = 253_402_300_799;

/** Options of `parseMetadata`. */
export interface ParseMetadataOptions {
  /** strftime-style format of legacy timestamp lines (the `modification time` option when it is a string). */
  readonly legacyTimestampFormat?: string;
  /** Size limit in bytes; defaults to MAX_RECORD_BYTES. */
  readonly maxBytes?: number;
}

interface ParsedText {
  readonly record: MetadataRecord;
  readonly format: 'empty' | 'legacy' | 'current';
  /** Whether the `---pullers---` (or any puller/reader) marker was seen. */
  readonly sawMarker: boolean;
}

/**
 * Parses a metadata record (relay-format.md P2.2): the current `placeholder%1.0` form, the legacy
 * timestamp-only form, or an empty record. Lines are split like Python's `splitlines()`. Unknown
 * keys are dropped. Throws CorruptRecord for what 0.7 finds fatal (a bad section marker, a
 * `key:value` line without exactly one `:`) and for hostile content: too large, invalid UTF-8, a
 * timestamp or parts that is not a sane integer, a checksum that is not hex, a name with control
 * characters.
 */
export function parseMetadata(content: Uint8Array | string, options: ParseMetadataOptions = {}): MetadataRecord {
  return parseDetailed(content, options).record;
}

/**
 * Writes a metadata record in 0.7's exact form: header, `pusher`, `timestamp` (if non-zero),
 * `checksum`, `parts`, the `---pullers---` line and one line per puller, joined by LF with no
 * trailing LF. Throws CorruptRecord for a record with neither timestamp nor checksum (0.7 refuses
 * it too) or with a value that would not read back unchanged, and InvalidName for a bad name.
 */
export function formatMetadata(record: MetadataRecord): string {
  const hasTimestamp = record.timestamp !== undefined && record.timestamp !== 0;
  const hasChecksum = record.checksum !== undefined && record.checksum !== '';
  if (!hasTimestamp && !hasChecksum) throw new EscaleError('CorruptRecord', 'refusing to write a metadata record with neither timestamp nor checksum');
  const lines = [`placeholder%${METADATA_VERSION}`];
  if (record.pusher !== undefined && record.pusher !== '') {
    const problem = clientNameProblem(record.pusher);
    if (problem !== undefined) throw new EscaleError('InvalidName', `cannot write pusher ${JSON.stringify(record.pusher)}: it ${problem}`);
    lines.push(`pusher: ${record.pusher}`);
  }
  if (hasTimestamp) lines.push(`timestamp: ${saneInteger(record.timestamp, 'timestamp', true)}`);
  if (hasChecksum) {
    if (!/^[0-9a-f]+$/.test(record.checksum ?? '')) throw new EscaleError('CorruptRecord', `refusing to write checksum ${JSON.stringify(record.checksum)}: not lowercase hex`);
    lines.push(`checksum: ${record.checksum}`);
  }
  if (record.parts !== undefined) lines.push(`parts: ${saneInteger(record.parts, 'parts', false)}`);
  lines.push(PULLERS_MARKER);
  for (const puller of record.pullers) {
    const problem = pullerNameProblem(puller);
    if (problem !== undefined) throw new EscaleError('InvalidName', `cannot write puller ${JSON.stringify(puller)}: it ${problem}`);
    lines.push(puller);
  }
  return lines.join('\n');
}

/**
 * Returns the placeholder text with `client` recorded as a puller, the way 0.7 does it: `\n<client>`
 * appended to the text as it is (a current-format record that lacks the pullers marker gets the
 * marker first). Returns `text` unchanged when `client` is already recorded. Throws CorruptRecord
 * when `text` does not parse or the result would exceed the size limit.
 */
export function appendPuller(text: string, client: string, options: ParseMetadataOptions = {}): string {
  const problem = pullerNameProblem(client);
  if (problem !== undefined) throw new EscaleError('InvalidName', `cannot record puller ${JSON.stringify(client)}: it ${problem}`);
  const parsed = parseDetailed(text, options);
  // why: 0.7 appends blindly, so a re-pull records the name twice; we count distinct names
  // anyway, and skipping the duplicate keeps records from growing.
  if (parsed.record.pullers.includes(client)) return text;
  const addition = parsed.format === 'current' && !parsed.sawMarker ? `\n${PULLERS_MARKER}\n${client}` : `\n${client}`;
  const result = text + addition;
  const limit = options.maxBytes ?? MAX_RECORD_BYTES;
  if (Buffer.byteLength(result) > limit) throw new EscaleError('CorruptRecord', `metadata record would grow past ${limit} bytes`);
  return result;
}

/** The distinct non-empty puller names of a record, in first-seen order, leaving out `except`. */
export function distinctPullers(record: MetadataRecord | undefined, except?: string): string[] {
  const seen = new Set<string>();
  for (const name of record?.pullers ?? []) if (name !== '' && name !== except) seen.add(name);
  return [...seen];
}

/**
 * Whether the data must stay on the relay after `client` pulls it (relay-format.md P3.8,
 * sync-rules.md R6): with `pullerCount` N ≥ 2 it stays until N distinct pullers,
 * counting `client`, are recorded; unset, 0 or 1: the first puller removes it. Without a record no
 * puller can be recorded, so the data is not kept.
 */
export function shouldKeep(record: MetadataRecord | undefined, pullerCount: number | undefined, client: string): boolean {
  if (pullerCount === undefined || pullerCount <= 1 || record === undefined) return false;
  const pullersAfterThisOne = distinctPullers(record, client).length + 1;
  return pullersAfterThisOne < pullerCount;
}

/**
 * Why `name` cannot be a client name on a relay (it appears as pusher, puller and lock owner), or
 * undefined when it can: it must be non-empty, without `:`, control characters or surrounding
 * whitespace (relay-format.md P2.2, P2.3).
 */
export function clientNameProblem(name: string): string | undefined {
  if (name.includes(':')) return "contains ':'";
  return pullerNameProblem(name);
}

function pullerNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (hasControl(name) || /[\u2028\u2029]/.test(name)) return 'contains a control character or line break';
  if (name !== name.trim()) return 'starts or ends with whitespace';
  return undefined;
}

function parseDetailed(content: Uint8Array | string, options: ParseMetadataOptions): ParsedText {
  const text = decode(content, options.maxBytes ?? MAX_RECORD_BYTES);
  const lines = splitLines(text);
  const first = (lines[0] ?? '').trimEnd();
  if (first === '') return { record: { pullers: [] }, format: 'empty', sawMarker: false };
  const percent = first.lastIndexOf('%');
  if (percent < 0) {
    const timestamp = parseLegacyTimestamp(first, options.legacyTimestampFormat ?? LEGACY_TIMESTAMP_FORMAT);
    const pullers = lines.slice(1).map((line) => line.trimEnd()).filter((line) => line !== '').map(checkName);
    return { record: { timestamp, pullers }, format: 'legacy', sawMarker: false };
  }
  let version: string | undefined = first.slice(percent + 1);
  const fields: { pusher?: string; timestamp?: number; checksum?: string; parts?: number } = {};
  const pullers: string[] = [];
  let inPullers = false;
  for (const raw of lines.slice(1)) {
    const line = raw.trimEnd();
    if (line === '') continue;
    if (inPullers) {
      pullers.push(sharedName(checkName(line)));
      continue;
    }
    const lead = line[0] ?? '';
    if ('-=+#%'.includes(lead)) {
      const section = stripChar(line, lead).toLowerCase();
      if (!section.startsWith('puller') && !section.startsWith('reader')) {
        throw new EscaleError('CorruptRecord', `metadata record has an unknown section ${JSON.stringify(line.slice(0, 60))}`);
      }
      inPullers = true;
      continue;
    }
    // why: 0.7 unpacks `line.split(':', 2)` into two names, so zero or two colons are fatal there.
    const parts = line.split(':');
    if (parts.length !== 2) {
      throw new EscaleError('CorruptRecord', `metadata record has an invalid line ${JSON.stringify(line.slice(0, 60))} (expected exactly one ':')`);
    }
    const key = parts[0] ?? '';
    const value = (parts[1] ?? '').trimStart();
    switch (key) {
      case 'pusher':
        if (value !== '') fields.pusher = sharedName(checkName(value));
        break;
      case 'timestamp':
        fields.timestamp = parseInteger(value, 'timestamp', true);
        break;
      case 'parts':
        fields.parts = parseInteger(value, 'parts', false);
        break;
      case 'checksum':
        if (value !== '') fields.checksum = parseChecksum(value);
        break;
      default:
        // why: unknown keys (and 0.7's `target`, which nothing in 0.7.13 writes) are dropped.
        break;
    }
  }
  if (version === '') version = undefined;
  if (version === undefined && (fields.pusher !== undefined || fields.checksum !== undefined)) version = METADATA_VERSION;
  // why: a client keeps a record per relay file: its names and puller list are shared (see metadataRecord, sharedList).
  const record = metadataRecord(version === undefined ? undefined : sharedName(version), fields.pusher, fields.timestamp, fields.checksum, fields.parts, sharedList(pullers));
  return { record, format: 'current', sawMarker: inPullers };
}

/** Splits like Python's `str.splitlines()`: every Unicode line boundary, no empty last piece. */
function splitLines(text: string): string[] {
  // eslint-disable-next-line no-control-regex -- why: VT, FF, FS, GS, RS and NEL are line boundaries for splitlines()
  const lines = text.split(/\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function stripChar(line: string, char: string): string {
  let start = 0;
  let end = line.length;
  while (start < end && line[start] === char) start += 1;
  while (end > start && line[end - 1] === char) end -= 1;
  return line.slice(start, end);
}

function parseInteger(value: string, what: string, signed: boolean): number {
  // why: Python int() accepts surrounding whitespace, a sign and `_` between digits.
  const match = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/.exec(value);
  if (!match) throw new EscaleError('CorruptRecord', `metadata ${what} ${JSON.stringify(value.slice(0, 40))} is not an integer`);
  const number = Number(`${match[1]}${(match[2] ?? '').replaceAll('_', '')}`);
  return saneInteger(number, what, signed);
}

function saneInteger(value: number | undefined, what: string, signed: boolean): number {
  if (value === undefined || !Number.isSafeInteger(value) || Math.abs(value) > MAX_SANE_SECONDS || (!signed && value < 0)) {
    throw new EscaleError('CorruptRecord', `metadata ${what} ${String(value)} is not a sane integer`);
  }
  return value;
}

function parseChecksum(value: string): string {
  if (value.length > 1024 || !/^[0-9A-Fa-f]+$/.test(value)) {
    throw new EscaleError('CorruptRecord', `metadata checksum ${JSON.stringify(value.slice(0, 40))} is not a hex digest`);
  }
  // why: digests are compared with our lowercase ones; 0.7 always writes lowercase anyway.
  return detached(value.toLowerCase());
}

/** Most distinct names `sharedName` keeps. */
const SHARED_NAMES = 1024;
const sharedNames = new Map<string, string>();

/**
 * The one copy of a client name or version read from records (a relay names a few clients in
 * every one of its records), detached from the text it was cut from (see `detached`).
 */
function sharedName(name: string): string {
  const known = sharedNames.get(name);
  if (known !== undefined) return known;
  const own = detached(name);
  // why: bounded, whatever a hostile relay writes.
  if (sharedNames.size < SHARED_NAMES) sharedNames.set(own, own);
  return own;
}

function checkName(name: string): string {
  if (hasControl(name)) throw new EscaleError('CorruptRecord', `metadata name ${JSON.stringify(name.slice(0, 60))} contains control characters`);
  return name;
}

function hasControl(text: string): boolean {
  // eslint-disable-next-line no-control-regex -- why: control characters are exactly what we look for
  return /[\x00-\x1f\x7f-\x9f]/.test(text);
}

function decode(content: Uint8Array | string, limit: number): string {
  const size = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  if (size > limit) throw new EscaleError('CorruptRecord', `metadata record is larger than ${limit} bytes (${size})`);
  if (typeof content === 'string') return content;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch (cause) {
    throw new EscaleError('CorruptRecord', 'metadata record is not valid UTF-8', { cause });
  }
}

const DIRECTIVES: Record<string, { pattern: string; field: 'year2' | 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' }> = {
  y: { pattern: '(\\d\\d)', field: 'year2' },
  Y: { pattern: '(\\d\\d\\d\\d)', field: 'year' },
  m: { pattern: '(1[0-2]|0[1-9]|[1-9])', field: 'month' },
  d: { pattern: '(3[01]|[12]\\d|0[1-9]|[1-9]| [1-9])', field: 'day' },
  H: { pattern: '(2[0-3]|[0-1]\\d|\\d)', field: 'hour' },
  M: { pattern: '([0-5]\\d|\\d)', field: 'minute' },
  S: { pattern: '(6[0-1]|[0-5]\\d|\\d)', field: 'second' },
};

/**
 * Parses a legacy timestamp line like Python `strptime` followed by `calendar.timegm` (UTC), for
 * the directives `%y %Y %m %d %H %M %S %%`; other characters match themselves and whitespace
 * matches any run of whitespace. Throws CorruptRecord when `text` does not match, Config when the
 * format uses another directive.
 */
export function parseLegacyTimestamp(text: string, format: string = LEGACY_TIMESTAMP_FORMAT): number {
  let pattern = '^';
  const fields: Array<(typeof DIRECTIVES)[string]['field']> = [];
  for (let i = 0; i < format.length; i += 1) {
    const char = format[i] ?? '';
    if (char === '%') {
      const directive = format[i + 1] ?? '';
      i += 1;
      if (directive === '%') pattern += '%';
      else {
        const spec = DIRECTIVES[directive];
        if (!spec) throw new EscaleError('Config', `unsupported directive %${directive} in timestamp format ${JSON.stringify(format)}`);
        pattern += spec.pattern;
        fields.push(spec.field);
      }
    } else if (/\s/.test(char)) pattern += '\\s+';
    else pattern += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  const match = new RegExp(`${pattern}$`).exec(text);
  if (!match) throw new EscaleError('CorruptRecord', `legacy metadata timestamp ${JSON.stringify(text.slice(0, 40))} does not match ${JSON.stringify(format)}`);
  const value = { year: 1900, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  fields.forEach((field, index) => {
    const number = Number((match[index + 1] ?? '').trim());
    // why: Python maps %y 69-99 to 1969-1999 and 00-68 to 2000-2068 (POSIX rule).
    if (field === 'year2') value.year = number < 69 ? 2000 + number : 1900 + number;
    else value[field] = number;
  });
  const ms = Date.UTC(value.year, value.month - 1, value.day, value.hour, value.minute, Math.min(value.second, 59));
  const check = new Date(ms);
  if (check.getUTCDate() !== value.day) throw new EscaleError('CorruptRecord', `legacy metadata timestamp ${JSON.stringify(text)} is not a valid date`);
  return ms / 1000 + Math.max(0, value.second - 59);
}
