import { Readable } from 'node:stream';
import { EscaleError, hasCode, throwIfAborted } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { ROOT, type RelayPath } from '../../core/relpath.js';
import type { Backend } from '../backend.js';
import { readTarMembers, type TarMember } from './archive.js';
import { archiveReadError, MANIFEST_NAME, MAX_MANIFEST_BYTES, parseManifest, type BackupManifest, type RelayFlavour } from './backup-archive.js';
import { MAX_LOCK_BYTES } from './lock.js';
import { CopyTally, DESTINATION_LOCKED, groupOf, lockEveryGroup, releaseAll, type CopyFailure, type GroupLocker, type HeldGroups, type RelayGroup } from './relay-groups.js';

/** Opens the archive as an uncompressed tar stream (a new stream at each call). */
export type OpenTar = () => Readable;

/** One regular-file member of a checked archive. */
export interface ArchivedFile {
  readonly path: RelayPath;
  readonly size: number;
}

/** What the checking pass found in an archive. */
export interface CheckedArchive {
  /** The manifest, when the archive has one (archives of escale 0.7 or made by hand have none). */
  readonly manifest?: BackupManifest;
  /** Every regular-file member, in archive order (the manifest included). */
  readonly files: readonly ArchivedFile[];
  /** Total size of the relay files (the manifest left out), in bytes. */
  readonly bytes: number;
}

/** What a restore wrote. */
export interface RestoreReport {
  readonly files: number;
  readonly bytes: number;
  /** Relay files deleted by `purge`. */
  readonly purged: number;
  readonly failed: readonly CopyFailure[];
}

/** Settings of `restoreArchive`. */
export interface RestoreOptions {
  readonly backend: Backend;
  readonly flavour: RelayFlavour;
  readonly openTar: OpenTar;
  /** The result of `checkArchive` on the same archive. */
  readonly checked: CheckedArchive;
  /** Takes the destination group locks (`mode: w`); undefined: fast mode, nothing is locked. */
  readonly locker?: GroupLocker;
  /** Empty the destination relay first. */
  readonly purge: boolean;
  readonly logger: Logger;
  /** Called after each file with the files handled so far and the files to restore. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

/** Reads the members of a backup archive; damaged data, hostile names and links fail as `readTarMembers` says. */
async function* members(openTar: OpenTar, signal?: AbortSignal): AsyncGenerator<TarMember> {
  const tar = openTar();
  try {
    const options = { maxBytes: Number.MAX_SAFE_INTEGER, maxEntries: Number.MAX_SAFE_INTEGER, label: 'backup archive', ...(signal === undefined ? {} : { signal }) };
    yield* readTarMembers(translated(tar), options);
  } finally {
    tar.destroy();
  }
}

/** The chunks of `stream`, its failures (damaged compressed data, an unreadable file) as catalogue errors. */
async function* translated(stream: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (error) {
    throw archiveReadError(error);
  }
}

async function readAll(content: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of content) {
    size += chunk.length;
    if (size > limit) throw new EscaleError('CorruptRecord', `backup archive: ${what} is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The checking pass of a restore: reads the whole archive without writing anything, refusing
 * absolute or `..` member names, links and other non-regular members (InvalidName or
 * CorruptRecord naming the member), damaged or truncated data; reads the manifest. `onProgress`
 * gets the number of files read so far.
 */
export async function checkArchive(openTar: OpenTar, signal?: AbortSignal, onProgress?: (checked: number) => void): Promise<CheckedArchive> {
  const files: ArchivedFile[] = [];
  let manifest: BackupManifest | undefined;
  let bytes = 0;
  for await (const member of members(openTar, signal)) {
    if (member.kind === 'dir') continue;
    if (member.name === MANIFEST_NAME) manifest = parseManifest(await readAll(member.content, MAX_MANIFEST_BYTES, MANIFEST_NAME));
    else {
      for await (const _chunk of member.content) throwIfAborted(signal);
      bytes += member.size;
    }
    files.push({ path: member.name, size: member.size });
    onProgress?.(files.length);
  }
  return { ...(manifest === undefined ? {} : { manifest }), files, bytes };
}

/**
 * Writes a checked archive into the relay (relay-format.md P7.5, with escale's changes). With a locker,
 * every file group of the archive (and, with `purge`, of the relay) is locked first without
 * waiting: one held by another client aborts with LockBusy `cannot lock resource on destination
 * relay` and nothing is written. With `purge`, the relay is then emptied. Each file is streamed to
 * the relay (existing files of the same name are replaced, others left alone); a file that cannot be
 * written is reported and the next one follows. An archived lock of a locked group takes the place
 * of this job's lock at the end; other locks are released. Fails with CorruptRecord if the archive
 * is no longer what `checkArchive` saw.
 */
export async function restoreArchive(options: RestoreOptions): Promise<RestoreReport> {
  const { backend, flavour, locker, logger, signal, checked } = options;
  const relayFiles = checked.files.filter((file) => file.path !== MANIFEST_NAME);
  const groups = new Map<string, RelayGroup>();
  const addGroup = (path: RelayPath): void => {
    const group = groupOf(path, flavour);
    if (group !== undefined && !groups.has(group.name)) groups.set(group.name, group);
  };
  for (const file of relayFiles) addGroup(file.path);
  const existing: RelayPath[] = [];
  for await (const entry of backend.list(ROOT, { recursive: true, signal })) {
    if (entry.kind !== 'file') continue;
    existing.push(entry.path);
    if (!options.purge) break;
    addGroup(entry.path);
  }
  if (!options.purge && existing.length > 0) logger.warning('repository is not empty: files of the archive replace those of the same name, the others stay (--purge empties it first)');

  const held: HeldGroups = new Map();
  const archivedLocks = new Map<string, Buffer>();
  try {
    if (locker !== undefined) {
      const sorted = [...groups.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const refusal = (group: RelayGroup): EscaleError =>
        new EscaleError('LockBusy', `${DESTINATION_LOCKED}: '${group.name}' is locked by another client`, {
          path: group.name,
          hint: 'the relay must be idle: stop the clients that use it and try again (or use -f when you are sure none is running)',
        });
      await lockEveryGroup(sorted, locker, held, refusal, signal);
    }
    let purged = 0;
    if (options.purge) {
      const ownLocks = new Set([...held.values()].map((lock) => lock.group.lockPath));
      logger.info(`emptying the destination relay (${existing.length} file(s))`);
      for (const path of existing) {
        if (ownLocks.has(path)) continue;
        try {
          await backend.delete(path, { signal });
        } catch (error) {
          if (!hasCode(error, 'NotFound')) throw error;
        }
        purged += 1;
      }
    }
    const result = await writeMembers(options, relayFiles.length, held, archivedLocks);
    return { ...result, purged };
  } finally {
    for (const [name, lock] of held) {
      const archived = archivedLocks.get(name);
      if (archived === undefined) continue;
      held.delete(name);
      try {
        await backend.put(lock.group.lockPath, archived, { size: archived.length });
      } catch (error) {
        logger.warning(`cannot restore the lock '${lock.group.lockPath}': ${(error as Error).message}`);
        await lock.release().catch(() => undefined);
      }
    }
    await releaseAll(held, logger);
  }
}

async function writeMembers(options: RestoreOptions, total: number, held: HeldGroups, archivedLocks: Map<string, Buffer>): Promise<{ files: number; bytes: number; failed: CopyFailure[] }> {
  const { backend, flavour, signal, checked } = options;
  const tally = new CopyTally(options.onProgress === undefined ? {} : { onProgress: options.onProgress });
  tally.total = total;
  let files = 0;
  let bytes = 0;
  let index = 0;
  const changed = (): EscaleError => new EscaleError('CorruptRecord', 'backup archive: it changed since it was checked; the restore stopped halfway, run it again');
  for await (const member of members(options.openTar, signal)) {
    if (member.kind === 'dir') continue;
    const expected = checked.files[index];
    index += 1;
    if (expected === undefined || expected.path !== member.name || expected.size !== member.size) throw changed();
    if (member.name === MANIFEST_NAME) continue;
    const group = groupOf(member.name, flavour);
    if (group !== undefined && group.lockPath === member.name && held.has(group.name)) {
      // why: writing it now would replace this job's own lock; it takes that lock's place at the end.
      archivedLocks.set(group.name, await readAll(member.content, MAX_LOCK_BYTES, `lock '${member.name}'`));
      continue;
    }
    const body = Readable.from(member.content);
    try {
      await backend.put(member.name, body, { size: member.size, signal });
      files += 1;
      bytes += member.size;
    } catch (error) {
      body.destroy();
      // why: a damaged archive (or Ctrl+C) ends the restore; a relay that refuses one file does not.
      if (hasCode(error, 'Aborted', 'CorruptRecord')) throw error;
      tally.fail(member.name, (error as Error).message);
    }
    tally.handled();
  }
  if (index !== checked.files.length) throw changed();
  return { files, bytes, failed: tally.failed };
}
