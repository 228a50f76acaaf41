import { EscaleError } from '../../core/errors.js';
import { hostilePathProblem, relPathProblem, type RelayPath, type RelPath } from '../../core/relpath.js';

// The tar codec of update and backup archives, pure (no I/O, no clock): `TarWriter` lays members
// into large buffers, `TarParser` takes the bytes of a tar in chunks of any size and calls its
// handlers member by member. why synchronous: an update of 10,000 small files cost several promise
// hops and a few allocations per member through async generators; both now run one call per chunk.
// why our own code rather than the `tar` package: see archive.ts.

/** Size of a tar block (headers, padding unit). */
export const BLOCK = 512;
/** Largest PAX or GNU long-name record accepted (a name is at most 4096 bytes). */
export const MAX_META_BYTES = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Largest value of an 11-digit octal field (the ustar size and mtime fields): 8 GiB - 1. */
const MAX_OCTAL_11 = 0o77777777777;
// eslint-disable-next-line no-control-regex -- why: ASCII is exactly the test
const ASCII = /^[\x00-\x7f]*$/;

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * Writes tar members as `packUpdate` writes them (relay-format.md P4.6): ustar headers, a PAX `path`
 * record for names that are not ASCII or do not fit the ustar fields, a PAX `size` record from 8 GiB
 * on; mode 0644, owner 0, the given mtime. Bytes are laid into buffers of `batchBytes`, taken with
 * `take()`; an ASCII name costs no allocation.
 */
export class TarWriter {
  private batch: Buffer;
  private at = 0;
  private readonly done: Buffer[] = [];

  constructor(private readonly batchBytes = 256 * 1024) {
    if (!(batchBytes >= BLOCK)) throw new EscaleError('Internal', `tar batches need at least ${BLOCK} bytes`);
    this.batch = Buffer.allocUnsafe(batchBytes);
  }

  /** Bytes written and not yet taken. */
  get pendingBytes(): number {
    return this.done.reduce((sum, b) => sum + b.length, 0) + this.at;
  }

  /** Whether at least one whole batch waits to be taken. */
  get hasFullBatch(): boolean {
    return this.done.length > 0;
  }

  /** Writes the header (and PAX header, when needed) of a regular-file member of `size` bytes named `name`. */
  fileHeader(name: string, size: number, mtimeSec: number): void {
    const mtime = Math.min(Math.max(0, Math.trunc(mtimeSec)), MAX_OCTAL_11);
    const split = ASCII.test(name) ? splitUstarName(name) : undefined;
    const pax: string[] = [];
    if (split === undefined) pax.push(paxRecord('path', name));
    // why: the ustar size field holds 11 octal digits (< 8 GiB); larger sizes go into a PAX record.
    if (size > MAX_OCTAL_11) pax.push(paxRecord('size', String(size)));
    if (pax.length > 0) {
      const records = Buffer.from(pax.join(''), 'utf8');
      this.header('././@PaxHeader', '', records.length, mtime, 0x78 /* x */);
      this.bytes(records);
      this.zeros(padding(records.length));
    }
    const fields = split ?? { name: asciiFallback(name), prefix: '' };
    this.header(fields.name, fields.prefix, size > MAX_OCTAL_11 ? 0 : size, mtime, 0x30 /* 0 */);
  }

  /** Appends content bytes of the current member. */
  bytes(data: Uint8Array): void {
    let from = 0;
    while (from < data.length) {
      const n = Math.min(data.length - from, this.batchBytes - this.at);
      this.batch.set(data.subarray(from, from + n), this.at);
      this.at += n;
      from += n;
      if (this.at === this.batchBytes) this.nextBatch();
    }
  }

  /** Ends a member of `size` bytes: pads its content to a whole block. */
  endMember(size: number): void {
    this.zeros(padding(size));
  }

  /** Writes the end of the archive (two zero blocks; no padding to a 10 KiB record). */
  finish(): void {
    this.zeros(2 * BLOCK);
  }

  /** The bytes written since the last call, in order; with `all`, the last partial batch too. */
  take(all = false): Buffer[] {
    const out = this.done.splice(0);
    if (all && this.at > 0) {
      out.push(this.batch.subarray(0, this.at));
      this.batch = Buffer.allocUnsafe(this.batchBytes);
      this.at = 0;
    }
    return out;
  }

  private nextBatch(): void {
    this.done.push(this.batch);
    this.batch = Buffer.allocUnsafe(this.batchBytes);
    this.at = 0;
  }

  private zeros(n: number): void {
    let left = n;
    while (left > 0) {
      const k = Math.min(left, this.batchBytes - this.at);
      this.batch.fill(0, this.at, this.at + k);
      this.at += k;
      left -= k;
      if (this.at === this.batchBytes) this.nextBatch();
    }
  }

  /** One ustar header block; `name` and `prefix` are ASCII and fit their fields. */
  private header(name: string, prefix: string, size: number, mtime: number, type: number): void {
    if (this.batchBytes - this.at < BLOCK) {
      // why: a header is laid in one piece; batches are multiples of blocks in practice, so this is rare.
      const h = Buffer.alloc(BLOCK);
      fillHeader(h, 0, name, prefix, size, mtime, type);
      this.bytes(h);
      return;
    }
    fillHeader(this.batch, this.at, name, prefix, size, mtime, type);
    this.at += BLOCK;
    if (this.at === this.batchBytes) this.nextBatch();
  }
}

function fillHeader(h: Buffer, at: number, name: string, prefix: string, size: number, mtime: number, type: number): void {
  h.fill(0, at, at + BLOCK);
  h.write(name, at, 100, 'latin1');
  putOctal(h, at + 100, 0o644, 7);
  putOctal(h, at + 108, 0, 7);
  putOctal(h, at + 116, 0, 7);
  putOctal(h, at + 124, size, 11);
  putOctal(h, at + 136, mtime, 11);
  h[at + 156] = type;
  h.write('ustar\u000000', at + 257, 'latin1');
  if (prefix !== '') h.write(prefix, at + 345, 155, 'latin1');
  h.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += h[i] as number;
  putOctal(h, at + 148, sum, 6);
  h[at + 155] = 0x20;
}

/** `digits` octal digits of `value` then a NUL (the value fits: callers bound it). */
function putOctal(h: Buffer, at: number, value: number, digits: number): void {
  let v = value;
  for (let i = digits - 1; i >= 0; i--) {
    h[at + i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  h[at + digits] = 0;
}

/** `<len> key=value\n` where len counts the whole record in bytes, itself included. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restBytes = Buffer.byteLength(rest, 'utf8');
  let length = restBytes + 1;
  while (String(length).length + restBytes !== length) length = String(length).length + restBytes;
  return `${length}${rest}`;
}

/** Splits an ASCII name into the ustar prefix (155) and name (100) fields, or undefined if it cannot. */
function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  if (name.length <= 100) return { name, prefix: '' };
  for (let i = name.length - 1; i > 0; i--) {
    if (name.charCodeAt(i) !== 0x2f) continue;
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return { prefix: name.slice(0, i), name: name.slice(i + 1) };
  }
  return undefined;
}

function asciiFallback(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
}

// ---------------------------------------------------------------------------------------- reading

/** Limits and labels of a tar reader. */
export interface ReadTarOptions {
  /** Largest total size of the regular-file members, in bytes (a replaced member no longer counts). */
  readonly maxBytes: number;
  /** Largest number of members (files and folders). */
  readonly maxEntries: number;
  /** What is read, as error messages name it (`update archive`, `backup archive`). */
  readonly label: string;
  readonly signal?: AbortSignal;
  /**
   * When given, a member whose name is safe but one escale does not sync (not UTF-8, a backslash, a
   * control character, too long: `unsupportedNameProblem`) is skipped and reported here instead of
   * failing the archive; hostile names (`..`, absolute, NUL) fail it either way.
   */
  readonly onRefused?: (name: string, problem: string) => void;
}

/** A member of a tar, as the reader announces it. */
export interface TarEntry {
  /** The member name in NFC, the key it is matched by (folders without their trailing `/`). */
  readonly path: RelPath;
  /** The member name as stored (same as `path` unless it is not in NFC). */
  readonly name: RelayPath;
  /** The name as stored in the archive, for messages. */
  readonly rawName: string;
  readonly kind: 'file' | 'dir';
  /** Size in bytes (0 for folders). */
  readonly size: number;
}

/** What `TarParser` calls, in archive order. A handler that throws stops the parser (the error leaves `write`). */
export interface TarHandlers {
  /** A member begins. A folder has no content and no `end`. */
  member(entry: TarEntry): void;
  /** The next bytes of the current file's content: a view of the written chunk. */
  content(part: Buffer): void;
  /** The current file is complete (also right after `member` for an empty file). */
  end(): void;
}

const TYPE_NAMES: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
  S: 'a GNU sparse file',
  V: 'a volume label',
  M: 'a multi-volume continuation',
};

type Fail = (message: string, path?: string) => EscaleError;

/** Where the parser is: what the next bytes of the input are. */
type Phase = 'header' | 'meta' | 'content' | 'skip' | 'done';

/**
 * Reads a tar from chunks of any size: ustar, PAX (`x` records `path` and `size`; `g` ignored) and
 * GNU (`L` long names; `K` ignored) dialects; octal or GNU base-256 numbers; signed or unsigned
 * header checksums. Refuses, with CorruptRecord naming the member, anything but regular files and
 * folders (links, devices, FIFOs, sparse files), and with InvalidName any member name that is not a
 * safe relative path (`..`, absolute, NUL; and backslash, control characters, not UTF-8, too long
 * unless `onRefused` takes those); enforces `maxEntries` and `maxBytes` on declared sizes before a
 * member is announced. Member modes, owners and mtimes are ignored. After the end-of-archive block
 * the rest of the input is ignored (`finished`).
 */
export class TarParser {
  private readonly fail: Fail;
  private phase: Phase = 'header';
  /** Bytes of the header or extended header being gathered. */
  private held: Buffer = Buffer.alloc(BLOCK);
  private heldBytes = 0;
  /** Bytes left in the current phase (content, skip, meta). */
  private left = 0;
  /** Padding to skip after the current content. */
  private padAfter = 0;
  /** Type and size of the extended header being gathered. */
  private metaType = '';
  private metaSize = 0;
  /** The member whose content or padding is being read, for messages. */
  private currentName = '';
  /** Offset in the input of the next byte. */
  private offset = 0;
  private readonly declared = new Map<RelPath, number>();
  private entries = 0;
  private bytes = 0;
  private pax = new Map<string, string>();
  private longName: string | undefined;
  private metaHeaders = 0;

  constructor(
    private readonly options: ReadTarOptions,
    private readonly handlers: TarHandlers,
  ) {
    this.fail = (message, path) => new EscaleError('CorruptRecord', `${options.label}: ${message}`, path === undefined ? {} : { path });
  }

  /** Whether the end-of-archive block was read. */
  get finished(): boolean {
    return this.phase === 'done';
  }

  /** Parses the next bytes of the input, calling the handlers; throws on a damaged or refused archive. */
  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.phase !== 'done') {
      const available = chunk.length - at;
      switch (this.phase) {
        case 'header': {
          let header: Buffer;
          if (this.heldBytes === 0 && available >= BLOCK) {
            header = chunk.subarray(at, at + BLOCK);
            at += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.heldBytes, available);
            chunk.copy(this.held, this.heldBytes, at, at + n);
            this.heldBytes += n;
            at += n;
            if (this.heldBytes < BLOCK) continue;
            header = this.held.subarray(0, BLOCK);
            this.heldBytes = 0;
          }
          this.offset += BLOCK;
          this.onHeader(header);
          break;
        }
        case 'meta': {
          const n = Math.min(this.left, available);
          chunk.copy(this.held, this.heldBytes, at, at + n);
          this.heldBytes += n;
          this.left -= n;
          at += n;
          this.offset += n;
          if (this.left === 0) this.onMeta();
          break;
        }
        case 'content': {
          const n = Math.min(this.left, available);
          this.left -= n;
          this.offset += n;
          const part = chunk.subarray(at, at + n);
          at += n;
          this.handlers.content(part);
          if (this.left === 0) this.endContent();
          break;
        }
        case 'skip': {
          const n = Math.min(this.left, available);
          this.left -= n;
          this.offset += n;
          at += n;
          if (this.left === 0) this.phase = 'header';
          break;
        }
      }
    }
  }

  /** Checks that the input ended where a tar may end; throws CorruptRecord (truncated) otherwise. */
  end(): void {
    switch (this.phase) {
      case 'done':
        return;
      case 'header':
        throw this.fail(this.heldBytes === 0 ? 'it ends without the end-of-archive blocks (truncated?)' : 'it ends in the middle of a header (truncated?)');
      case 'meta':
        throw this.fail('it ends inside an extended header (truncated?)');
      default:
        throw this.fail('it ends inside a member (truncated?)', this.currentName);
    }
  }

  private onHeader(header: Buffer): void {
    const { fail, options } = this;
    if (header.equals(ZERO_BLOCK)) {
      this.phase = 'done';
      return;
    }
    if (!checksumOk(header, fail)) throw fail(`bad header checksum at byte ${this.offset - BLOCK}`);
    const type = String.fromCharCode(header[156] ?? 0);
    let size = parseNumber(header.subarray(124, 136), 'size', fail);

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (++this.metaHeaders > 8) throw fail('too many extended headers in a row');
      if (size > MAX_META_BYTES) throw fail(`extended header of ${size} bytes is too large`);
      this.metaType = type;
      this.metaSize = size;
      this.left = size + padding(size);
      if (this.held.length < this.left) this.held = Buffer.alloc(MAX_META_BYTES + BLOCK);
      this.heldBytes = 0;
      this.phase = 'meta';
      if (this.left === 0) this.onMeta();
      return;
    }
    this.metaHeaders = 0;

    let rawName: string;
    const paxPath = this.pax.get('path');
    if (paxPath !== undefined) rawName = paxPath;
    else if (this.longName !== undefined) rawName = this.longName;
    else {
      const name = cString(header.subarray(0, 100)).toString('utf8');
      // why: only POSIX ustar (`ustar\0`) has a prefix field; GNU (`ustar `) uses those bytes otherwise.
      const posix = header.toString('latin1', 257, 263) === 'ustar\u0000';
      const prefix = posix ? cString(header.subarray(345, 500)).toString('utf8') : '';
      rawName = prefix === '' ? name : `${prefix}/${name}`;
    }
    const paxSize = this.pax.get('size');
    if (paxSize !== undefined) {
      if (!/^[0-9]{1,16}$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw fail(`PAX size ${JSON.stringify(paxSize)} is invalid`, rawName);
      size = Number(paxSize);
    }
    if (this.pax.size > 0) this.pax = new Map();
    this.longName = undefined;
    this.currentName = rawName;

    const isFile = type === '0' || type === '\u0000' || type === '7';
    const isDir = type === '5';
    if (!isFile && !isDir) {
      const what = TYPE_NAMES[type] ?? `an unknown member type ${JSON.stringify(type)}`;
      throw fail(`member ${JSON.stringify(rawName)} is ${what}; only regular files and folders are accepted`, rawName);
    }
    if (++this.entries > options.maxEntries) throw fail(`more than ${options.maxEntries} members`);
    const trimmed = isDir ? rawName.replace(/\/+$/, '') : rawName;
    if (trimmed === '') throw new EscaleError('InvalidName', `${options.label}: refused member ${JSON.stringify(rawName)}: empty name`, { path: rawName });
    const problem = relPathProblem(trimmed);
    if (problem !== undefined && (options.onRefused === undefined || hostilePathProblem(trimmed) !== undefined)) {
      throw new EscaleError('InvalidName', `${options.label}: refused member ${JSON.stringify(rawName)}: it ${problem}`, { path: rawName });
    }
    if (problem !== undefined) {
      // why: a name the pusher's system allows (a backslash, a tab) costs that member only, not the archive.
      options.onRefused?.(trimmed, problem);
      this.skip(size + padding(size));
      return;
    }
    const name = trimmed as RelayPath;
    const path = name.normalize('NFC') as RelPath;
    if (isDir) {
      this.skip(size + padding(size));
      this.handlers.member({ path, name, rawName, kind: 'dir', size: 0 });
      return;
    }
    const replaced = this.declared.get(path) ?? 0;
    if (this.bytes - replaced + size > options.maxBytes) {
      throw fail(`member ${JSON.stringify(rawName)} (${size} bytes) takes the content over the limit of ${options.maxBytes} bytes`, rawName);
    }
    this.bytes += size - replaced;
    this.declared.set(path, size);
    this.handlers.member({ path, name, rawName, kind: 'file', size });
    this.left = size;
    this.padAfter = padding(size);
    this.phase = 'content';
    if (size === 0) this.endContent();
  }

  private onMeta(): void {
    const body = this.held.subarray(0, this.metaSize);
    if (this.metaType === 'x') this.pax = parsePax(body, this.fail);
    else if (this.metaType === 'L') this.longName = cString(body).toString('utf8');
    // 'g' (global PAX) and 'K' (GNU long link name) carry nothing we use: links are refused.
    this.heldBytes = 0;
    this.phase = 'header';
  }

  private endContent(): void {
    this.handlers.end();
    this.skip(this.padAfter);
  }

  private skip(n: number): void {
    this.left = n;
    this.phase = n > 0 ? 'skip' : 'header';
  }
}

function cString(field: Buffer): Buffer {
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

function parseNumber(field: Buffer, what: string, fail: Fail): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    // why: GNU base-256 for values that do not fit the octal digits; negative values are refused.
    if (((field[0] ?? 0) & 0x40) !== 0) throw fail(`negative ${what}`);
    let value = (field[0] ?? 0) & 0x3f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + (field[i] ?? 0);
      if (value > Number.MAX_SAFE_INTEGER) throw fail(`${what} is too large`);
    }
    return value;
  }
  const text = cString(field).toString('latin1').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw fail(`${what} field ${JSON.stringify(text)} is not octal`);
  return parseInt(text, 8);
}

function checksumOk(header: Buffer, fail: Fail): boolean {
  const stored = parseNumber(header.subarray(148, 156), 'checksum', fail);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer, fail: Fail): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw fail('PAX record without a length');
    const lengthText = data.subarray(pos, space).toString('latin1');
    if (!/^[0-9]{1,7}$/.test(lengthText)) throw fail('PAX record length is not a number');
    const length = Number(lengthText);
    const end = pos + length;
    if (end > data.length || length <= space - pos + 1 || data[end - 1] !== 0x0a) throw fail('PAX record length is wrong');
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw fail('PAX record without =');
    records.set(record.subarray(0, eq).toString('utf8'), record.subarray(eq + 1).toString('utf8'));
    pos = end;
  }
  return records;
}
