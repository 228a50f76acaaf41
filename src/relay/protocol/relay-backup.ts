import { Readable } from 'node:stream';
import { EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { isRelayPath, ROOT } from '../../core/relpath.js';
import type { Backend, Entry } from '../backend.js';
import { packTar, type ArchiveSource } from './archive.js';
import { formatManifest, MANIFEST_NAME, type BackupManifest, type RelayFlavour } from './backup-archive.js';
import { CopyTally, groupListing, groupsInTurn, inWriteOrder, releaseAll, type CopyFailure, type GroupLocker, type HeldGroups, type ListedGroup, type LockerClock } from './relay-groups.js';

/** What a backup copied; filled in while the archive stream is read. */
export interface BackupReport {
  files: number;
  bytes: number;
  readonly missing: CopyFailure[];
}

/** Settings of `backupTar`. */
export interface BackupTarOptions {
  readonly backend: Backend;
  readonly flavour: RelayFlavour;
  readonly manifest: BackupManifest;
  /** Takes the source group locks (`mode: r`); undefined: fast mode, nothing is locked. */
  readonly locker?: GroupLocker;
  /** How long to wait, in all, for the groups another client had locked. */
  readonly maxWaitMs: number;
  readonly logger: Logger;
  readonly clock: LockerClock;
  /** Called after each file with the files handled so far and the files listed. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

/** A backup in progress: the uncompressed tar, its report, and how to let go of the locks it holds. */
export interface BackupStream {
  readonly tar: Readable;
  readonly report: BackupReport;
  /** Releases every group lock still held (after a failure; a finished stream holds none). */
  releaseLocks(): Promise<void>;
}

/**
 * Streams a tar of every relay file (relay-format.md P7.4, with escale's changes): the manifest first,
 * then the files as they are on the relay (encrypted stays encrypted). Without a locker every listed
 * file is copied as it is (locks included). With one, files that no lock guards are copied, every
 * group that is not locked is locked at once and copied, then the groups another client held are
 * waited for (at most `maxWaitMs` in all); each group's lock is released once it is copied and is
 * never archived. A file that cannot be read, and the files of a group that stayed locked, are
 * reported as missing; a file that left the relay meanwhile is simply not archived. A read that fails
 * halfway fails the stream.
 */
export function backupTar(options: BackupTarOptions): BackupStream {
  const tally = new CopyTally(options.onProgress === undefined ? {} : { onProgress: options.onProgress });
  const report: BackupReport = { files: 0, bytes: 0, missing: tally.failed };
  const held: HeldGroups = new Map();
  return {
    tar: packTar(backupSources(options, report, tally, held)),
    report,
    releaseLocks: () => releaseAll(held, options.logger),
  };
}

async function* backupSources(options: BackupTarOptions, report: BackupReport, tally: CopyTally, held: HeldGroups): AsyncGenerator<ArchiveSource> {
  const { backend, flavour, locker, logger, signal, clock } = options;
  const manifest = formatManifest(options.manifest);
  yield { path: MANIFEST_NAME, size: manifest.length, mtimeSec: Math.floor(clock.now() / 1000), open: async () => Readable.from([manifest]) };

  const listed: Entry[] = [];
  for await (const entry of backend.list(ROOT, { recursive: true, signal })) {
    if (entry.kind !== 'file') continue;
    if (!isRelayPath(entry.path)) tally.fail(entry.path, 'its name is not a safe relative path');
    else if (entry.path === MANIFEST_NAME) tally.fail(entry.path, 'this name is reserved for the manifest of backup archives');
    else listed.push(entry);
  }
  const { groups, loose } = groupListing(listed, flavour);
  // why: with locks taken, the group locks found are not archived (nor counted).
  const counted = (slot: ListedGroup): number => (locker === undefined ? slot.listed.length : inWriteOrder(slot.group, slot.listed, flavour).length);
  tally.total = loose.length + groups.reduce((sum, slot) => sum + counted(slot), 0);

  const copy = async function* (entry: Entry, checked: boolean): AsyncGenerator<ArchiveSource> {
    const opened = await tally.transfer(entry.path, logger, async () => {
      // why: a listing may be old by now (or give no size); the tar header needs the size of what is read.
      const described = !checked || entry.size < 0 ? await backend.stat(entry.path, { signal }) : entry;
      if (described.size < 0) throw new EscaleError('Unsupported', 'the relay does not tell its size');
      return { described, stream: await backend.get(entry.path, { signal }) };
    }, signal);
    if (opened === undefined) return;
    const { described, stream } = opened;
    report.files += 1;
    report.bytes += described.size;
    yield { path: entry.path, size: described.size, mtimeSec: Math.floor((described.mtimeMs ?? clock.now()) / 1000), open: async () => stream };
  };

  for (const entry of loose) yield* copy(entry, false);
  if (locker === undefined) {
    for (const slot of groups) for (const entry of slot.listed) yield* copy(entry, false);
    return;
  }
  // Safe mode (relay-format.md P7.3, P7.4): lock at once every group nobody holds, copy them, then wait for the others.
  const turns = groupsInTurn(groups, locker, {
    maxWaitMs: options.maxWaitMs,
    clock,
    logger,
    waiting: (count) => `waiting for ${count} locked file group(s) to be released by other clients`,
    held,
    ...(signal === undefined ? {} : { signal }),
  });
  for await (const { slot, lock } of turns) {
    if (lock !== 'busy') {
      for (const entry of await locker.files(slot.group, signal)) yield* copy(entry, true);
      continue;
    }
    for (const entry of slot.listed) tally.fail(entry.path, `'${slot.group.name}' stayed locked by another client`);
    tally.handled(counted(slot));
  }
}
