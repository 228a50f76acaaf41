import { extname } from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { EscaleError, fromSystemError } from '../../core/errors.js';
import type { RelPath } from '../../core/relpath.js';
import { bzip2Compress, bzip2Decompress } from '../../system/bzip2.js';

/** The two relay flavours: placeholder (`index` off) and index-based (`index = 1`/`topdir`). */
export type RelayFlavour = 'placeholder' | 'index';

/** Compression of a backup archive. */
export type Compression = 'none' | 'gzip' | 'bzip2';

/** Name of the manifest member, first in every archive escale writes; never a relay file. */
export const MANIFEST_NAME = '.escale-backup.json' as RelPath;

/** Version of the backup archive layout this build writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;

/** Largest manifest accepted, in bytes (a real one is under 300). */
export const MAX_MANIFEST_BYTES = 64 * 1024;

/** What `.escale-backup.json` says about the archive. */
export interface BackupManifest {
  /** Layout version (BACKUP_FORMAT_VERSION when written by this build). */
  readonly format: number;
  /** The configuration section the relay was backed up from. */
  readonly section: string;
  /** The relay protocol of that section (`file`, `ftp`...). */
  readonly protocol: string;
  /** Which protocol the relay files follow. */
  readonly relay: RelayFlavour;
  /** When the backup was taken (ISO 8601, UTC). */
  readonly date: string;
}

/**
 * The archive file and compression that `backup ARCHIVE` means (relay-format.md P7.4, configuration.md C13): the last
 * extension decides, `.tar` plain, `.gz` gzip, `.bz2` bzip2 (so `x.tar.gz` and `x.tar.bz2` work); no
 * extension means bzip2 and `.tar.bz2` is appended. Any other extension is a Usage error.
 */
export function backupArchiveOf(name: string): { path: string; compression: Compression } {
  const ext = extname(name);
  if (ext === '') return { path: `${name}.tar.bz2`, compression: 'bzip2' };
  if (ext === '.tar') return { path: name, compression: 'none' };
  if (ext === '.gz') return { path: name, compression: 'gzip' };
  if (ext === '.bz2') return { path: name, compression: 'bzip2' };
  throw new EscaleError('Usage', `compression not supported: '${ext}'`, { hint: 'name the archive .tar, .tar.gz or .tar.bz2 (or give no extension for .tar.bz2)' });
}

/** The compression of an archive judged by its first bytes (bzip2 `BZh`, gzip 1f 8b, else a plain tar). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  return 'none';
}

/** A stream that compresses a tar as `compression` says (a pass-through for 'none'). */
export function compressorFor(compression: Compression, signal?: AbortSignal): Duplex {
  if (compression === 'gzip') return createGzip();
  if (compression === 'bzip2') return bzip2Compress(signal === undefined ? {} : { signal });
  return new PassThrough();
}

/** A stream that decompresses an archive written with `compression` (damaged bzip2 fails with CorruptRecord, gzip see archiveReadError). */
export function decompressorFor(compression: Compression, signal?: AbortSignal): Duplex {
  if (compression === 'bzip2') return bzip2Decompress({ maxOutputBytes: Number.POSITIVE_INFINITY, ...(signal === undefined ? {} : { signal }) });
  if (compression === 'gzip') return createGunzip();
  return new PassThrough();
}

/** Translates a failure while reading an archive: damaged compressed data becomes a CorruptRecord naming the backup archive, file errors their catalogue code. */
export function archiveReadError(error: unknown): EscaleError {
  if (error instanceof EscaleError) {
    // why: the bzip2 filter names itself only; the user needs to know that the archive is damaged.
    return error.code === 'CorruptRecord' && !error.message.startsWith('backup archive') ? new EscaleError('CorruptRecord', `backup archive: ${error.message}`, { cause: error }) : error;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new EscaleError('CorruptRecord', `backup archive: gzip data is damaged (${(error as Error).message})`, { cause: error });
  }
  return fromSystemError(error);
}

/** The manifest as stored: one JSON object, UTF-8. */
export function formatManifest(manifest: BackupManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}

/**
 * Reads a manifest. Throws CorruptRecord when it is not the JSON object described by BackupManifest,
 * and Unsupported when a newer escale wrote it (format above BACKUP_FORMAT_VERSION).
 */
export function parseManifest(bytes: Uint8Array): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new EscaleError('CorruptRecord', `backup archive: ${MANIFEST_NAME} is not JSON`, { cause });
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const { format, section, protocol, relay, date } = record;
  if (typeof format !== 'number' || !Number.isInteger(format) || format < 1) throw new EscaleError('CorruptRecord', `backup archive: ${MANIFEST_NAME} has no valid format version`);
  if (format > BACKUP_FORMAT_VERSION) {
    throw new EscaleError('Unsupported', `backup archive format ${format} was written by a newer escale (this one reads format ${BACKUP_FORMAT_VERSION})`, { hint: 'restore it with a newer escale' });
  }
  if (typeof section !== 'string' || typeof protocol !== 'string' || typeof date !== 'string' || (relay !== 'placeholder' && relay !== 'index')) {
    throw new EscaleError('CorruptRecord', `backup archive: ${MANIFEST_NAME} lacks section, protocol, relay or date`);
  }
  return { format, section, protocol, relay, date };
}
