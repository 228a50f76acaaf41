// Writes relay entries exactly as an escale 0.7 client leaves them after a push (relay-format.md P3,
// P4), for names of any bytes: there is no Python client here, so "a 0.7 client pushed this" means
// these bytes on the relay. The record and index texts come from our codecs, which reproduce the
// fixtures of test/fixtures/escale-0.7 byte for byte (page-index.test.ts, placeholder.test.ts); the
// tar is written here, as Python's tarfile writes it (ustar, a PAX `path` record for names that
// are not short ASCII, a folder member before the files of each folder).
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { bzip2CompressBytes } from '../../src/system/bzip2.js';
import { formatPersistentIndex, formatUpdateIndex } from '../../src/relay/protocol/page-index.js';
import { formatMetadata } from '../../src/relay/protocol/placeholder.js';
import type { MetadataRecord } from '../../src/relay/protocol/records.js';

/** One file a 0.7 client pushed: its relative name as bytes, its content and its mtime. */
export interface Pushed07 {
  readonly name: Buffer;
  readonly content: Buffer;
  readonly mtimeSec: number;
}

/** The record 0.7 writes for a pushed file (placeholder, index entry): header, pusher, timestamp, sha512 checksum, no puller. */
export function record07(pusher: string, file: Pushed07): MetadataRecord {
  return { version: '1.0', pusher, timestamp: file.mtimeSec, checksum: createHash('sha512').update(file.content).digest('hex'), pullers: [] };
}

/** `root/name` for a name given as bytes (it may not be UTF-8). */
function under(root: string, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${root}/`), name]);
}

/** The folder part of a name (bytes before the last `/`), or an empty buffer. */
function folderOf(name: Buffer): Buffer {
  const slash = name.lastIndexOf(0x2f);
  return slash < 0 ? Buffer.alloc(0) : name.subarray(0, slash);
}

/**
 * The placeholder protocol after 0.7 pushed `files` (relay-format.md P3.4, lock released): for each
 * `D/N` the data file `D/N` and the placeholder `D/.N.placeholder`, written into the relay folder `root`.
 */
export async function writePlaceholderPush07(root: string, pusher: string, files: readonly Pushed07[]): Promise<void> {
  for (const file of files) {
    const folder = folderOf(file.name);
    const base = file.name.subarray(folder.length === 0 ? 0 : folder.length + 1);
    const placeholder = Buffer.concat([folder, Buffer.from(folder.length === 0 ? '.' : '/.'), base, Buffer.from('.placeholder')]);
    if (folder.length > 0) await mkdir(under(root, folder), { recursive: true });
    await writeFile(under(root, file.name), file.content);
    await writeFile(under(root, placeholder), formatMetadata(record07(pusher, file)));
  }
}

/**
 * The index protocol after 0.7 pushed `files` as update `T` of page `page` (relay-format.md P4.8): the
 * archive `.P.T.data` (bzip2 tar), the persistent index `.P.index` listing them, and the update index
 * `.P.T.index`. Names must be UTF-8 (0.7 cannot write others into its index text).
 */
export async function writeIndexPush07(root: string, pusher: string, page: string, t: number, files: readonly Pushed07[]): Promise<void> {
  const kept = files.map((file) => ({ name: file.name.toString('utf8'), record: record07(pusher, file) }));
  await writeFile(`${root}/.${page}.${t}.data`, await bzip2CompressBytes(tar07(files)));
  await writeFile(`${root}/.${page}.index`, await bzip2CompressBytes(Buffer.from(formatPersistentIndex([], { kept }), 'utf8')));
  await writeFile(`${root}/.${page}.${t}.index`, formatUpdateIndex([], [], { kept }));
}

/** A tar as Python's tarfile writes one: a folder member before the first file of each folder, PAX names where ustar cannot hold them. */
export function tar07(files: readonly Pushed07[]): Buffer {
  const blocks: Buffer[] = [];
  const folders = new Set<string>();
  for (const file of files) {
    const parts = file.name.toString('latin1').split('/');
    for (let depth = 1; depth < parts.length; depth += 1) {
      const folder = parts.slice(0, depth).join('/');
      if (folders.has(folder)) continue;
      folders.add(folder);
      blocks.push(...member(Buffer.from(folder, 'latin1'), '5', Buffer.alloc(0), file.mtimeSec));
    }
    blocks.push(...member(file.name, '0', file.content, file.mtimeSec));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function member(name: Buffer, type: string, content: Buffer, mtimeSec: number): Buffer[] {
  const out: Buffer[] = [];
  const ascii = name.every((byte) => byte >= 0x20 && byte < 0x7f);
  if (!ascii || name.length > 100) {
    const record = paxRecord(Buffer.concat([Buffer.from(' path='), name, Buffer.from('\n')]));
    out.push(header(Buffer.from('././@PaxHeader'), 'x', record.length, mtimeSec), padded(record));
  }
  out.push(header(name.subarray(0, 100), type, content.length, mtimeSec), padded(content));
  return out;
}

/** `<length> path=<name>\n`, the length counting the whole record, itself included. */
function paxRecord(rest: Buffer): Buffer {
  let length = rest.length + 1;
  while (String(length).length + rest.length !== length) length = String(length).length + rest.length;
  return Buffer.concat([Buffer.from(String(length)), rest]);
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function header(name: Buffer, type: string, size: number, mtimeSec: number): Buffer {
  const h = Buffer.alloc(512);
  name.copy(h, 0);
  h.write(type === '5' ? '0000755\0' : '0000644\0', 100, 'latin1');
  h.write('0001750\0', 108, 'latin1');
  h.write('0001750\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(`${mtimeSec.toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  h.write('zoe', 265, 'latin1');
  h.write('zoe', 297, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}
